"""The store's promises against a full disk, a wrong or replaced catalog, another PID
namespace, tampered catalogs and caches, and racing destinations (docs/reliability.md).

Each test here failed on forebear before these promises were kept at their root.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

import forebear
from forebear.hashing import hash_bytes
from forebear.objects import open_location

from .conftest import (
    clean_env,
    corrupt,
    format_2,
    python_in_own_mounts,
    run_cli,
)

NO_GRACE = dt.timedelta(0)
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="mounts and PID namespaces need root (CI runs as root)"
)

COMMIT = "commit"  # `start_writer` pauses before the commit
# A writer that stops after storing N objects (or before its commit) until the file GO
# exists, then carries on.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import forebear
    from forebear import objects

    from forebear.local import commit

    store_dir, data_dir, name, limit, ready, go = sys.argv[1:7]
    original = objects.LocalLocation.put_file
    stored = []

    def pause():
        Path(ready).write_text(str(os.getpid()))
        give_up = time.monotonic() + 600  # a test that failed before saying go
        while not Path(go).exists():
            if time.monotonic() > give_up:
                sys.exit(4)
            time.sleep(0.02)

    def put_file(self, local_path, digest, progress=None, **options):
        if len(stored) == int(limit):
            pause()
        result = original(self, local_path, digest, progress, **options)
        stored.append(digest)
        return result

    def commit_logged(*args, original=commit.commit_logged, **options):
        pause()
        return original(*args, **options)

    if limit == COMMIT:  # everything stored (in packs, say), the commit not begun
        commit.commit_logged = commit_logged
    else:  # a file an object (format 2): paused before the object after the limit
        objects.LocalLocation.put_file = put_file
    try:
        with forebear.init(project="p", name="writer", store=store_dir) as run:
            version = run.log_artifact(data_dir, name=name)
    except forebear.ForebearError as exc:
        print(f"refused: {exc}")
        sys.exit(3)
    print(version.ref)
    """
)


def start_writer(
    store_dir: Path, data: Path, name: str, limit: int | str, tmp_path: Path, **env: str
) -> tuple[subprocess.Popen[str], Path, Path]:
    """A writer logging ``data`` paused once it stored ``limit`` objects (a store in format
    2), or (``COMMIT``) once it stored them all, before its commit."""
    ready, go = tmp_path / f"ready-{name}", tmp_path / f"go-{name}"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER.replace("COMMIT", repr(COMMIT)), str(store_dir),
         str(data), name, str(limit), str(ready), str(go)],
        env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the writer never reached its pause"
        time.sleep(0.02)
    return process, ready, go


def dataset(root: Path, files: int, size: int, seed: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"part-{i:03d}.bin").write_bytes((f"{seed}-{i}-".encode() * size)[:size])
    return root


def log(store: forebear.Store, data: Path, name: str = "ds") -> forebear.ArtifactVersion:
    with forebear.init(project="p", store=store) as run:
        return run.log_artifact(data, name=name)


# -- 1. short writes and objects found stored -------------------------------------------


