"""``forebear://`` through fsspec: listings and globs from the manifest, reads verified,
byte ranges that fetch only their chunks, pandas / PyArrow / DuckDB reading versions by
ref, input edges recorded once, and one clear error for each bad URL; on SQLite + a folder
and on PostgreSQL + S3."""

from __future__ import annotations

import multiprocessing
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import forebear
from forebear.chunking import Chunking
from forebear.fs import ForebearFileSystem

from .conftest import clean_env, corrupt, count_object_reads

TreeMaker = Callable[..., Path]
CSV = "a,b\n" + "".join(f"{i},{i * i}\n" for i in range(500))


@pytest.fixture
def fs(store: forebear.Store, make_tree: TreeMaker, tmp_path: Path) -> Iterator[ForebearFileSystem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = make_tree("data", {"train.csv": CSV, "images/1.png": "one", "images/deep/2.png": "2"})
    pq.write_table(pa.table({"n": list(range(10_000))}), data / "table.parquet")
    with forebear.init(project="iris", name="prepare", store=store) as run:
        run.log_artifact(data, name="raw", type="dataset")
    yield ForebearFileSystem(store=store, skip_instance_cache=True)


def names(found: list[Any]) -> list[str]:
    return [item if isinstance(item, str) else item["name"] for item in found]


def test_listings_and_globs_come_from_the_manifest(fs: ForebearFileSystem) -> None:
    top = fs.ls("forebear://raw:latest/")
    assert [(i["name"], i["type"]) for i in top] == [
        ("raw:latest/images", "directory"),
        ("raw:latest/table.parquet", "file"),
        ("raw:latest/train.csv", "file"),
    ]
    assert names(fs.ls("forebear://iris/raw:v0/images")) == [
        "iris/raw:v0/images/1.png",
        "iris/raw:v0/images/deep",
    ]
    assert fs.glob("forebear://raw:v0/**/*.png") == [
        "raw:v0/images/1.png",
        "raw:v0/images/deep/2.png",
    ]
    assert fs.info("forebear://raw:v0/train.csv")["size"] == len(CSV)
    assert fs.info("forebear://raw:v0/images")["type"] == "directory"
    assert fs.isdir("forebear://raw:v0/images") and fs.isfile("forebear://raw:v0/train.csv")
    assert not fs.exists("forebear://raw:v0/nope.csv")


def test_pandas_pyarrow_and_duckdb_read_versions_by_ref(
    fs: ForebearFileSystem, store: forebear.Store
) -> None:
    import duckdb
    import pandas as pd

    options = {"store": store}
    frame = pd.read_csv("forebear://iris/raw:v0/train.csv", storage_options=options)
    assert frame.shape == (500, 2) and frame["b"].iloc[-1] == 499 * 499
    table = pd.read_parquet("forebear://raw:latest/table.parquet", storage_options=options)
    assert int(table["n"].sum()) == sum(range(10_000))
    connection = duckdb.connect()
    connection.register_filesystem(fs)
    found = connection.sql("select sum(n) from read_parquet('forebear://raw:v0/table.parquet')")
    assert found.fetchall() == [(sum(range(10_000)),)]


def test_reads_in_a_run_record_one_input_edge(
    fs: ForebearFileSystem, store: forebear.Store
) -> None:
    with forebear.init(project="iris", name="train", store=store) as run:
        for url in ("forebear://raw:latest/train.csv", "forebear://raw:v0/images/1.png"):
            with fs.open(url) as f:
                f.read()
        fs.cat_file("forebear://iris/raw:v0/train.csv", 0, 3)
        assert [v.ref for v in run.inputs] == ["raw:v0"]
    assert [r.name for r in store.artifact("raw:v0").consumers] == ["train"]


def test_corrupted_bytes_never_reach_the_reader(
    fs: ForebearFileSystem, store: forebear.Store
) -> None:
    entry = store.artifact("raw:v0").entry("train.csv")
    assert entry.digest is not None
    corrupt(store, entry.digest, b"b" * len(CSV))
    with (
        pytest.raises((forebear.IntegrityError, OSError)) as raised,
        fs.open("forebear://raw:v0/train.csv") as f,
    ):
        f.read()
    error = raised.value
    assert isinstance(error, forebear.IntegrityError) or isinstance(
        error.__cause__, forebear.IntegrityError
    )


def test_bad_urls_get_one_clear_error(fs: ForebearFileSystem) -> None:
    with pytest.raises(forebear.InvalidRef, match="names no version"):
        fs.ls("forebear://raw/train.csv")
    with pytest.raises(forebear.InvalidRef):
        fs.info("forebear://a:b:c/x")
    with pytest.raises(forebear.VersionNotFound, match="no version raw:v9"):
        fs.cat_file("forebear://raw:v9/train.csv")
    with pytest.raises(FileNotFoundError, match="no such file"):
        fs.cat_file("forebear://raw:v0/nope.csv")
    with pytest.raises(FileNotFoundError):
        fs.ls("forebear://raw:v0/nowhere/")
    with pytest.raises(IsADirectoryError):
        fs.open("forebear://raw:v0/images")
    with pytest.raises(PermissionError, match="read-only"):
        fs.open("forebear://raw:v0/new.csv", "wb")


def test_a_range_of_a_large_file_fetches_only_its_chunks(
    local_store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_store.chunking = Chunking(threshold=1 << 20, avg_size=64 << 10, min_size=16 << 10,
                                    max_size=256 << 10)  # fmt: skip
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 16_384)  # 4 MiB
    with forebear.init(project="p", store=local_store) as run:
        run.log_artifact(big, name="big")
    opened = count_object_reads(local_store.objects, monkeypatch)
    fs = ForebearFileSystem(store=local_store, skip_instance_cache=True)
    part = fs.cat_file("forebear://big:v0/big.bin", 3_000_000, 3_000_100)
    assert part == big.read_bytes()[3_000_000:3_000_100]
    assert 1 <= len(opened) <= 2  # one chunk (two if the range crosses a boundary), not 4 MiB


def test_a_fresh_interpreter_finds_the_protocol(
    local_store: forebear.Store, tmp_path: Path
) -> None:
    (tmp_path / "note.txt").write_text("one")
    with forebear.init(project="p", store=local_store) as run:
        run.log_artifact(tmp_path / "note.txt", name="note")
    script = (
        "import sys, fsspec\n"
        f"fs = fsspec.filesystem('forebear', store={str(local_store.objects_url)!r})\n"
        "print('forebear' in sys.modules, fs.cat_file('forebear://note:v0/note.txt'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=clean_env(), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True b'one'"  # loaded through the entry point


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_child_forked_while_a_thread_holds_the_catalogs_pool_lock_asks_the_catalog(
    tmp_path: Path,
) -> None:
    """A data loader may fork while one of the parent's threads (one reading ahead) is
    inside the catalog's connection pool, holding its lock. The child has no such thread
    to release it: it must ask the catalog through a pool of its own."""
    from sqlalchemy import text

    from forebear.db.engine import make_engine, read_session

    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    with read_session(engine) as session:
        session.execute(text("SELECT 1"))
    lock = engine.pool._pool.mutex  # type: ignore[attr-defined]  # SQLAlchemy's queue lock
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            done.wait()

    def child() -> None:
        with read_session(engine) as session:
            os._exit(0 if session.execute(text("SELECT 41 + 1")).scalar() == 42 else 3)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    worker = multiprocessing.get_context("fork").Process(target=child)
    try:
        worker.start()
        worker.join(timeout=120)  # a guard: it ends at once, or waits on the lock for ever
        assert worker.exitcode == 0
    finally:
        done.set()
        holder.join()
        if worker.is_alive():
            worker.kill()
            worker.join()
        engine.dispose()


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_worker_reads_on_with_what_its_parent_opened(
    store: forebear.Store, tmp_path: Path
) -> None:
    """A data loader forks its workers after the dataset opened the store and a file: each
    worker reads on from the inherited file (large reads run on threads, which a fork does
    not copy) and asks the catalog with connections of its own, two workers at once, and
    the parent carries on with its own."""
    store.chunking = Chunking.around(avg_size=16 << 10, threshold=256 << 10)
    data = tmp_path / "data"
    data.mkdir()
    big = random.Random(5).randbytes(4 << 20)
    (data / "big.bin").write_bytes(big)
    (data / "small.txt").write_text("small")
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(data, name="ds")
    fs = ForebearFileSystem(store=store, skip_instance_cache=True)
    stream = fs.open("forebear://ds:v0/big.bin", "rb")
    head = stream.read(3 << 20)

    def worker() -> None:
        rest = stream.read()
        for _ in range(40):  # the catalog, from two children at once
            listing = names(fs.ls("forebear://ds:v0/", refresh=True))
            small = store.artifact("ds").open("small.txt").read()
        os._exit(0 if (head + rest, small, len(listing)) == (big, b"small", 2) else 3)

    children = [multiprocessing.get_context("fork").Process(target=worker) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)  # a guard: a worker waiting on its parent's threads never ends
    assert [child.exitcode for child in children] == [0, 0]
    assert stream.read() == big[3 << 20 :]
    stream.close()
    with forebear.init(project="p", store=store) as run:  # the parent's connections
        run.log_artifact(data / "small.txt", name="after")
    assert fs.cat_file("forebear://after:v0/small.txt") == b"small"


def read_in_a_spawned_worker(fs: ForebearFileSystem, url: str) -> bytes:
    return bytes(fs.cat_file(url))


def test_a_spawned_worker_gets_the_store_by_pickle(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data loader that spawns its workers pickles the dataset, and with it a filesystem
    given ``store=``: the store travels as where it is and is opened again in the worker
    (a server's token then comes from the environment, as on any fresh process)."""
    (tmp_path / "note.txt").write_text("carried over")
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(tmp_path / "note.txt", name="note")
    server = getattr(store, "server", None)
    if server is not None:
        monkeypatch.setenv("FOREBEAR_TOKEN", server.admin_token)
    fs = ForebearFileSystem(store=store, skip_instance_cache=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        read = pool.apply(read_in_a_spawned_worker, (fs, "forebear://p/note:v0/note.txt"))
    assert read == b"carried over"
