"""Faults and old data: files that change under us, a full disk, a locked database, and a
store written by an earlier forebear that must keep reading."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import forebear
from forebear import fingerprint as fingerprint_module
from forebear.db import engine as engine_module
from forebear.objects import ObjectLocation
from forebear.objects import local as local_objects

from .conftest import format_2

FIXTURE = Path(__file__).parent / "data" / "store-v1"


def no_version(store: forebear.Store, name: str) -> bool:
    try:
        store.versions(name)
    except forebear.ArtifactNotFound:
        return True
    return False


def test_a_file_changed_while_hashing_is_refused(
    store: forebear.Store, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 1000, "b.bin": b"B" * 1000})
    real_hash = fingerprint_module.hash_files

    def hash_then_scribble(
        paths: list[str], sizes: list[int], progress: object = None, pool: object = None
    ) -> list:
        result = real_hash(paths, sizes, progress, pool)  # type: ignore[arg-type]
        (data / "a.bin").write_bytes(b"a" * 1001)  # someone writes to it meanwhile
        return result

    monkeypatch.setattr(fingerprint_module, "hash_files", hash_then_scribble)
    with (
        forebear.init(project="p", store=store) as run,
        pytest.raises(forebear.IntegrityError, match="changed while it was being logged"),
    ):
        run.log_artifact(data, name="ds")
    assert no_version(store, "ds")
    assert store.verify() == []


def test_a_file_changed_while_storing_is_refused(
    loose_store: forebear.Store, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # each file stored from its source after hashing (packs store the bytes they hashed:
    # tests/test_staged.py)
    store = loose_store
    data = make_tree("data", {"a.bin": b"A" * 1000})
    location_kind = type(store.objects)  # a folder or an object store
    real_put = location_kind.put_files

    def put_then_scribble(
        self: ObjectLocation, items: list, progress: object = None, sizes: object = None
    ) -> None:
        real_put(self, items, progress, sizes)  # type: ignore[arg-type]
        (data / "a.bin").write_bytes(b"Z" * 1000)  # same size, new bytes, new mtime

    monkeypatch.setattr(location_kind, "put_files", put_then_scribble)
    with forebear.init(project="p", store=store) as run, pytest.raises(forebear.IntegrityError):
        run.log_artifact(data, name="ds")
    assert no_version(store, "ds")


@pytest.mark.parametrize(
    ("code", "message"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_a_full_disk_or_read_only_location_leaves_nothing_partial(
    tmp_path: Path,
    make_tree: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    message: str,
) -> None:
    # a file an object, the third refused (packs: tests/test_packs.py)
    local_store = forebear.open(format_2(tmp_path / "store"))
    data = make_tree("data", {f"f{i}.bin": bytes([i]) * 5000 for i in range(5)})
    real_publish = local_objects.move_into_place
    published: list[str] = []

    def publish_until_full(tmp: str, final: str) -> None:
        if len(published) == 2:
            raise OSError(code, message)
        published.append(final)
        real_publish(tmp, final)

    monkeypatch.setattr(local_objects, "move_into_place", publish_until_full)
    with (
        forebear.init(project="p", store=local_store) as run,
        pytest.raises(forebear.StoreError, match=message),
    ):
        run.log_artifact(data, name="ds")
    assert no_version(local_store, "ds")
    tmp = Path(local_store.objects.root) / "tmp"
    assert list(tmp.iterdir()) == []  # the half-written object was removed
    monkeypatch.setattr(local_objects, "move_into_place", real_publish)  # fixed by the user
    with forebear.init(project="p", store=local_store) as run:
        version = run.log_artifact(data, name="ds")
    assert version.ref == "ds:v0"
    assert local_store.verify() == []


def test_a_locked_database_waits_then_fails_clearly(
    tmp_path: Path, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_SECONDS", 1)
    store = forebear.open(tmp_path / "store")
    data = make_tree("data", {"a": "a"})
    blocker = sqlite3.connect(tmp_path / "store" / "meta.db", timeout=1)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with (
            pytest.raises(forebear.StoreError, match="locked"),
            forebear.init(project="p", store=store) as run,
        ):
            run.log_artifact(data, name="ds")
    finally:
        blocker.rollback()
        blocker.close()
    with forebear.init(project="p", store=store) as run:
        assert run.log_artifact(data, name="ds").ref == "ds:v0"
    assert store.verify() == []
    store.close()


def test_a_store_written_by_format_1_still_reads(tmp_path: Path) -> None:
    copy = tmp_path / "store-v1"
    shutil.copytree(FIXTURE, copy)
    with forebear.open(copy) as store:
        assert store.verify() == []
        model = store.artifact("fixture/model:best")
        assert model.metadata == {"acc": 0.5}
        assert model.open("model.bin").read() == b"weights v1"
        raw = store.artifact("raw:gold")
        assert raw.description == "the fixture's dataset"
        assert raw.files() == ["README.txt", "data.csv"]
        assert [v.ref for v in model.upstream()] == ["raw:v0"]
        assert [r.name for r in model.producers] == ["train"]
        assert store.run(model.producers[0].id).status == "finished"
        folder = raw.download(tmp_path / "raw")
        assert (folder / "data.csv").read_text() == "a,b\n1,2\n"
        with forebear.init(project="fixture", store=store) as run:  # and can be written to
            run.use_artifact("model:best")


def test_a_newer_format_is_refused_with_the_version_needed(tmp_path: Path) -> None:
    copy = tmp_path / "future"
    shutil.copytree(FIXTURE, copy)
    (copy / "forebear.json").write_text('{"format_version": 4, "hash": "xxh3-128"}')
    with pytest.raises(forebear.StoreVersionError, match="format version 4"):
        forebear.open(copy)
