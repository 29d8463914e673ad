"""The fast paths keep every guarantee: the stat cache never vouches for a changed file,
parallel hashing gives the same digests as hashing one by one, unchanged data is not
read again, and every link type a download offers hands over verified bytes."""

from __future__ import annotations

import gc
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

import forebear
from forebear import fingerprint as fingerprint_module
from forebear import hash_workers, hashing, processes, statcache

from .conftest import corrupt, format_2, run_cli, spy_on_stat_helpers


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the log asks to be hashed (the rest came from the stat cache)."""
    asked: list[str] = []
    real = fingerprint_module.hash_files

    def recording(
        paths: list[str], sizes: list[int], progress: object = None, pool: object = None
    ) -> list:
        asked.extend(paths)
        return real(paths, sizes, progress, pool)  # type: ignore[arg-type]

    monkeypatch.setattr(fingerprint_module, "hash_files", recording)
    return asked


def log(store: forebear.Store, path: Path, name: str = "ds") -> forebear.ArtifactVersion:
    with forebear.init(project="p", store=store) as run:
        return run.log_artifact(path, name=name)


def test_unchanged_files_are_not_read_again(
    local_store: forebear.Store, make_tree: Callable[..., Path], hashed: list[str], not_racy: None
) -> None:
    data = make_tree("data", {f"d{i % 3}/f{i}.bin": os.urandom(100 + i) for i in range(30)})
    first = log(local_store, data)
    assert len(hashed) == 30
    hashed.clear()
    again = log(local_store, data)
    assert hashed == []
    assert again.ref == first.ref == "ds:v0"


@pytest.fixture
def stat_helpers(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes] | None]:
    """A log's batches of 4 files or more are stated by a helper process; each one started."""
    from forebear import ingest

    monkeypatch.setattr(ingest, "STATED_APART", 4)
    return spy_on_stat_helpers(monkeypatch)


def test_a_log_states_long_batches_in_a_helper_process_to_the_same_stats(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    hashed: list[str],
    not_racy: None,
    stat_helpers: list[subprocess.Popen[bytes] | None],
    tmp_path: Path,
) -> None:
    # the stats the helper sent are the ones the hashing workers and the stat cache see:
    # otherwise the log would call every file changed, or the re-log would hash again
    data = make_tree("data", {f"d{i % 3}/f{i}.bin": os.urandom(100 + i) for i in range(30)})
    first = log(local_store, data)
    assert len(stat_helpers) == 1 and stat_helpers[0] is not None
    assert stat_helpers[0].poll() is not None  # ended with the log
    assert len(hashed) == 30
    hashed.clear()
    (data / "d0/f0.bin").write_bytes(b"changed")
    second = log(local_store, data)
    assert hashed == [str(data / "d0/f0.bin")]
    assert (first.ref, second.ref) == ("ds:v0", "ds:v1")
    assert (second.download(tmp_path / "out") / "d0/f0.bin").read_bytes() == b"changed"


def test_a_stat_the_helper_sends_wrapped_is_taken_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # device and inode numbers past 2**63 come back from the helper as negative words;
    # the files are then stated in this process, to the numbers the hashing workers see
    from array import array

    from forebear import ingest, stat_worker, statcache

    paths = []
    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(b"x" * i)
        paths.append(str(tmp_path / f"f{i}"))
    real = stat_worker.stat_numbers(paths)
    wrapped = array("q", real)
    wrapped[5 + 1] = -2  # the second file's inode, as 2**64 - 2 is sent
    monkeypatch.setattr(stat_worker.StatHelper, "numbers", lambda self, some: wrapped)
    with stat_worker.StatHelper(helped=1) as helper:
        stats = ingest._stat_files(paths, helper)
    assert stats == [statcache.FileStat.of(os.stat(p)) for p in paths]