@needs_root
@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_a_full_disk_never_leaves_a_short_object_that_a_retry_trusts(
    tmp_path: Path, packed: bool
) -> None:
    """A real full filesystem (a small tmpfs): the log fails, nothing short is published
    (no object, no pack), and the retry after space is freed stores a version that
    verifies."""
    made = None if packed else 2  # format 2: as forebear made stores before packs
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        import forebear
        objects, catalog = Path("{tmp_path}/objects"), "sqlite:///{tmp_path}/meta.db"
        data = Path("{tmp_path}/data"); data.mkdir()
        payload = os.urandom(1536 * 1024)  # two write blocks: the second one is cut short
        (data / "big.bin").write_bytes(payload)
        store = forebear.Store(catalog, str(objects), cache_dir="{tmp_path}/cache", format={made})
        free = os.statvfs(objects).f_bavail * os.statvfs(objects).f_frsize
        filler = objects / "filler"
        filler.write_bytes(b"x" * (free - 1300 * 1024))  # room for 1 MiB and a bit
        try:
            with forebear.init(project="p", store=store) as run:
                run.log_artifact(data, name="ds")
            sys.exit("the log should have failed on the full disk")
        except forebear.StoreError as exc:
            assert "space" in str(exc).lower(), exc
        for path in [*(objects / "objects").rglob("*"), *(objects / "packs").rglob("*")]:
            if path.is_file() and path.suffix != ".idx":  # a pack is named by its digest too
                from forebear.hashing import hash_bytes
                assert hash_bytes(path.read_bytes()) == path.parent.name + path.name, path
        filler.unlink()
        with forebear.init(project="p", store=store) as run:
            version = run.log_artifact(data, name="ds")
        assert store.verify() == [], store.verify()
        assert version.open("big.bin").read() == payload
        print("ok")
        """
    )
    (tmp_path / "objects").mkdir()
    done = python_in_own_mounts(f"mount -t tmpfs -o size=4m tmpfs {tmp_path}/objects", script)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "ok"


@needs_root
def test_a_full_disk_under_the_catalog_says_to_free_space_and_records_nothing(
    tmp_path: Path,
) -> None:
    """The catalog on a real full filesystem (a small tmpfs): a log fails with one line
    that says to free space, records no version, and the same log succeeds once space is
    freed; a re-log of unchanged files on the full disk either fits in the journal's room
    or fails the same way, and the store verifies afterwards."""
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys
        from pathlib import Path
        tmp = Path("{tmp_path}")
        catalog, data = tmp / "catalog", tmp / "data"
        data.mkdir()
        (data / "first.bin").write_bytes(os.urandom(10_000))
        def cli(*args):
            return subprocess.run(
                [sys.executable, "-m", "forebear", "--db", f"sqlite:///{{catalog}}/meta.db",
                 "--objects", str(tmp / "objects"), *args],
                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        def one_line_about_space(done):
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 1 and len(lines) == 1, done.stderr
            assert lines[0].startswith("forebear: error: "), done.stderr
            assert "free some space" in lines[0], done.stderr
        assert cli("log", "-n", "ds", str(data)).returncode == 0
        for i in range(3000):  # more catalog rows than the journal has room for
            (data / f"f{{i:04}}.bin").write_bytes(os.urandom(64))
        filler = catalog / "filler"
        with open(filler, "wb", buffering=0) as out:
            try:
                while out.write(b"x" * 4096):
                    pass
            except OSError:
                pass  # the disk is full
        one_line_about_space(cli("log", "-n", "ds", str(data)))
        filler.unlink()
        listed = cli("show", "ds")
        assert listed.returncode == 0 and "ds:v0" in listed.stdout, listed.stdout
        assert "ds:v1" not in cli("ls").stdout
        done = cli("log", "-n", "ds", str(data))
        assert done.returncode == 0 and "ds:v1" in done.stdout, done.stderr
        with open(filler, "wb", buffering=0) as out:
            try:
                while out.write(b"x" * 4096):
                    pass
            except OSError:
                pass
        again = cli("log", "-n", "ds", str(data))
        assert again.returncode == 0 or "free some space" in again.stderr, again.stderr
        filler.unlink()
        checked = cli("verify")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        print("ok")
        """
    )
    (tmp_path / "catalog").mkdir()
    done = python_in_own_mounts(f"mount -t tmpfs -o size=2m tmpfs {tmp_path}/catalog", script)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "ok"


def test_an_object_found_with_the_wrong_size_is_stored_again(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000, "b.bin": b"B" * 7000})
    digest = hash_bytes(b"A" * 5000)
    path = store.objects.path_of(digest)
    store.objects.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    store.objects.fs.pipe_file(path, b"A" * 4096)  # a short leftover under the final name
    version = log(store, data)
    assert store.verify() == []
    assert version.open("a.bin").read() == b"A" * 5000
    assert store.objects.size_of(digest) == 5000


def test_a_local_leftover_is_not_trusted_until_it_hashes_to_its_name(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000})
    digest = hash_bytes(b"A" * 5000)
    path = Path(local_store.objects.path_of(digest))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"Z" * 5000)  # right size, wrong bytes: a failed log's leftover
    version = log(local_store, data)
    assert local_store.verify() == []
    assert version.open("a.bin").read() == b"A" * 5000


