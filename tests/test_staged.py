"""Many small files are read once: the hashing workers stage their bytes beside the packs
as they hash them, a staging file whose every object the store lacks becomes a pack as it
is, and any other way through (objects stored already, duplicates, a staging file gone)
stores each object once, checked, from the bytes that were hashed."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xxhash

import forebear
from forebear import ingest
from forebear.hash_workers import HashPool, hash_files
from forebear.hashing import POOL_MIN_FILES, Hashed
from forebear.objects.packs import Packs

from .conftest import run_cli

MANY = POOL_MIN_FILES + 500  # enough files to be hashed by worker processes


def small_files(root: Path, count: int = MANY, *, start: int = 0, copies: int = 1) -> Path:
    """``count`` files of 1 to 4 KiB (each content ``copies`` times)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        content = i // copies
        (root / f"f{i:05d}.bin").write_bytes(f"{content:08d}".encode() * (128 + content % 384))
    return root


@pytest.fixture
def store(tmp_path: Path) -> Iterator[forebear.Store]:
    opened = forebear.open(tmp_path / "store")
    assert opened.upgrade() == 3
    yield opened
    opened.close()


@pytest.fixture
def adopted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests of the staging files published as packs as they were."""
    found: list[str] = []
    adopt = Packs.adopt

    def noting(self: Packs, sealed: Any) -> None:
        adopt(self, sealed)
        found.append(sealed.digest)

    monkeypatch.setattr(Packs, "adopt", noting)
    return found


def log(store: forebear.Store, folder: Path, name: str) -> forebear.ArtifactVersion:
    with forebear.init(project="p", store=store) as run:
        return run.log_artifact(folder, name=name)


def packed_digests(store: forebear.Store) -> Counter[str]:
    """How many packs hold each object."""
    objects = store.objects
    assert objects.packs is not None
    held: Counter[str] = Counter()
    for stored in objects.iter_packs():
        held.update(objects.packs.read_index(stored.digest)[1].keys())
    return held


def assert_whole(store: forebear.Store, version: forebear.ArtifactVersion, folder: Path) -> None:
    """Every file reads back as it is, the store verifies, each object is stored once,
    and no staging file is left behind."""
    for entry in version.iter_entries():
        assert version.open(entry.path).read() == (folder / entry.path).read_bytes()
    assert store.verify() == []
    assert [d for d, packs in packed_digests(store).items() if packs > 1] == []
    assert list((Path(store.objects.root) / "tmp").glob("*")) == []


def test_a_first_log_of_many_small_files_publishes_the_staged_bytes_as_packs(
    store: forebear.Store, tmp_path: Path, adopted: list[str]
) -> None:
    data = small_files(tmp_path / "data")
    version = log(store, data, "ds")
    assert adopted  # the workers' staging files became packs, not copied
    assert set(adopted) <= {stored.digest for stored in store.objects.iter_packs()}
    assert_whole(store, version, data)
    assert version.new_bytes == sum(f.stat().st_size for f in data.iterdir())


def test_the_bytes_stored_are_the_bytes_hashed_even_if_a_file_changes_after(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adopted: list[str]
) -> None:
    """The staged bytes are the ones hashed: a file rewritten between hashing and storing
    cannot make the version hold bytes other than those its digest names."""
    data = small_files(tmp_path / "data")
    before = (data / "f00007.bin").read_bytes()
    store_objects = ingest.store_objects

    def rewriting_first(prepared: ingest.Prepared, *args: Any, **kwargs: Any) -> None:
        (data / "f00007.bin").write_bytes(b"X" * len(before))
        store_objects(prepared, *args, **kwargs)

    monkeypatch.setattr(ingest, "store_objects", rewriting_first)
    version = log(store, data, "ds")
    assert adopted
    assert version.open("f00007.bin").read() == before
    assert store.verify() == []


def test_objects_the_store_holds_already_are_not_stored_again(
    store: forebear.Store, tmp_path: Path, adopted: list[str]
) -> None:
    """A copy of a logged folder and a few new files: the copies are hashed (other inodes)
    and staged, but only the new files are stored, copied out of the staging files."""
    first = small_files(tmp_path / "first")
    log(store, first, "first")
    adopted.clear()
    second = tmp_path / "second"
    shutil.copytree(first, second)
    small_files(second, 300, start=MANY)
    version = log(store, second, "second")
    assert adopted == []  # no staging file held only new objects
    assert version.new_bytes == sum(
        (second / f"f{i:05d}.bin").stat().st_size for i in range(MANY, MANY + 300)
    )
    assert_whole(store, version, second)


def test_files_of_the_same_content_are_stored_once(store: forebear.Store, tmp_path: Path) -> None:
    data = small_files(tmp_path / "data", copies=5)
    version = log(store, data, "ds")
    assert_whole(store, version, data)
    assert len(packed_digests(store)) == MANY // 5 + 1  # and the manifest


def test_a_staging_file_removed_before_it_is_used_is_stored_from_the_sources(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gc cleans ``tmp/`` of files an hour old: a staging file it removed is not needed,
    the files are read again."""
    data = small_files(tmp_path / "data")
    store_objects = ingest.store_objects
    removed: list[Path] = []

    def removing_staged(prepared: ingest.Prepared, *args: Any, **kwargs: Any) -> None:
        for staged in (Path(store.objects.root) / "tmp").glob("*-stage-*"):
            staged.unlink()
            removed.append(staged)
        store_objects(prepared, *args, **kwargs)

    monkeypatch.setattr(ingest, "store_objects", removing_staged)
    version = log(store, data, "ds")
    assert removed  # there were staging files to lose
    assert_whole(store, version, data)