def test_a_file_rewritten_with_same_size_and_mtime_is_hashed_again(
    local_store: forebear.Store, make_tree: Callable[..., Path], hashed: list[str], not_racy: None
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 4096, "b.bin": b"B" * 4096})
    first = log(local_store, data)
    before = os.stat(data / "a.bin")
    (data / "a.bin").write_bytes(b"Z" * 4096)  # same size...
    os.utime(data / "a.bin", ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and mtime
    hashed.clear()
    second = log(local_store, data)
    assert hashed == [str(data / "a.bin")]  # ctime moved: not trusted
    assert second.version == "v1"
    assert second.open("a.bin").read() == b"Z" * 4096
    assert first.open("a.bin").read() == b"A" * 4096


def test_a_file_replaced_by_another_with_identical_times_is_hashed_again(
    local_store: forebear.Store, make_tree: Callable[..., Path], hashed: list[str], not_racy: None
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 4096})
    log(local_store, data)
    before = os.stat(data / "a.bin")
    replacement = data.parent / "new.bin"
    replacement.write_bytes(b"Q" * 4096)
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, data / "a.bin")  # a new inode under the old name
    hashed.clear()
    second = log(local_store, data)
    assert hashed == [str(data / "a.bin")]
    assert second.open("a.bin").read() == b"Q" * 4096


def test_a_digest_recorded_just_after_a_change_is_not_trusted(
    local_store: forebear.Store, make_tree: Callable[..., Path], hashed: list[str]
) -> None:
    # Racily clean: a second write within the same timestamp tick could keep identical
    # times, so a file changed less than RACY_SECONDS before it was hashed is hashed again.
    data = make_tree("data", {"a.bin": b"A" * 100})
    log(local_store, data)
    hashed.clear()
    log(local_store, data)
    assert hashed == [str(data / "a.bin")]


def test_a_damaged_stat_cache_is_ignored(
    local_store: forebear.Store, make_tree: Callable[..., Path], hashed: list[str], not_racy: None
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 100, "b.bin": b"B" * 100})
    first = log(local_store, data)
    cache = local_store.stat_cache.path
    cache.write_bytes(b"this is not a database" * 100)  # while this process has it open
    assert log(local_store, data).ref == first.ref and local_store.verify() == []
    local_store.stat_cache.close()  # damaged while no forebear has it open
    cache.write_bytes(b"this is not a database" * 100)
    hashed.clear()
    again = log(local_store, data)
    assert sorted(hashed) == [str(data / "a.bin"), str(data / "b.bin")]
    assert again.ref == first.ref
    assert local_store.verify() == []


def test_a_small_file_is_hashed_whole_at_every_size_and_when_it_holds_more_than_it_says(
    tmp_path: Path,
) -> None:
    # one read of the size the file reports plus a byte: at the edges of that read, and
    # for a file holding more than its reported size (one that grew meanwhile, or a
    # /proc file, which reports 0 bytes), the digest is still of every byte
    for size in (
        0,
        1,
        8191,
        8192,
        hashing.SMALL_FILE - 1,
        hashing.SMALL_FILE,
        hashing.SMALL_FILE + 1,
    ):
        path = tmp_path / f"f{size}.bin"
        data = os.urandom(size)
        path.write_bytes(data)
        found = hashing.hash_small_file(str(path))
        assert found == hashing.Hashed(
            hashing.hash_bytes(data), size, hashing.identity(path.stat())
        )
    proc = Path("/proc/self/cmdline")
    if proc.exists():
        content = proc.read_bytes()
        assert content and proc.stat().st_size == 0
        found = hashing.hash_small_file(str(proc))
        assert not isinstance(found, str)
        assert found[:2] == (hashing.hash_bytes(content), len(content))


