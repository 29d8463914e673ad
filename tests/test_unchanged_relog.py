"""An unchanged re-log is answered from the record of the last log of the same files (their
paths and stats), without hashing or comparing them one by one; anything that could make
that answer wrong sends the log down the full path, which keeps every guarantee."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import forebear
from forebear import statcache
from forebear.chunking import Chunking

from .conftest import format_2, spy_on_stat_helpers

BIG = 3 << 20  # chunked in a store with a 1 MiB chunking threshold


def files(make_tree: Callable[..., Path]) -> Path:
    return make_tree("data", {f"d{i % 4}/f{i}.bin": os.urandom(200 + i) for i in range(40)})


def log(store: forebear.Store, path: Path, name: str = "ds") -> forebear.ArtifactVersion:
    with forebear.init(project="p", store=store) as run:
        return run.log_artifact(path, name=name)


def test_an_unchanged_folder_is_logged_again_without_reading_it(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    data = files(make_tree)
    first = log(local_store, data)
    with forebear.init(project="p", store=local_store) as run:
        again = run.log_artifact(data, name="ds")
    assert full_logs == ["ds"]  # the second log never hashed a file
    assert again.ref == first.ref == "ds:v0"
    # and it is still recorded: the second run is a producer of the version too
    assert [v.ref for v in run.logged_artifacts()] == ["ds:v0"]
    assert local_store.verify() == []


def test_any_change_to_a_file_or_the_file_list_logs_in_full(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    data = files(make_tree)
    log(local_store, data)
    path = data / "d1" / "f1.bin"
    before = os.stat(path)
    path.write_bytes(b"Z" * before.st_size)  # same size, mtime put back: ctime moves
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = log(local_store, data)
    assert second.version == "v1" and second.open("d1/f1.bin").read() == b"Z" * before.st_size
    (data / "new.txt").write_text("new")
    third = log(local_store, data)
    assert third.version == "v2" and "new.txt" in [e.path for e in third.entries()]
    (data / "new.txt").unlink()
    # back to the second version's files, unchanged since: answered from its record
    assert log(local_store, data).version == "v1"
    assert full_logs == ["ds", "ds", "ds"]


def test_a_record_taken_just_after_a_change_is_not_trusted(
    local_store: forebear.Store, make_tree: Callable[..., Path], full_logs: list[str]
) -> None:
    data = files(make_tree)
    log(local_store, data)
    log(local_store, data)
    assert full_logs == ["ds", "ds"]


def test_missing_objects_send_the_log_down_the_full_path_which_stores_them_again(
    tmp_path: Path, make_tree: Callable[..., Path], full_logs: list[str], not_racy: None
) -> None:
    data = files(make_tree)
    (data / "big.bin").write_bytes(os.urandom(BIG))
    chunking = Chunking.around(256 << 10, threshold=1 << 20)
    # loose objects, lost one by one (packed: the next two tests)
    with forebear.open(format_2(tmp_path / "store"), chunking=chunking) as store:
        version = log(store, data)
        big = version.entry("big.bin")
        chunk = store.backend.chunk_lists([big.digest or ""])[big.digest or ""].digests[3]
        small = version.entry("d0/f0.bin").digest or ""
        for digest in (chunk, small):
            store.objects.delete(digest)
        assert len(store.verify()) == 2
        assert log(store, data) == version
        assert full_logs == ["ds", "ds"]
        assert store.verify() == []


def test_in_a_packed_store_a_chunk_the_index_lost_sends_the_log_down_the_full_path(
    tmp_path: Path, make_tree: Callable[..., Path], full_logs: list[str], not_racy: None
) -> None:
    """Packs answer "is every chunk stored?" from the pack index in one statement: the
    answer must still be no when one chunk of one chunked file has left the index."""
    data = files(make_tree)
    (data / "big.bin").write_bytes(os.urandom(BIG))
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    version = log(store, data)
    big = version.entry("big.bin").digest or ""
    chunks = store.backend.chunk_lists([big])[big].digests
    assert len(chunks) > 10 and not list(store.objects.iter_digests())  # all of it packed
    assert log(store, data) == version and full_logs == ["ds"]  # the shortcut, packed
    store.close()
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:
        db.execute("DELETE FROM packed_objects WHERE digest = ?", (chunks[len(chunks) // 2],))
    with forebear.open(tmp_path / "store") as store:
        assert store.verify()  # the lost chunk is reported
        assert log(store, data) == version
        assert full_logs == ["ds", "ds"]  # not answered from the record: stored again
        assert store.verify() == []
        assert log(store, data) == version and full_logs == ["ds", "ds"]


def test_in_a_packed_store_a_version_found_whole_is_trusted_until_something_is_forgotten(
    tmp_path: Path,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The object check of a re-log looks every entry up; in a store with packs it is
    skipped while forebear has forgotten nothing since the version was last found whole,
    and runs again (once) after a rebuilt index, a gc or a verify that found damage."""
    from forebear.local import unchanged

    checks: list[int] = []
    real = unchanged.is_whole
    monkeypatch.setattr(
        unchanged,
        "is_whole",
        lambda *a: checks.append(1) or real(*a),  # type: ignore[func-returns-value]
    )
    data = files(make_tree)
    other = make_tree("other", {"x.txt": "only in a version deleted below"})
    with forebear.open(tmp_path / "store") as store:
        store.upgrade()
        version = log(store, data)
        assert log(store, data) == version and log(store, data) == version
        assert full_logs == ["ds"] and checks == []  # the record's mark: no lookups
        store.rebuild_index()  # forgets the whole index, then reads it back
        assert log(store, data) == version and checks == [1]
        assert log(store, data) == version and checks == [1]  # found whole: marked again
        log(store, other, name="gone").delete()
        assert store.gc(grace=dt.timedelta(0)).objects  # removed what only that one held
        assert log(store, data) == version and checks == [1, 1]
        assert log(store, data) == version and checks == [1, 1]
        assert full_logs == ["ds", "gone"]


