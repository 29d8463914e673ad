"""Versions with very many entries: the log spools entries to disk and goes through them
in batches, and reads come back page by page, with the same bytes, digests and errors as
small versions, and memory that does not grow with the number of entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import forebear
from forebear import ingest, spool
from forebear.db import versions as db_versions
from forebear.errors import InvalidPath
from forebear.spool import DuplicateKey, Spool

from .conftest import clean_env, corrupt


@pytest.fixture
def tiny_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spill and batch after a handful of entries, so small tests take the paths that
    millions of entries take."""
    monkeypatch.setattr(spool, "SPILL_ROWS", 40)
    monkeypatch.setattr(ingest, "ROWS_IN_MEMORY", 40)
    monkeypatch.setattr(ingest, "BATCH", 7)
    monkeypatch.setattr(ingest, "MANIFEST_IN_MEMORY", 256)


keys = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(keys, unique=True, max_size=120), st.integers(0, 130), st.integers(1, 50))
def test_spool_returns_rows_in_code_point_order_whether_or_not_it_spilled(
    rows: list[str], spill_rows: int, batch: int
) -> None:
    with Spool(width=2, spill_rows=spill_rows) as spooled:
        for start in range(0, len(rows), 9):
            spooled.add((k, i) for i, k in enumerate(rows[start : start + 9], start))
        assert spooled.spilled == (len(rows) > spill_rows)
        assert len(spooled) == len(rows)
        pages = list(spooled.batches(batch))
        assert all(0 < len(page) <= batch for page in pages)
        assert [k for page in pages for k, _ in page] == sorted(rows)
        assert {k: i for k, i in spooled} == {k: rows.index(k) for k in rows}
        if rows:
            assert rows[0] in spooled
            assert rows[0] + "\0missing" not in spooled


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(keys, min_size=1, max_size=8), st.booleans()),
        st.tuples(st.just("remove"), keys, st.booleans()),
        st.tuples(st.just("contains"), keys, st.booleans()),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(operations, st.integers(0, 30))
def test_a_spool_fed_in_key_order_or_not_keeps_the_same_rows(
    steps: list[tuple[str, object, bool]], spill_rows: int
) -> None:
    """Rows added in rising key order spill to an appended file, any other step moves
    them into SQLite: whatever the mix, the spool holds what a dict would."""
    expected: dict[str, int] = {}
    with Spool(width=2, spill_rows=spill_rows) as spooled:
        for number, (step, value, in_order) in enumerate(steps):
            if step == "add":
                assert isinstance(value, list)
                batch = sorted(set(value)) if in_order else value
                if in_order and expected:  # after every key so far: the appended run
                    batch = [max(expected) + key for key in batch]
                try:
                    spooled.add((key, number) for key in batch)
                except DuplicateKey as refused:
                    assert refused.key in expected or batch.count(refused.key) > 1
                else:
                    assert len(set(batch)) == len(batch) and not expected.keys() & set(batch)
                    expected.update((key, number) for key in batch)
            elif step == "remove":
                assert isinstance(value, str)
                assert spooled.remove(value) == (expected.pop(value, None) is not None)
            else:
                assert (value in spooled) == (value in expected)
            assert len(spooled) == len(expected)
        assert list(spooled) == sorted(expected.items())
        assert [row for page in spooled.batches(3) for row in page] == sorted(expected.items())


def test_a_folder_is_walked_in_the_order_of_the_paths_it_makes(
    make_tree: Callable[..., Path],
) -> None:
    """ "a.txt" sorts before "a/x" ("." < "/"), "a0" after it: a folder's files come out
    in path order, so a large artifact's entries need no sorting."""
    from forebear.walk import Walk

    names = ["a/x", "a/y/z", "a.txt", "a-b/c", "a0", "ab/c", "B", "é/f", "a/y.txt", "a/y-/w"]
    data = make_tree("data", dict.fromkeys(names, "x"))
    walked = list(Walk(str(data)).files())
    assert walked == sorted(names)


@pytest.mark.parametrize("spill_rows", [1000, 3])
def test_spool_refuses_a_duplicate_key_and_keeps_what_it_had(spill_rows: int) -> None:
    with Spool(width=1, spill_rows=spill_rows) as spooled:
        spooled.add([("a",), ("b",), ("c",), ("d",)])
        with pytest.raises(DuplicateKey) as caught:
            spooled.add([("e",), ("c",)])
        assert caught.value.key == "c"
        with pytest.raises(DuplicateKey):
            spooled.add([("x",), ("x",)])
        assert [k for (k,) in spooled] == ["a", "b", "c", "d"]