def test_parallel_hashing_matches_hashing_one_by_one(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    names = [f"f{i:05d}.bin" for i in range(hashing.POOL_MIN_FILES + 37)]
    names += ["line\nbreak.bin", "caf\u00e9.bin", os.fsdecode(b"not-utf8-\xff.bin")]
    for index, name in enumerate(names):
        (root / name).write_bytes(os.urandom(index % 5000))
    big = root / "big.bin"
    with open(big, "wb") as f:
        for _ in range(3):
            f.write(os.urandom(hashing.SMALL_FILE))
    paths = [str(root / name) for name in names] + [str(big), str(root / "gone.bin")]
    sizes = [os.stat(p).st_size for p in paths[:-1]] + [10]
    seen: list[int] = []
    results = hash_workers.hash_files(paths, sizes, seen.append)
    # each with the identity of the file it read, for the caller's check that it is the
    # file stated before (the workers send it back as text)
    expected = [(*hashing.hash_file(p), hashing.identity(os.stat(p))) for p in paths[:-1]]
    assert [r[:3] for r in results[:-1]] == expected
    assert isinstance(results[-1], str) and "No such file" in results[-1]
    assert sum(seen) == sum(sizes[:-1])


def test_files_are_read_into_page_aligned_buffers(tmp_path: Path) -> None:
    """A read out of the page cache into a buffer a few bytes past a page boundary takes
    some processors' slow path (five times slower here): the buffers large files are
    hashed, copied and read through start on a page."""
    import ctypes
    import mmap

    for size in (hashing.BLOCK_SIZE, 3, 5 << 20):
        view = hashing.read_buffer(size)
        assert len(view) == size and not view.readonly
        assert ctypes.addressof(ctypes.c_char.from_buffer(view)) % mmap.PAGESIZE == 0
    assert len(hashing.read_buffer(0)) == 0  # a damaged chunk list may ask for that
    data = os.urandom(2 * hashing.BLOCK_SIZE + 12345)
    (tmp_path / "f.bin").write_bytes(data)
    assert hashing.hash_file(tmp_path / "f.bin") == (hashing.hash_bytes(data), len(data))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_writing_into_a_read_buffer_leaves_its_parents_bytes_alone() -> None:
    """A data loader forks its workers while a stream it opened keeps a buffer: a worker
    reading on must get its own copy of that memory, as with any other, or the parent's
    bytes change under it (Python maps anonymous memory shared by default)."""
    views = [hashing.read_buffer(1 << 20), memoryview(hashing.page_aligned_memory(4096))]
    for view in views:
        view[:5] = b"mine!"
    pid = os.fork()
    if pid == 0:  # the child scribbles over everything it inherited, then leaves
        for view in views:
            view[: len(view)] = b"\xff" * len(view)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for view in views:
        assert bytes(view[:5]) == b"mine!" and not any(view[5:])


# 2 files are stated in the log's process, 12 by the stat helper (batches of 4 or more)
@pytest.mark.parametrize("count", [2, 12])
def test_a_file_that_vanishes_mid_log_is_named_whoever_states_it(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    stat_helpers: list[subprocess.Popen[bytes] | None],
    count: int,
) -> None:
    data = make_tree("data", {f"f{i:02d}.bin": b"%d" % i for i in range(count)})
    artifact = forebear.Artifact("ds")
    artifact.add_dir(data)
    (data / "f01.bin").unlink()
    with (
        forebear.init(project="p", store=local_store) as run,
        pytest.raises(forebear.InvalidPath, match=r"f01\.bin.*disappeared after it was"),
    ):
        run.log_artifact(artifact)
    assert len(stat_helpers) == (1 if count >= 4 else 0)
    assert local_store.artifacts() == []


# -- link types ------------------------------------------------------------------------


@pytest.fixture
def loose_local(tmp_path: Path) -> Iterator[forebear.Store]:
    """A local store in format 2: each object a file a link can be (a file kept in a pack
    is always a checked copy)."""
    with forebear.open(format_2(tmp_path / "store")) as opened:
        yield opened


def test_every_link_type_gives_the_stored_bytes(
    loose_local: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000, "sub/b.txt": "hello"})
    version = log(loose_local, data)
    object_of_a = Path(loose_local.objects.path_of(version.entry("a.bin").digest or ""))
    for link in ("auto", "copy", "hardlink", "symlink"):
        out = version.download(tmp_path / link, link=link)
        assert (out / "a.bin").read_bytes() == b"A" * 5000
        assert (out / "sub" / "b.txt").read_text() == "hello"
    assert not os.path.samefile(tmp_path / "auto" / "a.bin", object_of_a)
    assert not os.path.samefile(tmp_path / "copy" / "a.bin", object_of_a)
    assert os.path.samefile(tmp_path / "hardlink" / "a.bin", object_of_a)
    assert (tmp_path / "symlink" / "a.bin").resolve() == object_of_a.resolve()
    # linked files are read-only, so an editor saving in place fails instead of
    # changing the stored object
    assert not os.stat(tmp_path / "hardlink" / "a.bin").st_mode & stat.S_IWUSR