def test_a_failed_log_leaves_no_staging_file(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_files(tmp_path / "data")
    tmp = Path(store.objects.root) / "tmp"
    staged: list[Path] = []

    def failing(*args: Any, **kwargs: Any) -> None:
        staged.extend(tmp.glob("*-stage-*"))
        raise forebear.StoreError("the store went away")

    monkeypatch.setattr(ingest, "store_objects", failing)
    with pytest.raises(forebear.StoreError):
        log(store, data, "ds")
    assert staged  # there were staging files to remove
    assert list(tmp.glob("*")) == []


@pytest.mark.postgres
def test_a_log_through_a_full_open_stages_too(
    postgres_url: str, tmp_path: Path, adopted: list[str]
) -> None:
    """A catalog in PostgreSQL is opened whole before hashing begins: the same staging."""
    store = forebear.Store(postgres_url, str(tmp_path / "objects"), cache_dir=tmp_path / "c")
    store.upgrade()
    data = small_files(tmp_path / "data")
    version = log(store, data, "ds")
    assert adopted
    assert_whole(store, version, data)
    store.close()


def test_workers_stage_each_distinct_content_once_and_report_whole_files(
    tmp_path: Path,
) -> None:
    data = small_files(tmp_path / "data", copies=2)
    (data / "line\nbreak.bin").write_bytes(b"a name the answers' lines cannot hold")
    paths = sorted(str(p) for p in data.iterdir())
    with HashPool(str(tmp_path / "stage")) as pool:
        results = hash_files(paths, [os.path.getsize(p) for p in paths], pool=pool)
        finished = pool.finish_staging()
        began = pool.staging_files()
    assert finished and sorted(f.path for f in finished.values()) == sorted(began)
    for staged in finished.values():
        body = Path(staged.path).read_bytes()
        assert len(body) == staged.size
        assert xxhash.xxh3_128_hexdigest(body) == staged.digest
    places: dict[str, set[tuple[str, int]]] = {}
    for path, result in zip(paths, results, strict=True):
        assert isinstance(result, Hashed) and result.staged is not None
        name, offset = result.staged
        body = Path(finished[name].path).read_bytes()
        assert body[offset : offset + result.size] == Path(path).read_bytes()
        places.setdefault(result.digest, set()).add(result.staged)
    staged_objects = sum(f.objects for f in finished.values())
    assert staged_objects == sum(len(p) for p in places.values())
    assert staged_objects < len(paths)  # a content met twice by one worker, staged once


def test_the_command_line_stages_into_a_store_named_by_a_relative_path(tmp_path: Path) -> None:
    data = small_files(tmp_path / "data")
    for args in (("init",), ("upgrade",), ("log", "-n", "ds", "data")):
        done = run_cli("--objects", "store", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert not (tmp_path / "tmp").exists() and list(tmp_path.rglob("*-stage-*")) == []
    store = forebear.open(tmp_path / "store")
    version = store.artifact("ds")
    assert_whole(store, version, data)
    store.close()


STAGE_SCRIPT = """
import json, os, resource, signal, sys
from forebear import hash_workers
from forebear.hash_workers import Stager

folder, limit = sys.argv[1], int(sys.argv[2])
hash_workers.STAGE_TARGET = 3 << 20  # several staging files from a few MiB
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
stager = Stager(folder)
places = []
for i in range(100):
    data = i.to_bytes(2, "big") * (50_000 + 997 * i)  # 100-300 KB, never page-aligned
    places.append(stager.add(hash_workers.xxhash.xxh3_128_hexdigest(data), data))
stager.finish()
print(json.dumps({"places": places, "lines": stager.lines(wait=True).decode().splitlines()}))
"""


def run_stager(tmp_path: Path, limit: int) -> tuple[list[Any], list[str]]:
    """A `Stager` in a process of its own (files above ``limit`` bytes refused, if set)."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", STAGE_SCRIPT, str(tmp_path / "stage"), str(limit)],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout)
    return answer["places"], answer["lines"]


def test_staging_files_hold_each_staged_object_at_its_place(tmp_path: Path) -> None:
    places, lines = run_stager(tmp_path, limit=0)
    reported = {}
    for line in lines:
        name, digest, size, objects = line.removeprefix("=").split()
        body = (tmp_path / "stage" / name).read_bytes()
        assert (len(body), xxhash.xxh3_128_hexdigest(body)) == (int(size), digest)
        assert int(objects) == sum(1 for place in places if place[0] == name)
        reported[name] = body
    assert len(reported) > 2  # the files were finished and begun again as they filled
    for i, place in enumerate(places):
        data = i.to_bytes(2, "big") * (50_000 + 997 * i)
        name, offset = place
        assert reported[name][offset : offset + len(data)] == data


def test_a_staging_file_that_cannot_be_written_is_removed_and_never_reported(
    tmp_path: Path,
) -> None:
    places, lines = run_stager(tmp_path, limit=2 << 20)  # short of the 3 MiB of a file
    assert lines == []
    stopped = places.index(None)  # staging stopped at the failed write, for good
    assert stopped > 0 and all(place is None for place in places[stopped:])
    assert os.listdir(tmp_path / "stage") == []