def test_a_spilled_log_gives_the_same_version_as_an_in_memory_one(
    tmp_path: Path,
    make_tree: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {f"d{i % 5}/f{i:03d}.bin": f"content {i % 60}".encode() for i in range(150)}
    files.update({"B.txt": b"upper", "a.txt": b"lower", "_x": b"underscore", "é.txt": b"e"})
    data = make_tree("data", files)
    extra = make_tree("extra", {"model.pkl": b"weights"})

    def log_into(folder: str) -> forebear.ArtifactVersion:
        artifact = forebear.Artifact("ds")
        artifact.add_dir(data, name="data")
        artifact.add_file(extra / "model.pkl")
        artifact.add_reference(str(extra / "model.pkl"), name="ref/model.pkl")
        with forebear.init(project="p", store=tmp_path / folder) as run:
            return run.log_artifact(artifact)

    in_memory = log_into("memory")
    monkeypatch.setattr(spool, "SPILL_ROWS", 40)
    monkeypatch.setattr(ingest, "ROWS_IN_MEMORY", 40)
    monkeypatch.setattr(ingest, "BATCH", 7)
    monkeypatch.setattr(ingest, "MANIFEST_IN_MEMORY", 256)
    spilled = log_into("spilled")

    assert spilled.digest == in_memory.digest
    assert spilled.file_count == len(files) + 2
    assert spilled.size == in_memory.size
    paths = [e.path for e in spilled.iter_entries()]
    assert paths == sorted(paths) == spilled.files() == in_memory.files()
    assert spilled.manifest.entries == in_memory.manifest.entries
    spilled.verify()

    out = spilled.download(tmp_path / "out")
    for name, content in files.items():
        assert (out / "data" / name).read_bytes() == content
    assert (out / "ref" / "model.pkl").read_bytes() == b"weights"


def test_entries_page_back_in_code_point_order_on_every_backend(
    store: forebear.Store, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upper case before lower, "_" between them, accents last: the manifest's order, which
    a linguistic collation would not give."""
    names = ["B.txt", "a.txt", "_x.txt", "Z/1", "z/1", "é.txt", "e.txt", "a-b", "a_b", "a.b"]
    data = make_tree("data", {name: name.encode() for name in names})
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    monkeypatch.setattr(db_versions, "_BATCH", 3)  # pages of three: every boundary crossed
    paged = [e.path for e in version.iter_entries()]
    assert paged == sorted(names)
    assert paged == version.files()


def test_a_spilled_artifact_refuses_a_path_added_twice(
    make_tree: Callable[..., Path], tiny_batches: None
) -> None:
    data = make_tree("data", {f"f{i:03d}": b"x" for i in range(100)})
    artifact = forebear.Artifact("ds")
    artifact.add_dir(data)
    with pytest.raises(InvalidPath, match="'f050' is already in artifact 'ds'"):
        artifact.add_file(data / "f050")
    assert len(artifact) == 100


def test_a_corrupted_object_is_named_in_a_spilled_version(
    local_store: forebear.Store, make_tree: Callable[..., Path], tiny_batches: None
) -> None:
    data = make_tree("data", {f"f{i:03d}": f"file {i}".encode() for i in range(60)})
    with forebear.init(project="p", store=local_store) as run:
        version = run.log_artifact(data, name="ds")
    victim = version.entry("f042")
    assert victim.digest is not None
    corrupt(local_store, victim.digest, b"rotten")
    problems = local_store.verify("ds")
    assert [p.path for p in problems] == ["f042"]


def test_a_file_changed_after_hashing_fails_the_log_and_commits_nothing(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    tiny_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = make_tree("data", {f"f{i:03d}": f"file {i}".encode() for i in range(30)})
    real = ingest.store_objects

    def edit_then_store(prepared: ingest.Prepared, *args: object, **kwargs: object) -> None:
        (data / "f020").write_bytes(b"changed meanwhile")
        real(prepared, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "store_objects", edit_then_store)
    with (
        pytest.raises(forebear.IntegrityError, match="f020' changed while it was being logged"),
        forebear.init(project="p", store=local_store) as run,
    ):
        run.log_artifact(data, name="ds")
    assert local_store.artifacts() == []


def test_a_file_name_that_is_not_utf8_is_refused_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ok.txt").write_bytes(b"fine")
    try:
        with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "wb") as f:
            f.write(b"latin-1 name")
    except OSError:
        pytest.skip("this filesystem refuses names that are not UTF-8")
    artifact = forebear.Artifact("ds")
    with pytest.raises(InvalidPath, match=r"is not valid UTF-8.*rename the file"):
        artifact.add_dir(folder)


MEMORY_PROBE = """
import json, os, sys, tracemalloc
import forebear
from forebear import artifacts, download, ingest, spool, statcache
from forebear.db import versions as db_versions
from forebear.local import unchanged
unchanged.CHECK_BATCH = 500
spool.SPILL_ROWS = ingest.ROWS_IN_MEMORY = ingest.BATCH = artifacts._ADD_BATCH = 500
db_versions._BATCH = download.PAGE_ENTRIES = 500
ingest.MANIFEST_IN_MEMORY = 1 << 16
from forebear.objects import packs
packs.REMEMBERED_SLOTS = 500  # the slots of packed objects looked up lately: bounded too
statcache.RACY_SECONDS = 0.0  # the files were just written: let the re-log trust them
data, store = sys.argv[1], sys.argv[2]
tracemalloc.start()
with forebear.init(project="p", store=store) as run:
    version = run.log_artifact(data, name="ds")
logged = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
real_prepare = ingest.prepare
ingest.prepare = None  # an unchanged re-log reads no file: it must not get this far
with forebear.init(project="p", store=store) as run:
    assert run.log_artifact(data, name="ds") == version
ingest.prepare = real_prepare
relogged = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
count = sum(1 for _ in version.iter_entries())
version.download(os.path.join(store, "out"))
read = tracemalloc.get_traced_memory()[1]
print(json.dumps({"count": count, "log": logged, "relog": relogged, "read": read}))
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_entries(tmp_path: Path) -> None:
    """Python's traced allocations for logging, logging again unchanged and reading back
    2,000 and 12,000 files (with every batch and page scaled down alike, to 500): the
    larger may not need more."""

    def probe(count: int) -> dict[str, int]:
        data = tmp_path / f"data{count}"
        for i in range(count):
            folder = data / f"d{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            (folder / f"f{i:06d}").write_bytes(b"%d" % i)
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(data), str(tmp_path / f"store{count}")],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        result: dict[str, int] = json.loads(done.stdout)
        assert result["count"] == count
        return result

    small, large = probe(2000), probe(12_000)
    # six times the entries; measured here: 11.5 MB for both logs, 14.0 and 13.9 MB to read
    assert large["log"] < small["log"] * 1.25, (small, large)
    assert large["relog"] < small["relog"] * 1.25, (small, large)
    assert large["read"] < small["read"] * 1.25, (small, large)


def test_batches_hashed_side_by_side_make_the_version_one_batch_makes(
    tmp_path: Path, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a log states one batch while the one before is hashed and the one before that is
    # recorded: the manifest must still list every file once, in order
    data = make_tree("data", {f"d{i % 5}/f{i:03d}": f"file {i}".encode() for i in range(90)})
    logged = {}
    for batch in (ingest.BATCH, 4):
        monkeypatch.setattr(ingest, "BATCH", batch)
        with forebear.open(tmp_path / f"store-{batch}") as store:
            store.upgrade()  # packs: the hashing workers stage the bytes too
            with forebear.init(project="p", store=store) as run:
                version = run.log_artifact(data, name="ds")
            logged[batch] = (version.digest, version.files())
            assert store.verify() == []
            for i in (1, 86):
                with version.open(f"d1/f{i:03d}") as f:
                    assert f.read() == f"file {i}".encode()
    assert logged[4] == logged[ingest.BATCH]


def test_a_file_gone_in_a_later_batch_fails_the_log_with_earlier_batches_under_way(
    local_store: forebear.Store, make_tree: Callable[..., Path], tiny_batches: None
) -> None:
    data = make_tree("data", {f"f{i:03d}": f"file {i}".encode() for i in range(60)})
    local_store.upgrade()
    artifact = forebear.Artifact("ds")
    artifact.add_dir(data)
    (data / "f030").unlink()  # after the walk: its batch finds it gone
    with (
        forebear.init(project="p", store=local_store) as run,
        pytest.raises(InvalidPath, match="f030': the file disappeared after it was added"),
    ):
        run.log_artifact(artifact)
    assert local_store.artifacts() == []
    staging = Path(local_store.objects_url) / "tmp"
    assert not staging.exists() or list(staging.iterdir()) == []  # nothing staged is left
    (data / "f030").write_bytes(b"back")
    with forebear.init(project="p", store=local_store) as run:
        version = run.log_artifact(data, name="ds")
    assert version.file_count == 60
    assert local_store.verify() == []


def test_a_failing_log_hashes_no_batch_it_had_not_begun(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    tiny_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # batch 1 is hashed slowly; batch 2 waits its turn; batch 3 cannot be stated: the log
    # fails once batch 1 is done, without hashing batch 2 for nothing
    data = make_tree("data", {f"f{i:03d}": f"file {i}".encode() for i in range(21)})
    failed = threading.Event()
    hashed: list[str] = []
    real_hash, real_stat = ingest.hash_todo, ingest.stat_file

    def slow_hash(lookup: Any, *args: Any) -> Any:
        assert failed.wait(60)
        hashed.append(os.path.basename(lookup.paths[0]))
        return real_hash(lookup, *args)

    def stat(path: str) -> Any:
        if path.endswith("f014"):  # the first file of the third batch of seven
            failed.set()
            raise InvalidPath(f"cannot log {path!r}: gone")
        return real_stat(path)

    monkeypatch.setattr(ingest, "hash_todo", slow_hash)
    monkeypatch.setattr(ingest, "stat_file", stat)
    with (
        forebear.init(project="p", store=local_store) as run,
        pytest.raises(InvalidPath, match="f014': gone"),
    ):
        run.log_artifact(data, name="ds")
    assert hashed == ["f000"]
    assert local_store.artifacts() == []