def test_editing_a_downloaded_copy_never_changes_the_store(
    loose_local: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000})
    version = log(loose_local, data)
    out = version.download(tmp_path / "out")  # the default link type
    with open(out / "a.bin", "r+b") as f:
        f.write(b"edited")
    assert loose_local.verify() == []
    assert version.open("a.bin").read() == b"A" * 5000


def test_reflink_is_refused_clearly_where_the_filesystem_cannot(
    loose_local: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000})
    version = log(loose_local, data)
    try:
        out = version.download(tmp_path / "out", link="reflink")
    except forebear.InvalidInput as exc:  # ext4, tmpfs...
        assert "cannot reflink" in str(exc) and "'auto' or 'copy'" in str(exc)
        assert not (tmp_path / "out" / "a.bin").exists()
        assert not list((tmp_path / "out").iterdir())  # no temporary file left behind
    else:  # btrfs, XFS...: a clone, not the object itself
        assert (out / "a.bin").read_bytes() == b"A" * 5000
        assert not os.path.samefile(out / "a.bin", loose_local.objects.path_of(
            version.entry("a.bin").digest or ""))  # fmt: skip


def test_files_kept_in_packs_are_checked_copies_whatever_the_link_type(
    local_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000})
    version = log(local_store, data)
    assert local_store.objects.packed([version.entry("a.bin").digest or ""])
    for link in ("hardlink", "symlink"):
        path = version.download(tmp_path / link, link=link) / "a.bin"
        assert not path.is_symlink() and path.stat().st_nlink == 1
        assert path.read_bytes() == b"A" * 5000


def test_a_corrupted_object_is_never_linked(
    local_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000})
    version = log(local_store, data)
    corrupt(local_store, version.entry("a.bin").digest or "", b"B" * 5000)
    for link in ("hardlink", "symlink", "auto"):
        with pytest.raises(forebear.IntegrityError, match="corrupted"):
            version.download(tmp_path / link, link=link)
        assert not (tmp_path / link / "a.bin").exists()


def test_unknown_link_types_and_symlinks_into_a_cache_are_refused(
    loose_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    # objects fetched into the cache one by one (from packs: straight into the folder,
    # test_packs.py::test_a_packed_store_on_s3_downloads_small_files_straight_from_the_packs)
    store = loose_store
    data = make_tree("data", {"a.bin": b"A" * 5000})
    version = log(store, data)
    with pytest.raises(forebear.InvalidInput, match="unknown link type 'soft'"):
        version.download(tmp_path / "x", link="soft")
    if store.objects.is_local:
        return
    with pytest.raises(forebear.InvalidInput, match="needs a local object location"):
        version.download(tmp_path / "y", link="symlink")
    out = version.download(tmp_path / "z", link="hardlink")  # into the download cache
    assert os.path.samefile(out / "a.bin", store.cache.path_of(version.entry("a.bin").digest or ""))


def test_cli_get_takes_a_link_type(make_tree: Callable[..., Path], tmp_path: Path) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000})
    store_dir = format_2(tmp_path / "store")  # a file an object, to link to
    assert run_cli("--objects", str(store_dir), "log", str(data)).returncode == 0
    done = run_cli("--objects", str(store_dir), "get", "data:v0", str(tmp_path / "o"),
                   "--link", "hardlink")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "a.bin").stat().st_nlink == 2
    bad = run_cli("--objects", str(store_dir), "get", "data:v0", "--link", "soft")
    assert bad.returncode == 2 and "'soft' is not one of" in bad.stderr


def enough_files_for_workers(folder: Path) -> list[str]:
    """Paths of files of 64 random bytes, as many as are hashed by worker processes."""
    paths = []
    for index in range(hashing.POOL_MIN_FILES):
        path = folder / f"f{index}.bin"
        path.write_bytes(os.urandom(64))
        paths.append(str(path))
    return paths