def test_a_committed_object_is_not_read_again_by_the_next_log(
    local_store: forebear.Store, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_tree("data", {"a.bin": b"A" * 5000, "b.bin": b"B" * 100})
    log(local_store, data)
    from forebear import chunk_storing

    hashed: list[str] = []
    real = chunk_storing.hash_files
    monkeypatch.setattr(
        chunk_storing,
        "hash_files",
        lambda paths, sizes: hashed.extend(paths) or real(paths, sizes),
    )
    (data / "b.bin").write_bytes(b"C" * 100)
    log(local_store, data)  # a.bin is committed already: relied on without reading it
    assert hashed == []


# -- 2. the catalog and the object location belong together ------------------------------


def test_gc_through_a_mistyped_catalog_is_refused_and_deletes_nothing(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        version = log(store, make_tree("data", {"a.txt": "a", "b.txt": "b"}))
        before = sorted(store.objects.iter_digests())
    typo = f"sqlite:///{tmp_path / 'typo.db'}"
    done = run_cli("--db", typo, "--objects", str(store_dir), "gc", "--grace", "0")
    assert done.returncode == 1
    assert done.stderr.startswith("forebear: error: ")
    assert "mistyped --db" in done.stderr and "Traceback" not in done.stderr
    with forebear.open(store_dir) as store:
        assert sorted(store.objects.iter_digests()) == before
        assert store.verify() == []
        assert store.artifact(version.ref).digest == version.digest


def test_a_lost_catalog_is_not_replaced_by_an_empty_one(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        log(store, make_tree("data", {"a.txt": "a"}))
        before = sorted(store.objects.iter_digests())
    for name in ("meta.db", "meta.db-wal", "meta.db-shm"):
        (store_dir / name).unlink(missing_ok=True)
    with pytest.raises(forebear.StoreError, match=r"lost meta\.db"):
        forebear.open(store_dir)
    assert sorted(open_location(str(store_dir)).iter_digests()) == before
    assert not (store_dir / "meta.db").exists()  # and no empty catalog was made


def test_two_stores_cannot_be_mixed(tmp_path: Path, make_tree: Callable[..., Path]) -> None:
    with forebear.open(tmp_path / "one") as one, forebear.open(tmp_path / "two") as two:
        log(one, make_tree("d1", {"a.txt": "a"}))
        log(two, make_tree("d2", {"b.txt": "b"}))
    mixed = run_cli("--db", f"sqlite:///{tmp_path / 'one' / 'meta.db'}",
                    "--objects", str(tmp_path / "two"), "log", str(tmp_path / "d1"))  # fmt: skip
    assert mixed.returncode == 1
    assert "not one store" in mixed.stderr


def test_a_catalog_whose_objects_are_elsewhere_is_refused(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    with forebear.open(tmp_path / "store") as store:
        log(store, make_tree("d", {"a.txt": "a"}))
    elsewhere = run_cli("--db", f"sqlite:///{tmp_path / 'store' / 'meta.db'}",
                        "--objects", str(tmp_path / "fresh"), "ls")  # fmt: skip
    assert elsewhere.returncode == 1
    assert "whose objects are not at" in elsewhere.stderr
    assert not (tmp_path / "fresh" / "forebear.json").exists()


def test_a_store_from_before_store_ids_is_adopted(tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "data" / "store-v1", copy)
    assert "store_id" not in (copy / "forebear.json").read_text()
    with forebear.open(copy) as store:
        assert store.store_id is not None
        assert store.verify() == []
    assert store.store_id in (copy / "forebear.json").read_text()
    with forebear.open(copy) as again:
        assert again.store_id == store.store_id


def test_gc_keeps_young_leftovers_and_says_so(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    log(local_store, make_tree("data", {"a.txt": "a"}))
    stray = local_store.objects.put_bytes(b"left by a crashed writer a minute ago")
    local_store.objects.flush()  # its pack sealed and recorded, as a writer does
    report = local_store.gc()
    assert report.objects == [] and report.kept_young == 1
    assert report.grace == dt.timedelta(days=7)
    assert "kept 1 younger than 1 week" in report.describe()
    assert local_store.objects.has(stray)
    assert list(local_store.gc(grace=NO_GRACE)) == [stray]


# -- 3. writer liveness is a lease, not a process id ----------------------------------------


@needs_root
@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_gc_in_another_pid_namespace_keeps_a_live_writers_objects(
    tmp_path: Path, packed: bool
) -> None:
    store_dir = tmp_path / "store" if packed else format_2(tmp_path / "store")
    forebear.open(store_dir).close()
    data = dataset(tmp_path / "data", 6, 4096, "live")
    pause = COMMIT if packed else 3
    writer, _ready, go = start_writer(store_dir, data, "ds", pause, tmp_path)
    gc = textwrap.dedent(
        f"""
        import datetime as dt, forebear
        with forebear.open("{store_dir}") as store:
            print(len(store.gc(grace=dt.timedelta(0)).objects))
        """
    )
    collected = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", gc],
        env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.strip() == "0"  # the writer's objects are held by its lease
    go.write_text("go")
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, out + err
    with forebear.open(store_dir) as store:
        assert store.verify() == []
        assert len(store.artifact("ds").files()) == 6


def test_gc_honours_registrations_a_writer_made_before_the_catalog_was_migrated(
    tmp_path: Path,
) -> None:
    """A writer that opened the catalog before revision 0011 registers its objects a row
    each in ``pending_objects`` until it ends: gc keeps them while its lease is live, and
    collects them (and the rows) once it expired, as it does registrations made since."""
    store_dir = format_2(tmp_path / "store")  # a file an object (packs: tests/test_packs.py)
    with forebear.open(store_dir) as store:
        old = store.objects.put_bytes(b"stored by a writer from before the migration")
        new = store.objects.put_bytes(b"stored by a writer of today")
    micros = int(time.time() * 1e6)
    with sqlite3.connect(store_dir / "meta.db") as db:
        for writer, expires in (("a" * 32, micros + 600_000_000), ("b" * 32, micros - 1)):
            db.execute(
                "INSERT INTO leases (writer, expires_at, host, pid, created_at) "
                "VALUES (?, ?, 'elsewhere', 1, ?)",
                (writer, expires, micros),
            )
        db.execute(  # the live writer's registration, as it was made before 0011
            "INSERT INTO pending_objects (writer, digest, host, pid, created_at) "
            "VALUES (?, ?, 'elsewhere', 1, ?)",
            ("a" * 32, old, micros),
        )
        db.execute(  # and the expired one's, as it is made now
            "INSERT INTO pending_batches (writer, digests, created_at) VALUES (?, ?, ?)",
            ("b" * 32, f"{new}\n{'0' * 32}", micros),
        )
    with forebear.open(store_dir) as store:
        assert store.gc(grace=NO_GRACE).objects == [new]
        assert store.objects.has(old)
    with sqlite3.connect(store_dir / "meta.db") as db:
        assert db.execute("SELECT count(*) FROM pending_batches").fetchone() == (0,)
        db.execute("UPDATE leases SET expires_at = ?", (micros - 1,))
    with forebear.open(store_dir) as store:
        assert store.gc(grace=NO_GRACE).objects == [old]
    with sqlite3.connect(store_dir / "meta.db") as db:
        for table in ("leases", "pending_objects", "pending_batches"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_gc_waits_for_a_writer_registering_beside_it_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    """A writer holds its lease row while it registers objects; a gc starting meanwhile
    waits for it, then keeps what it registered (neither fails on a deadlock)."""
    from sqlalchemy import text

    from forebear.db import writers
    from forebear.db.engine import make_engine, write_session

    forebear.Store(postgres_url, str(tmp_path / "objects"), cache_dir=tmp_path / "cache").close()
    engine = make_engine(postgres_url)
    writer, digest = uuid.uuid4().hex, hash_bytes(b"being stored")
    with write_session(engine) as session:
        writers.take(session, writer, dt.timedelta(minutes=10), "here", 1)
    kept: list[set[str]] = []
    failed: list[BaseException] = []

    def collect() -> None:
        try:
            with write_session(engine) as session:
                writers.lock_for_collection(session)
                kept.append(writers.collect_expired(session, dry_run=True))
        except BaseException as exc:  # noqa: BLE001  # asserted below
            failed.append(exc)

    gc = threading.Thread(target=collect)
    with write_session(engine) as session:
        assert writers.holds(session, writer)  # what a registration does first
        gc.start()
        with engine.connect() as watch:  # until gc waits for a lock
            deadline = time.monotonic() + 60
            waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            while not watch.execute(waiting).scalar():
                assert time.monotonic() < deadline, "gc never waited for the writer"
                time.sleep(0.01)
        writers.register(session, writer, [digest])
    gc.join(timeout=120)
    engine.dispose()
    assert failed == [] and kept == [{digest}]


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_a_writer_whose_lease_was_taken_never_commits(tmp_path: Path, packed: bool) -> None:
    store_dir = tmp_path / "store" if packed else format_2(tmp_path / "store")
    forebear.open(store_dir).close()
    data = dataset(tmp_path / "data", 6, 4096, "paused")
    pause = COMMIT if packed else 3
    writer, _ready, go = start_writer(
        store_dir, data, "ds", pause, tmp_path, FOREBEAR_LEASE_SECONDS="1"
    )
    os.kill(writer.pid, signal.SIGSTOP)  # paused: its lease is no longer renewed
    try:
        with forebear.open(store_dir) as store:
            deadline = time.monotonic() + 120
            while not store.gc(grace=NO_GRACE).objects:  # once the lease has expired
                assert time.monotonic() < deadline, "the paused writer's lease never expired"
                time.sleep(0.05)
    finally:
        go.write_text("go")
        os.kill(writer.pid, signal.SIGCONT)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 3, out + err
    assert "lease" in out and "nothing was committed" in out
    with forebear.open(store_dir) as store:
        with pytest.raises(forebear.ArtifactNotFound):
            store.artifact("ds")
        assert store.verify() == []


def test_runs_are_judged_alive_without_writing(local_store: forebear.Store, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, forebear
        run = forebear.init(project="p", name="doomed", store="{tmp_path / "store"}")
        print(run.id, flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    run_id = done.stdout.split()[0]
    assert local_store.run(run_id).status == "crashed"
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:  # reading did not write
        assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() == (
            "running",
        )


# -- 4. a catalog deleted or replaced mid-log ----------------------------------------------


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_catalog_gone_mid_log_fails_the_log(tmp_path: Path, how: str, packed: bool) -> None:
    store_dir = tmp_path / "store" if packed else format_2(tmp_path / "store")
    forebear.open(store_dir).close()
    other = tmp_path / "other"
    forebear.open(other).close()
    data = dataset(tmp_path / "data", 4, 2048, how)
    pause = COMMIT if packed else 2
    writer, _ready, go = start_writer(store_dir, data, "ds", pause, tmp_path)
    for suffix in ("", "-wal", "-shm"):
        (store_dir / f"meta.db{suffix}").unlink(missing_ok=True)
    if how == "replaced":
        shutil.copy(other / "meta.db", store_dir / "meta.db")
    go.write_text("go")
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 3, out + err  # refused: never a reported success
    assert out.startswith("refused: "), out
    with forebear.open(other) as other_store, pytest.raises(forebear.ArtifactNotFound):
        other_store.artifact("ds")


# -- 5. no byte handed out unverified ------------------------------------------------------


def test_a_partial_read_of_a_corrupted_object_is_refused(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    version = log(store, make_tree("data", {"a.bin": b"0123456789" * 100}))
    corrupt(store, version.entry("a.bin").digest or "", b"X123456789" + b"0123456789" * 99)
    with pytest.raises(forebear.IntegrityError, match="corrupted"):
        version.open("a.bin").read(3)
    with pytest.raises(forebear.IntegrityError):
        stream = version.open("a.bin")
        stream.seek(500)
        stream.read(10)


# -- 6. the stat cache cannot change what is stored -----------------------------------------


def poison(store: forebear.Store, target: Path, digest: str) -> None:
    """Write a stat-cache row that says ``target`` holds the bytes named ``digest``."""
    info = target.stat()
    with sqlite3.connect(store.stat_cache.path) as db:
        db.execute(
            "INSERT OR REPLACE INTO sealed_files VALUES (?,?,?,?,?,?,?,?)",
            (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
             info.st_mtime_ns + 10**10, digest, "0" * 32),
        )  # fmt: skip


def test_a_poisoned_stat_cache_row_cannot_change_what_is_logged(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    first = make_tree("first", {"f.txt": "the first content"})
    log(local_store, first, "a")  # creates the cache
    victim = make_tree("second", {"f.txt": "the second content"})
    poison(local_store, victim / "f.txt", hash_bytes(b"the first content"))
    version = log(local_store, victim, "b")
    assert version.open("f.txt").read() == b"the second content"


def test_a_poisoned_stat_cache_row_cannot_keep_a_stale_download(
    local_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    version = log(local_store, make_tree("data", {"f.txt": "right"}))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "f.txt").write_text("wrong")
    poison(local_store, dest / "f.txt", hash_bytes(b"right"))
    version.download(dest)
    assert (dest / "f.txt").read_text() == "right"


# -- 7. paths read back from a catalog are checked again ------------------------------------


@pytest.mark.parametrize("evil", ["../../escaped.txt", "{tmp}/absolute-escape.txt", "a/../../x"])
def test_a_tampered_entry_path_is_refused_everywhere(
    tmp_path: Path, make_tree: Callable[..., Path], evil: str
) -> None:
    evil = evil.format(tmp=tmp_path)
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        log(store, make_tree("data", {"a.txt": "a"}))
    with sqlite3.connect(store_dir / "meta.db") as db:
        db.execute("UPDATE entries SET path = ?", (evil,))
    dest = tmp_path / "deep" / "er" / "dest"
    with forebear.open(store_dir) as store:
        with pytest.raises(forebear.IntegrityError, match="malformed entry"):
            store.artifact("ds").download(dest)
        problems = store.verify()
        assert problems and "malformed entry" in str(problems[0])
        with forebear.open(tmp_path / "puller") as puller, pytest.raises(forebear.IntegrityError):
            puller.pull(store)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path / "absolute-escape.txt").exists()
    assert not (tmp_path / "deep" / "x").exists()


def test_a_tampered_artifact_name_cannot_lead_a_download_out_of_the_cache(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        log(store, make_tree("data", {"a.txt": "a"}))
    with sqlite3.connect(store_dir / "meta.db") as db:
        db.execute("UPDATE projects SET name = '../../../../escaped'")
    with forebear.open(store_dir) as store:
        with pytest.raises(forebear.IntegrityError, match="malformed project or artifact name"):
            store.artifact("ds").download()
        with forebear.open(tmp_path / "puller") as puller, pytest.raises(forebear.IntegrityError):
            puller.pull(store)
    assert not list(tmp_path.rglob("escaped"))


def test_verify_compares_the_catalog_with_the_manifest(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        log(store, make_tree("data", {"a.txt": "a", "b.txt": "b"}))
    with sqlite3.connect(store_dir / "meta.db") as db:  # a catalog edited behind our back
        db.execute("DELETE FROM entries WHERE path = 'b.txt'")
    with forebear.open(store_dir) as store:
        problems = store.verify()
    assert len(problems) == 1
    assert "changed outside forebear" in problems[0].message


def test_a_catalog_that_swapped_two_files_bytes_is_refused_by_download_and_pull(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    """Each object still matches its own digest, so only the version's digest (its
    manifest) shows that a.txt now names b.txt's bytes: nothing is placed or copied."""
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        log(store, make_tree("data", {"a.txt": "a", "b.txt": "b"}))
        assert (store.artifact("ds").download(tmp_path / "before") / "a.txt").read_text() == "a"
    with sqlite3.connect(store_dir / "meta.db") as db:
        db.execute(
            "UPDATE entries SET digest = (SELECT digest FROM entries WHERE path = 'b.txt') "
            "WHERE path = 'a.txt'"
        )
    with forebear.open(store_dir) as store:
        with pytest.raises(forebear.IntegrityError, match="changed outside forebear"):
            store.artifact("ds").download(tmp_path / "out")
        assert not (tmp_path / "out").exists()
        with forebear.open(tmp_path / "puller") as puller:
            with pytest.raises(forebear.IntegrityError, match="nothing was copied"):
                puller.pull(store)
            assert puller.artifacts() == []


# -- 8. a folder swapped for a symlink cannot redirect a download ---------------------------


def test_a_folder_swapped_for_a_symlink_mid_download_is_not_followed(
    local_store: forebear.Store,
    make_tree: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = log(local_store, make_tree("data", {"sub/a.txt": "a", "sub/b.txt": "b"}))
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    outside.mkdir()
    from forebear import download

    real = download.fingerprint_if_readable

    def swap_then_check(*args: object, **kwargs: object) -> object:
        if (dest / "sub").is_dir() and not (dest / "sub").is_symlink():
            (dest / "sub").rename(tmp_path / "moved-away")
            (dest / "sub").symlink_to(outside)  # after the check, before the writes
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(download, "fingerprint_if_readable", swap_then_check)
    version.download(dest)
    assert list(outside.iterdir()) == []  # nothing went through the link
    assert (tmp_path / "moved-away" / "a.txt").read_text() == "a"  # into the checked folder


def test_a_symlinked_folder_in_the_destination_is_refused(
    local_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    version = log(local_store, make_tree("data", {"sub/a.txt": "a"}))
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    (dest / "sub").symlink_to(elsewhere)
    with pytest.raises(forebear.InvalidPath, match="is a symlink"):
        version.download(dest)
    assert list(elsewhere.iterdir()) == []


# -- 14. long names, and temporary files of a killed download -------------------------------


def test_names_of_255_bytes_log_and_download(store: forebear.Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    names = ["n" * 255, "é" * 127, "m" * 233]  # 255, 254 and 233 bytes
    for name in names:
        (data / name).write_text(name)
    version = log(store, data)
    out = version.download(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert all((out / name).read_text() == name for name in names)


def test_a_killed_downloads_temporary_files_are_gone_after_the_next(
    local_store: forebear.Store, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(64 << 20))
    log(local_store, data)
    dest = tmp_path / "dest"
    script = textwrap.dedent(
        f"""
        import forebear
        from forebear import destination
        real = destination._NewFile.write_all
        def write_then_die(self, data):
            real(self, data)
            import os; os.kill(os.getpid(), 9)
        destination._NewFile.write_all = write_then_die
        with forebear.open("{tmp_path / "store"}") as store:
            store.artifact("ds").download("{dest}", link="copy")
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], env=clean_env(),
                            capture_output=True, timeout=120, check=False)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    leftover = dest / ".forebear-0123456789ab.tmp"  # as a system without O_TMPFILE leaves
    leftover.write_bytes(b"half a file")
    assert [p.name for p in dest.iterdir()] == [leftover.name]  # nothing else half-written
    local_store.artifact("ds").download(dest)
    assert [p.name for p in dest.iterdir()] == ["big.bin"]


# -- 15. logging the same data again restores what went missing ----------------------------


def test_logging_again_restores_a_deleted_object(
    loose_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    store = loose_store  # an object lost alone (packed: tests/test_unchanged_relog.py)
    data = make_tree("data", {"a.txt": "a", "b.txt": "b"})
    version = log(store, data)
    store.objects.delete(version.entry("a.txt").digest or "")
    assert store.verify()
    again = log(store, data)
    assert again == version
    assert store.verify() == []


# -- 9. no script through Graphviz labels; 10. no answer to foreign host names --------------


def links(markup: str) -> list[str]:
    """Every link target in HTML or SVG markup (attributes, not text)."""
    found: list[str] = []
    collect(markup, lambda name, value: name.endswith("href") and found.append(value))
    return found


def handlers(markup: str) -> list[str]:
    """Every event-handler attribute in the markup."""
    found: list[str] = []
    collect(markup, lambda name, value: name.startswith("on") and found.append(name))
    return found


def collect(markup: str, visit: Callable[[str, str], object]) -> None:
    from html.parser import HTMLParser

    class Attributes(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                visit(name.lower(), value or "")

    Attributes().feed(markup)


EVIL_TYPE = '<<TABLE HREF="javascript:alert(document.domain)"><TR><TD>x</TD></TR></TABLE>>'


@pytest.mark.needs_dot
def test_a_hostile_type_cannot_put_a_script_link_into_the_lineage_svg(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    from starlette.testclient import TestClient

    from forebear.web.app import create_app

    hostile_run = "<b onmouseover=alert(1)>run</b>"
    with forebear.init(project="p", name=hostile_run, store=local_store) as run:
        run.log_artifact(make_tree("d", {"a.txt": "a"}), name="evil", type=EVIL_TYPE)
    svg = local_store.lineage("evil").to_svg()
    assert "&lt;&lt;table href=" in svg.lower()  # shown as the text it is, not as markup
    assert all(not link.lower().startswith("javascript") for link in links(svg))
    assert "<table" not in svg.lower() and not handlers(svg)
    with TestClient(create_app(local_store), base_url="http://127.0.0.1") as client:
        page = client.get("/artifacts/p/evil/v0/lineage")
    assert page.status_code == 200
    assert links(page.text) and all(link.startswith(("/", "#")) for link in links(page.text))
    assert not handlers(page.text)
    assert "<script" not in page.text.lower() and "<table" not in page.text.lower()
    policy = page.headers["content-security-policy"]
    assert "script-src 'none'" in policy and "default-src 'none'" in policy


def test_the_ui_answers_only_to_its_own_host_names(local_store: forebear.Store) -> None:
    from starlette.testclient import TestClient

    from forebear.web.app import create_app
    from forebear.web.security import host_names

    app = create_app(local_store, host_names("127.0.0.1", ["forebear.lab"]))
    for host, status in [
        ("127.0.0.1:8765", 200),
        ("localhost", 200),
        ("[::1]:8765", 200),
        ("forebear.lab", 200),
        ("attacker.example", 400),
        ("attacker.example:8765", 400),
        ("127.0.0.1.attacker.example", 400),
        ("", 400),
    ]:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            answer = client.get("/api/artifacts", headers={"host": host})
        assert answer.status_code == status, host
        if status == 400:
            assert "--allowed-host" in answer.text


def test_a_rebound_host_name_gets_nothing_from_a_real_ui(
    local_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    import socket
    import urllib.error
    import urllib.request

    log(local_store, make_tree("d", {"secret.txt": "private"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "forebear", "--objects", str(tmp_path / "store"), "ui",
         "--port", str(port)],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/artifacts") as ok:
                    assert ok.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        rebound = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/artifacts", headers={"Host": f"evil.example:{port}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound)
        assert refused.value.code == 400
        assert b"private" not in refused.value.read()
    finally:
        server.terminate()
        server.communicate(timeout=30)


# -- 11. reading never writes; a store on read-only media opens read-only -------------------


@needs_root
def test_a_store_on_read_only_media_can_be_browsed(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        version = log(store, make_tree("d", {"a.txt": "alpha"}))
        with forebear.init(project="p", name="left-running", store=store) as running:
            running_id = running.id
    db = sqlite3.connect(store_dir / "meta.db", isolation_level=None)
    db.execute("UPDATE runs SET status = 'running' WHERE id = ?", (running_id,))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    script = textwrap.dedent(
        f"""
        import forebear, json
        from starlette.testclient import TestClient
        from forebear.web.app import create_app
        store = forebear.open("{store_dir}")
        assert store.read_only == "read-only filesystem", store.read_only
        with TestClient(create_app(store), base_url="http://127.0.0.1") as client:
            for page in ("/", "/runs", "/runs/{running_id}", "/artifacts/p/ds/v0"):
                answer = client.get(page)
                assert answer.status_code == 200, (page, answer.status_code, answer.text)
        assert store.artifact("ds").open("a.txt").read() == b"alpha"
        store.artifact("ds").download("{tmp_path / "out"}")
        assert store.verify() == []
        try:
            store.gc(grace=__import__("datetime").timedelta(0))
        except forebear.StoreError as exc:
            assert "read-only" in str(exc)
        else:
            raise SystemExit("gc on a read-only store should be refused")
        print("ok")
        """
    )
    done = python_in_own_mounts(
        f"mount --bind {store_dir} {store_dir} && mount -o remount,bind,ro {store_dir}",
        script,
        clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg")),
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert (tmp_path / "out" / "a.txt").read_text() == "alpha"
    assert version.ref == "ds:v0"


# -- 12. no secret in a run's context ------------------------------------------------------


def test_the_cli_never_records_its_own_credentials(
    postgres_url: str, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    data = make_tree("d", {"a.txt": "a"})
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    with_password = f"postgresql+psycopg://{user}:Zx/9Secret@{rest}"  # the server trusts any
    done = run_cli(
        "--db", with_password, "--objects", str(tmp_path / "objects"),
        "log", str(data), "--name", "ds",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with forebear.Store(postgres_url, str(tmp_path / "objects")) as store:
        run = store.artifact("ds").producer
        assert run is not None
        argv = " ".join(run.context["argv"])
        assert "Zx/9Secret" not in argv and f"{user}:***@" in argv
        from sqlalchemy import text

        with store.backend.engine.connect() as connection:  # type: ignore[attr-defined]
            stored = connection.execute(text("SELECT context::text FROM runs")).scalars().all()
    assert stored and not any("Zx/9Secret" in row for row in stored)


def test_token_like_arguments_are_redacted(local_store: forebear.Store) -> None:
    from forebear.context import redact_argv

    argv = ["train.py", "--api-key=sk-live-123", "--token", "fbt_abc", "--password", "hunter2",
            "-H", "Authorization: Bearer eyJhbGci", "--db", "postgresql://u:p/w@d@h/db",
            "--lr", "0.1", "s3://bucket/file@v2"]  # fmt: skip
    shown = " ".join(redact_argv(argv))
    for secret in ("sk-live-123", "fbt_abc", "hunter2", "eyJhbGci", "p/w@d"):
        assert secret not in shown
    assert "--lr 0.1" in shown and "s3://bucket/file@v2" in shown


# -- 13. one clear line for every mistake --------------------------------------------------


def test_odd_input_gets_one_clear_line(tmp_path: Path, make_tree: Callable[..., Path]) -> None:
    data = make_tree("d", {"a.txt": "a"})
    store = ["--objects", str(tmp_path / "store")]
    assert run_cli(*store, "log", str(data), "--name", "ds").returncode == 0
    (tmp_path / "a-file").write_text("x")
    deep = "[" * 5000 + "]" * 5000
    for args, expected in [
        ((*store, "show", "ds:v99999999999999999999999"), "no version ds:v9"),
        ((*store, "log", str(data), "--name", "deep", "-m", f"k={deep}"), "nested"),
        ((*store, "get", "ds", str(tmp_path / "a-file")), "is a file"),
        (
            ("--db", "mysqlx://h/db", "--objects", str(tmp_path / "s2"), "log", str(data)),
            "unknown database",
        ),
        ((*store, "lineage", "ds", "-o", "/proc/forbidden/x.svg"), "cannot write"),
    ]:
        done = run_cli(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("forebear: error: "), done.stderr
        assert expected in lines[0], lines[0]


def test_deep_metadata_and_config_are_refused_in_python(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    deep: object = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(forebear.InvalidInput, match="nested"):
        forebear.Artifact("a", metadata={"k": deep})
    with pytest.raises(forebear.InvalidInput, match="nested"):
        forebear.init(project="p", config={"k": deep}, store=local_store)


def test_odd_ui_requests_get_a_4xx_with_a_hint(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    from starlette.testclient import TestClient

    from forebear.web.app import create_app

    local_store = forebear.open(format_2(tmp_path / "store"))  # an object lost alone
    version = log(local_store, make_tree("d", {"a.txt": "a"}))
    local_store.objects.delete(version.entry("a.txt").digest or "")
    with TestClient(create_app(local_store), base_url="http://127.0.0.1") as client:
        for path, status in [
            ("/artifacts/p/ds/v99999999999999999999999", 404),
            ("/artifacts/p/ds/v0?page=-3&diff=%00", 404),
            ("/artifacts/p/ds/v0/lineage?depth=99999999999999999999", 200),
            ("/artifacts/p/ds/v0?page=1e999", 200),
            ("/api/runs?page=x", 200),
            ("/artifacts/p/ds/v0/files/a.txt", 404),
        ]:
            answer = client.get(path)
            assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
        missing = client.get("/artifacts/p/ds/v0/files/a.txt")
        assert "forebear verify" in missing.text


def test_two_creators_of_one_new_sqlite_catalog_both_succeed(tmp_path: Path) -> None:
    """Two processes making the same store at once each switch the new catalog to WAL,
    which SQLite reports as "locked" at once, without waiting: neither may fail for it."""
    failures: list[BaseException] = []
    for round_ in range(40):
        catalog = f"sqlite:///{tmp_path / f'meta-{round_}.db'}"
        objects = f"memory://forebear-wal-{uuid.uuid4().hex}"

        def create(catalog: str = catalog, objects: str = objects) -> None:
            try:
                with forebear.Store(catalog, objects):
                    pass
            except forebear.ForebearError as exc:
                failures.append(exc)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def test_creators_racing_on_an_object_store_agree_on_one_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object store has no create-if-absent, so the last write of ``forebear.json``
    wins: two creators that both found nothing, the second writing after the first has
    finished, must still end with one store id on both halves (the catalog settles it)."""
    second_writes = threading.Event()
    first_done = threading.Event()
    pipe_file = MemoryFileSystem.pipe_file

    def write(self: MemoryFileSystem, path: str, value: bytes, **kwargs: object) -> None:
        if path.endswith("/forebear.json"):  # only the two creators' writes of it wait
            if threading.current_thread().name == "first":
                second_writes.wait(timeout=60)  # both have looked and found nothing
            elif threading.current_thread().name == "second":
                second_writes.set()
                first_done.wait(timeout=60)
        pipe_file(self, path, value, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "pipe_file", write)
    catalog = f"sqlite:///{tmp_path / 'meta.db'}"
    objects = f"memory://forebear-race-{uuid.uuid4().hex}"
    ids: dict[str, str | None] = {}
    failures: list[forebear.ForebearError] = []

    def create() -> None:
        try:
            with forebear.Store(catalog, objects) as store:
                ids[threading.current_thread().name] = store.store_id
        except forebear.ForebearError as exc:  # reported below
            failures.append(exc)
        finally:
            if threading.current_thread().name == "first":
                first_done.set()

    threads = [threading.Thread(target=create, name=name) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    assert failures == []
    assert ids["first"] == ids["second"] and ids["first"] is not None
    made = open_location(objects).read_format()
    assert made is not None and made.store_id == ids["first"]
    with forebear.Store(catalog, objects) as again:
        assert again.store_id == ids["first"]