def test_a_record_from_before_whole_marks_still_answers_a_re_log(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    """Records written before the whole mark (a table without it, sealed over four
    fields) keep answering after an upgrade of forebear, so the first re-log does not
    read every file again."""
    import hashlib

    data = files(make_tree)
    version = log(local_store, data)
    cache = local_store.stat_cache
    key = cache.key_path.read_bytes()
    with sqlite3.connect(cache.path) as db:
        rows = db.execute(
            "SELECT paths_key, stats_key, digest, changed_ns, taken_ns FROM sealed_trees_2"
        ).fetchall()
        db.execute("DELETE FROM sealed_trees_2")
        db.execute(
            "CREATE TABLE sealed_trees (paths_key TEXT PRIMARY KEY, stats_key TEXT,"
            " digest TEXT, changed_ns INTEGER, taken_ns INTEGER, seal TEXT) WITHOUT ROWID"
        )
        for row in rows:
            text = ":".join(str(value) for value in ("tree", *row)).encode()
            seal = hashlib.blake2b(text, key=key, digest_size=16).hexdigest()
            db.execute("INSERT INTO sealed_trees VALUES (?,?,?,?,?,?)", (*row, seal))
    assert log(local_store, data) == version and full_logs == ["ds"]
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE sealed_trees SET digest = stats_key")  # unsealed: ignored
        db.execute("DELETE FROM sealed_trees_2")
    assert log(local_store, data) == version and full_logs == ["ds", "ds"]


def test_the_same_files_under_another_name_or_after_a_delete_make_a_version(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    data = files(make_tree)
    first = log(local_store, data)
    other = log(local_store, data, name="other")
    assert other.ref == "other:v0"
    first.delete(delete_aliases=True)
    assert log(local_store, data).version == "v1"
    assert full_logs == ["ds", "other", "ds"]


def test_one_folder_logged_with_other_ignore_rules_gets_each_its_own_version(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    """The record is looked up by the folders and the number of files first: two file
    lists of one folder with as many files share that, and each log still gets its own
    version; so does a log whose lookup was tampered with."""
    data = make_tree("data", {"a.txt": "a", "b.txt": "b", "c.txt": "c"})

    def log_without(ignored: str) -> forebear.ArtifactVersion:
        artifact = forebear.Artifact("ds")
        artifact.add_dir(data, ignore=[ignored])
        with forebear.init(project="p", store=local_store) as run:
            return run.log_artifact(artifact)

    assert log_without("a.txt").version == "v0"  # b and c
    assert log_without("b.txt").version == "v1"  # a and c
    assert log_without("b.txt").version == "v1"
    assert full_logs == ["ds", "ds"]  # answered from its record
    assert log_without("a.txt").version == "v0"  # found in full: the lookup led to v1's
    assert [e.path for e in log_without("a.txt").entries()] == ["b.txt", "c.txt"]
    assert full_logs == ["ds", "ds", "ds"]
    with sqlite3.connect(local_store.stat_cache.path) as db:  # a lookup naming nothing
        db.execute("UPDATE tree_roots SET paths_key = 'not a key'")
    assert log_without("a.txt").version == "v0" and log_without("b.txt").version == "v1"
    assert full_logs == ["ds"] * 5


def test_a_record_someone_else_wrote_is_ignored(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    first = log(local_store, files(make_tree))
    other = make_tree("other", {"a.txt": "other bytes"})
    assert log(local_store, other).version == "v1"
    # claim, without the sealing key, that the other folder made the first version
    with sqlite3.connect(local_store.stat_cache.path) as db:
        db.execute("UPDATE sealed_trees_2 SET digest = ?", (first.digest,))
    again = log(local_store, other)
    assert again.version == "v1"
    assert full_logs == ["ds", "ds", "ds"]


def test_a_draft_or_a_reference_is_never_answered_from_a_record(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
) -> None:
    data = files(make_tree)
    base = log(local_store, data)
    for _ in range(2):
        draft = base.new_draft()
        draft.add_file(str(data / "d0" / "f0.bin"), name="copy.bin")
        with forebear.init(project="p", store=local_store) as run:
            run.log_artifact(draft)
    assert full_logs == ["ds", "ds", "ds"]


def folder_not_utf8(tmp_path: Path, *names: bytes) -> bytes:
    """The folder ``tmp_path/names...`` (names in bytes that are not UTF-8), made; the
    test is skipped where the filesystem refuses such names."""
    folder = b"/".join([os.fsencode(tmp_path), *names])
    try:
        os.makedirs(folder)
    except OSError:
        pytest.skip("this filesystem refuses names that are not UTF-8")
    return folder


def test_a_folder_below_a_name_that_is_not_utf8_is_logged_and_answered(
    local_store: forebear.Store, tmp_path: Path, full_logs: list[str], not_racy: None
) -> None:
    parent = folder_not_utf8(tmp_path, b"caf\xe9")
    os.makedirs(parent + b"/data")
    with open(parent + b"/data/a.txt", "wb") as f:
        f.write(b"bytes")
    data = Path(os.fsdecode(parent + b"/data"))
    first = log(local_store, data)
    assert log(local_store, data) == first
    assert full_logs == ["ds"]


def test_a_folder_below_names_that_are_not_utf8_reaches_the_helper_process_and_back(
    local_store: forebear.Store,
    tmp_path: Path,
    full_logs: list[str],
    not_racy: None,
    helpers: list[Any],
) -> None:
    """The paths a helper process states keep their exact bytes both ways: the re-log
    finds the version, and a change to one of the files is seen."""
    data = folder_not_utf8(tmp_path, b"caf\xe9", b"d\xff")
    os.makedirs(data + b"/sub")
    names = [f"sub/f{i}-\u00e9.txt" for i in range(6)] + [f"plain{i}.txt" for i in range(6)]
    for name in names:
        with open(data + b"/" + name.encode(), "wb") as f:
            f.write(name.encode())
    folder = Path(os.fsdecode(data))
    first = log(local_store, folder)
    assert log(local_store, folder) == first and full_logs == ["ds"]
    assert len(helpers) == 1 and helpers[0].poll() is not None  # the re-log's, ended
    with open(data + "/sub/f3-\u00e9.txt".encode(), "ab") as f:
        f.write(b" and more")
    assert log(local_store, folder).ref == "ds:v1" and full_logs == ["ds", "ds"]


def test_the_helper_states_paths_that_are_not_utf8_itself(
    tmp_path: Path, helpers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its part of the list comes back from the helper, not stated here again after a
    refusal (which would give the same numbers, only slower)."""
    from forebear import stat_worker

    folder = folder_not_utf8(tmp_path, b"caf\xe9")
    paths = []
    for i in range(10):
        path = folder + b"/f%d-\xff" % i
        with open(path, "wb") as f:
            f.write(b"x" * i)
        paths.append(os.fsdecode(path))
    expected = stat_worker.stat_numbers(paths)
    stated_here: list[str] = []
    real = stat_worker.stat_numbers

    def spy(some: Any) -> Any:
        stated_here.extend(some)
        return real(some)

    monkeypatch.setattr(stat_worker, "stat_numbers", spy)
    with stat_worker.StatHelper() as helper:
        assert helper.numbers(paths) == expected
    assert len(helpers) == 1
    assert stated_here == paths[int(len(paths) * stat_worker.SHARE) :]


def test_stats_keys_take_any_stat_numbers_and_match_between_log_and_relog(
    tmp_path: Path,
) -> None:
    """The stats key of files stated now (a re-log) equals the one made from the stats a
    log took while hashing them, and any numbers a file system gives fit in it: an inode
    number above 2**63, a time before 1970."""
    from forebear.artifacts import PendingFile
    from forebear.treekey import KeyBuilder

    files = []
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
        files.append(PendingFile(name, str(tmp_path / name)))
    os.utime(tmp_path / "b.txt", ns=(-5_000_000_000, -5_000_000_000))  # 1969
    now, then = KeyBuilder(), KeyBuilder()
    now.stat_files(files)
    then.add_stats((f, statcache.FileStat.of(os.stat(f.local_path))) for f in files)
    assert now.keys().stats_key == then.keys().stats_key

    def key_with_inode(inode: int) -> str:
        builder = KeyBuilder()
        builder.add_stats([(files[0], (1, inode, 10, -1, 2)), (files[1], (1, 7, 10, 3, 4))])
        return builder.keys().stats_key

    assert key_with_inode(2**64 - 1) != key_with_inode(2**63 - 1)
    assert key_with_inode(2**64 - 1) == key_with_inode(-1)  # the same 8 bytes

    def key_with_mtime(mtime_ns: int) -> str:  # a number further along the row
        builder = KeyBuilder()
        builder.add_stats([(files[0], (1, 2, 10, mtime_ns, 2)), (files[1], (1, 7, 10, 3, 4))])
        return builder.keys().stats_key

    assert key_with_mtime(2**64 - 1) == key_with_mtime(-1)
    assert key_with_mtime(2**64 - 1) != key_with_mtime(2**63 - 1)
    assert KeyBuilder().keys().changed_ns == 0


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Lists of 4 files or more are stated half by a helper process; each one started."""
    from forebear import stat_worker

    monkeypatch.setattr(stat_worker, "HELPED", 4)
    return spy_on_stat_helpers(monkeypatch)


def folder_keys(data: Path) -> Any:
    from forebear import treekey

    artifact = forebear.Artifact("ds")
    artifact.add_dir(data)
    return treekey.tree_keys(artifact, 25)


def test_a_helper_process_states_half_of_each_long_list_to_the_same_keys(
    make_tree: Callable[..., Path], helpers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from forebear import stat_worker

    data = files(make_tree)  # 40 files: batches of 25 and 15, each stated half by half
    helped = folder_keys(data)
    assert len(helpers) == 1 and helpers[0].poll() is not None  # one for every batch, ended
    monkeypatch.setattr(stat_worker, "HELPED", 10**9)
    alone = folder_keys(data)
    assert len(helpers) == 1
    assert helped is not None and alone is not None
    assert (helped.paths_key, helped.stats_key, helped.changed_ns) == (
        alone.paths_key,
        alone.stats_key,
        alone.changed_ns,
    )


def test_the_check_of_many_files_takes_the_helper_process_as_it_is_set(
    local_store: forebear.Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_logs: list[str],
    not_racy: None,
) -> None:
    # with forebear's own settings, not a test's: a re-log of a folder of as many files as
    # make a list long enough for a helper is stated by two processes
    from forebear import stat_worker

    data = tmp_path / "data"
    data.mkdir()
    for i in range(stat_worker.HELPED):
        (data / f"f{i:05d}").write_bytes(b"%d" % i)
    first = log(local_store, data)
    started: list[Any] = []
    real = stat_worker._start_helper
    monkeypatch.setattr(stat_worker, "_start_helper", lambda: started.append(1) or real())
    assert log(local_store, data).ref == first.ref
    assert full_logs == ["ds"]  # the second log hashed nothing
    assert started == [1]


# the helper's part of the first batch (found at the second), and of the last (found at
# the end); the log's own part
@pytest.mark.parametrize("which", ["d0/f0.bin", "d3/f11.bin", "d3/f39.bin"])
def test_a_file_gone_before_its_stat_makes_no_keys_whoever_states_it(
    make_tree: Callable[..., Path], helpers: list[Any], which: str
) -> None:
    from forebear import treekey

    data = files(make_tree)
    artifact = forebear.Artifact("ds")
    artifact.add_dir(data)
    (data / which).unlink()  # after the walk, before the stats
    assert treekey.tree_keys(artifact, 25) is None
    assert len(helpers) == 1 and helpers[0].poll() is not None


def test_a_helper_that_died_leaves_the_files_to_be_stated_here(
    make_tree: Callable[..., Path], helpers: list[Any]
) -> None:
    from forebear.stat_worker import StatHelper, stat_numbers

    data = files(make_tree)
    paths = [str(p) for p in sorted(data.rglob("*.bin"))]
    with StatHelper() as helper:
        assert helper.numbers(paths) == stat_numbers(paths)
        assert helper.pid is not None and helper.running()
        os.kill(helper.pid, signal.SIGKILL)
        while helper.running():  # killed: reaped once it has ended
            time.sleep(0.01)
        assert helper.numbers(paths) == stat_numbers(paths)
        assert helper.numbers(paths) == stat_numbers(paths)  # known to be gone by now
    assert len(helpers) == 1


def test_an_answer_given_up_is_never_taken_for_another_list(
    make_tree: Callable[..., Path], helpers: list[Any]
) -> None:
    from forebear.stat_worker import StatHelper, stat_numbers

    data = files(make_tree)
    paths = [str(p) for p in sorted(data.rglob("*.bin"))]
    first, second = paths[:20], paths[20:]
    with StatHelper() as helper:
        early = helper.numbers_later(first)
        late = helper.numbers_later(second)  # asked before the first answer was taken
        assert late() == stat_numbers(second)
        assert early() == stat_numbers(first)  # stated here: its answer was given up
        assert helper.numbers(first) == stat_numbers(first)  # and the helper goes on
    assert len(helpers) == 1


def test_a_re_log_with_a_helper_process_finds_the_version_or_the_change(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    full_logs: list[str],
    not_racy: None,
    helpers: list[Any],
) -> None:
    data = files(make_tree)
    first = log(local_store, data)
    assert log(local_store, data) == first and full_logs == ["ds"]
    assert len(helpers) == 1 and helpers[0].poll() is not None  # the re-log's, ended
    (data / "d1" / "f1.bin").write_bytes(b"changed")
    assert log(local_store, data).ref == "ds:v1" and full_logs == ["ds", "ds"]