def test_hashing_carries_on_when_a_worker_process_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = enough_files_for_workers(tmp_path)

    def a_worker_that_dies_at_once() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    monkeypatch.setattr(hash_workers, "_start_worker", a_worker_that_dies_at_once)
    results = hash_workers.hash_files(paths, [64] * len(paths))
    assert [r[:2] for r in results] == [hashing.hash_file(p) for p in paths]


def test_hashing_carries_on_when_a_worker_answers_nonsense_and_reports_unreadable_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = enough_files_for_workers(tmp_path)
    paths[3] = str(tmp_path / "gone.bin")  # never written: its reason comes back whole

    def a_worker_that_answers_nonsense() -> subprocess.Popen[bytes]:
        script = (  # alive, reading its batches, while it answers
            "import sys; sys.stdin.buffer.read1(1)\n"
            "sys.stdout.write('deadbeef 12 not numbers\\n' * 100000); sys.stdout.flush()\n"
            "sys.stdin.buffer.read()"
        )
        return subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    monkeypatch.setattr(hash_workers, "_start_worker", a_worker_that_answers_nonsense)
    with hash_workers.HashPool() as pool:
        pool.size = 2
        results = hash_workers.hash_files(paths, [64] * len(paths), None, pool)
    assert isinstance(results[3], str) and "No such file" in results[3]
    readable = [i for i in range(len(paths)) if i != 3]
    assert [results[i][:2] for i in readable] == [hashing.hash_file(paths[i]) for i in readable]
    with hash_workers.HashPool() as pool:  # a real worker says the same of the missing file
        pool.size = 2
        monkeypatch.undo()
        again = hash_workers.hash_files(paths, [64] * len(paths), None, pool)
    assert again[3] == results[3] and again[:3] == results[:3]


def test_a_pool_starts_its_workers_once_for_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for index in range(hashing.POOL_MIN_FILES * 2):
        path = tmp_path / f"f{index}.bin"
        path.write_bytes(os.urandom(64 + index % 7))
        paths.append(str(path))
    started: list[subprocess.Popen[bytes]] = []
    real = hash_workers._start_worker

    def counted() -> subprocess.Popen[bytes]:
        started.append(real())
        return started[-1]

    monkeypatch.setattr(hash_workers, "_start_worker", counted)
    half = hashing.POOL_MIN_FILES
    with hash_workers.HashPool() as pool:
        pool.size = 2  # workers even on a machine of one core
        first = hash_workers.hash_files(paths[:half], [64] * half, None, pool)
        started[0].kill()  # a worker dying between calls: the next call goes on without it
        started[0].wait()
        second = hash_workers.hash_files(paths[half:], [64] * half, None, pool)
    assert len(started) == pool.size
    assert [r[:2] for r in first + second] == [hashing.hash_file(p) for p in paths]
    assert all(child.poll() is not None for child in started)  # all stopped once done


def test_hashing_workers_remember_what_they_hash_and_never_vouch_for_a_racy_or_changed_file(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    hashed: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # enough files for the workers, which record their digests in the stat cache
    # themselves: the logging process is given none of them to remember
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # workers even on a machine of one core
    count = hashing.POOL_MIN_FILES
    files = {f"d{i % 7}/f{i}.bin": os.urandom(64 + i % 13) for i in range(count)}
    data = make_tree("data", files)
    given: list[object] = []
    real_remember = statcache.StatCache.remember

    def spied(self: statcache.StatCache, rows: Iterable[object], **options: bool) -> None:
        rows = list(rows)
        given.extend(rows)
        real_remember(self, rows, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(statcache.StatCache, "remember", spied)
    first = log(local_store, data)
    assert len(hashed) == count and given == []
    # written within the racy window before they were hashed: read again (and remembered)
    monkeypatch.setattr(statcache, "RACY_SECONDS", 3600.0)
    hashed.clear()
    assert log(local_store, data).ref == first.ref
    assert len(hashed) == count
    monkeypatch.setattr(statcache, "RACY_SECONDS", 0.0)  # trusted once hashed after a change
    hashed.clear()
    assert log(local_store, data, "other").ref == "other:v0" and hashed == []
    # the same size and mtime, other bytes: its ctime moved, so it is read again
    target = data / "d0" / "f0.bin"
    before = target.stat()
    target.write_bytes(bytes(len(files["d0/f0.bin"])))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    hashed.clear()
    changed = log(local_store, data, "other")
    assert hashed == [str(target)] and changed.ref == "other:v1"
    assert changed.open("d0/f0.bin").read() == bytes(len(files["d0/f0.bin"]))
    assert local_store.verify() == []


def test_rows_remembered_behind_are_all_written_once_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "RACY_SECONDS", 0.0)
    cache = statcache.StatCache(tmp_path / "stat-cache.db", tmp_path / "key")
    behind = statcache.RememberBehind(cache)
    stats = [statcache.FileStat(7, inode, 10, 1, 2) for inode in range(3000)]
    for start in range(0, len(stats), 100):  # batches coming faster than one is written
        behind.add([(stat, f"{stat.inode:032x}", 3) for stat in stats[start : start + 100]])
    behind.add([])
    behind.close()
    assert cache.lookup(stats) == [f"{stat.inode:032x}" for stat in stats]
    behind.close()  # closing again, or with nothing added, does nothing
    statcache.RememberBehind(cache).close()
    cache.close()


def test_files_written_one_after_another_each_get_only_their_own_bytes(tmp_path: Path) -> None:
    # the copy buffer is reused from file to file: a short file after a long one must not
    # carry the long one's tail
    import io

    from forebear.destination import save_stream

    long, short = os.urandom(3 << 20), b"short"
    save_stream(io.BytesIO(long), tmp_path / "long.bin")
    save_stream(io.BytesIO(short), tmp_path / "short.bin")
    save_stream(io.BufferedReader(io.BytesIO(b"")), tmp_path / "empty.bin")  # type: ignore[arg-type]
    assert (tmp_path / "long.bin").read_bytes() == long
    assert (tmp_path / "short.bin").read_bytes() == short
    assert (tmp_path / "empty.bin").read_bytes() == b""


def test_a_file_written_while_another_is_being_read_leaves_that_one_whole(
    tmp_path: Path,
) -> None:
    # a chunked download reads chunks through the cache: reading one stream can write
    # another file, which must not get the copy buffer the first is filling
    import io

    from forebear.destination import save_stream

    outer, inner = os.urandom(300_000), os.urandom(200_000)

    class FetchesWhileRead(io.RawIOBase):
        def __init__(self) -> None:
            self.source = io.BytesIO(outer)

        def readable(self) -> bool:
            return True

        def readinto(self, view: memoryview) -> int:  # type: ignore[override]
            n = self.source.readinto(view)
            save_stream(io.BytesIO(inner), tmp_path / "inner.bin")  # after filling the view
            return n

    save_stream(FetchesWhileRead(), tmp_path / "outer.bin")  # type: ignore[arg-type]
    assert (tmp_path / "outer.bin").read_bytes() == outer
    assert (tmp_path / "inner.bin").read_bytes() == inner


def test_a_frozen_program_hashes_cuts_and_states_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program frozen into one executable has no Python to start workers with: running
    its own executable would start the program again. Everything is done in-process."""
    from forebear import cutting, stat_worker
    from forebear.chunking import Chunking
    from forebear.cutting import cut_file

    paths = []
    for index in range(hashing.POOL_MIN_FILES):
        path = tmp_path / f"f{index}.bin"
        path.write_bytes(os.urandom(64))
        paths.append(str(path))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    chunking = Chunking(threshold=1 << 20, avg_size=256 << 10, min_size=64 << 10,
                        max_size=1 << 20)  # fmt: skip
    expected = cut_file(str(big), hashing.hash_file(str(big))[0], chunking)

    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def recorded(args: list[str], *rest: object, **options: object) -> object:
        started.append(list(args))
        return real_popen(args, *rest, **options)  # type: ignore[call-overload]

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(subprocess, "Popen", recorded)
    with hash_workers.HashPool() as pool:
        pool.size = 2  # workers wanted, even on a machine of one core
        results = hash_workers.hash_files(paths, [64] * len(paths), None, pool)
    assert [r[:2] for r in results] == [hashing.hash_file(p) for p in paths]
    monkeypatch.setattr(cutting, "CUT_ELSEWHERE_FROM", 0)  # a worker wanted, however small
    assert cut_file(str(big), expected.digest, chunking) == expected
    monkeypatch.setattr(stat_worker, "HELPED", 4)
    with stat_worker.StatHelper() as helper:
        assert helper.numbers(paths) == stat_worker.stat_numbers(paths)
        assert helper.pid is None
    assert started == []


def test_a_log_holds_the_garbage_collector_off_and_leaves_it_as_it_found_it(
    local_store: forebear.Store, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_tree("data", {f"f{i}.bin": os.urandom(50 + i) for i in range(5)})
    during: list[bool] = []
    real = fingerprint_module.hash_files

    def noting(paths: list[str], *args: object) -> list:
        during.append(gc.isenabled())
        return real(paths, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fingerprint_module, "hash_files", noting)
    assert gc.isenabled()
    log(local_store, data)
    assert during == [False] and gc.isenabled()
    gc.disable()  # a program that runs the collector itself keeps it off
    try:
        log(local_store, make_tree("more", {"a.bin": b"a"}), name="more")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_log_and_overlapping_logs_give_the_collector_back(
    local_store: forebear.Store, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: object) -> list:
        raise OSError("the disk went away")

    monkeypatch.setattr(fingerprint_module, "hash_files", failing)
    with pytest.raises(OSError, match="the disk went away"):
        log(local_store, make_tree("data", {"a.bin": b"a"}))
    assert gc.isenabled()
    # two threads logging at once: the collector runs again once the second one ends
    first, second = processes.collector_paused(), processes.collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def _pause_in_the_child(write_end: int) -> NoReturn:
    """In a forked child: pause the collector as its own log would (the lock is free),
    tell the parent whether it was on during the pause and after it, then end."""
    try:
        with processes.collector_paused():
            during = gc.isenabled()
        os.write(write_end, b"%d%d" % (during, gc.isenabled()))
    finally:
        os._exit(0)


def _what_the_child_said(pid: int, read_end: int, write_end: int) -> bytes:
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    return said


@pytest.mark.skipif(not hasattr(os, "fork"), reason="a platform without fork")
def test_a_child_forked_during_a_log_gets_the_collector_back() -> None:
    read_end, write_end = os.pipe()
    with processes.collector_paused():
        pid = os.fork()
        if pid == 0:  # the child: a data loader's worker forked by another thread, say
            _pause_in_the_child(write_end)
        said = _what_the_child_said(pid, read_end, write_end)
        assert not gc.isenabled()  # the parent is still logging
    assert said == b"01"  # off during the child's own log, then on
    assert gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="a platform without fork")
def test_a_child_forked_inside_a_pause_can_pause_again_after_it() -> None:
    read_end, write_end = os.pipe()
    with processes.collector_paused():
        pid = os.fork()
    if pid == 0:  # the child left the block it was forked in: its next pause still holds
        _pause_in_the_child(write_end)
    said = _what_the_child_said(pid, read_end, write_end)
    assert said == b"01"
    assert gc.isenabled()


def test_the_stat_cache_gives_back_any_numbers_a_file_system_gives(
    tmp_path: Path, not_racy: None
) -> None:
    # records go in as JSON: a time before 1970, inode and device numbers near 2**63 and
    # a size of 0 come back exactly, or their seals would not match and nothing be found
    from forebear import statcache

    cache = statcache.StatCache(tmp_path / "stat-cache.db", tmp_path / "key")
    stats = [
        statcache.FileStat(2**62 + 5, 2**63 - 1, 0, -5_000_000_000, -4_000_000_000),
        statcache.FileStat(1, 7, 10, 1_700_000_000_123_456_789, 1_700_000_000_987_654_321),
    ]
    began = 1_800_000_000_000_000_000
    cache.remember([(stats[0], "a" * 32, began), (stats[1], "b" * 32, began)])
    assert cache.lookup(stats) == ["a" * 32, "b" * 32]
    changed = stats[1]._replace(mtime_ns=stats[1].mtime_ns + 1)
    assert cache.lookup([changed]) == [None]
