"""Many writers at once, writers killed with SIGKILL, and gc beside them: real processes
on a real SQLite file and a local folder."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import forebear

from .conftest import clean_env, format_2

# A writer process. It logs ``files`` files of ``size`` random bytes as artifact ``name``;
# with PAUSE_AT set it stops forever at that point, after writing READY, so the test can
# kill it there: "store:N" after storing N objects, "commit" just before the transaction.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import forebear
    from forebear import objects
    from forebear.db import versions as db_versions

    store_dir, data_dir, name, pause_at, ready = sys.argv[1:6]

    def pause():
        Path(ready).write_text(str(os.getpid()))
        while True:
            time.sleep(60)

    if pause_at.startswith("store:"):
        limit = int(pause_at.split(":")[1])
        original = objects.LocalLocation.put_file
        stored = []

        def put_file(self, local_path, digest, progress=None, **options):
            if len(stored) == limit:
                pause()
            result = original(self, local_path, digest, progress, **options)
            stored.append(digest)
            return result

        objects.LocalLocation.put_file = put_file
    elif pause_at == "commit":
        original_commit = db_versions.commit_version

        def commit_version(session, **kwargs):
            pause()

        db_versions.commit_version = commit_version

    with forebear.init(project="p", name="writer", store=store_dir) as run:
        version = run.log_artifact(data_dir, name=name)
    print(version.ref)
    """
)


NO_GRACE = dt.timedelta(0)  # collect leftovers at once, however young


_started: list[subprocess.Popen[str]] = []  # this test's writers


@pytest.fixture(autouse=True)
def no_writer_left() -> Iterator[None]:
    """A writer paused by a test that failed before it killed the writer is killed: it
    would wait forever."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def start_writer(
    store_dir: Path,
    data_dir: Path,
    name: str,
    pause_at: str = "none",
    ready: Path | None = None,
    **env: str,
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(store_dir),
            str(data_dir),
            name,
            pause_at,
            str(ready or "-"),
        ],
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _started.append(process)
    return process


def wait_ready(process: subprocess.Popen[str], ready: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise AssertionError(f"writer exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("writer never reached its pause point")
        time.sleep(0.02)


def make_dataset(root: Path, files: int, size: int, seed: str) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"part-{i:03d}.bin").write_bytes(seed.encode() + os.urandom(size))
    return root


def inodes(store: forebear.Store) -> dict[str, int]:
    return {d: os.stat(store.objects.path_of(d)).st_ino for d in store.objects.iter_digests()}


def test_six_processes_logging_one_artifact_get_v0_to_v5(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"  # not created yet: the writers race to create it too
    datasets = [make_dataset(tmp_path / f"d{i}", 3, 2048, f"writer {i}") for i in range(6)]
    writers = [start_writer(store_dir, d, "shared") for d in datasets]
    refs = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        refs.append(out.strip())
    assert sorted(refs) == [f"shared:v{i}" for i in range(6)]
    store = forebear.open(store_dir)
    versions = store.versions("shared")
    assert [v.version for v in versions] == [f"v{i}" for i in range(6)]
    assert len({v.digest for v in versions}) == 6
    assert store.verify() == []
    assert store.artifact("shared:latest").version in {f"v{i}" for i in range(6)}


@pytest.mark.parametrize("pause_at", ["store:3", "commit"])
def test_sigkill_mid_log_leaves_no_partial_version_and_rerun_reuses_objects(
    tmp_path: Path, pause_at: str
) -> None:
    store_dir = format_2(tmp_path / "store")  # a file an object, paused after the third
    data = make_dataset(tmp_path / "data", 8, 64 * 1024, "crash")
    ready = tmp_path / "ready"
    writer = start_writer(store_dir, data, "ds", pause_at, ready)
    wait_ready(writer, ready)
    store = forebear.open(store_dir)
    stored_before_kill = inodes(store)
    assert len(stored_before_kill) >= 3
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)

    # nothing visible: no artifact, no version, a clean verify; the run shows it crashed
    with pytest.raises(forebear.ArtifactNotFound):
        store.versions("ds")
    assert store.verify() == []
    (run,) = store.runs()
    assert run.status == "crashed"

    # a re-run completes without storing again what was already stored
    rerun = start_writer(store_dir, data, "ds")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert out.strip() == "ds:v0"
    after = inodes(store)
    assert {d: after[d] for d in stored_before_kill} == stored_before_kill
    version = store.artifact("ds:v0")
    version.verify()

    # gc removes only garbage: a stray object goes, every referenced one stays
    stray = store.objects.put_bytes(b"left over by some crashed work")
    assert store.gc(dry_run=True).objects == []  # younger than the grace period: kept
    assert store.gc(dry_run=True, grace=NO_GRACE).objects == [stray]
    assert store.objects.has(stray)
    assert store.gc(grace=NO_GRACE).objects == [stray]
    assert not store.objects.has(stray)
    assert store.gc(grace=NO_GRACE).objects == []
    assert store.verify() == []
    assert (
        version.download(tmp_path / "out").joinpath("part-000.bin").read_bytes()
        == (data / "part-000.bin").read_bytes()
    )


@pytest.mark.slow
def test_gc_keeps_objects_of_a_live_writer_and_collects_them_once_it_died(
    tmp_path: Path,
) -> None:
    store_dir = format_2(tmp_path / "store")  # a file an object, paused after the second
    data = make_dataset(tmp_path / "data", 6, 4096, "live")
    ready = tmp_path / "ready"
    # a short lease (renewed every 2.5 s while the writer lives, so a loaded machine has
    # 7.5 s to spare), so that the test need not wait ten minutes once it died
    writer = start_writer(store_dir, data, "ds", "store:2", ready, FOREBEAR_LEASE_SECONDS="10")
    wait_ready(writer, ready)
    store = forebear.open(store_dir)
    in_flight = set(store.objects.iter_digests())
    assert len(in_flight) == 2
    try:
        # the writer is alive: its objects are not garbage, however long gc waits
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert store.gc(grace=NO_GRACE).objects == []
            assert set(store.objects.iter_digests()) == in_flight
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=30)
    # once its lease runs out, they are leftovers of crashed work
    deadline = time.monotonic() + 120
    while not (collected := store.gc(grace=NO_GRACE).objects):
        assert time.monotonic() < deadline, "the dead writer's lease never expired"
        time.sleep(0.1)
    assert collected == sorted(in_flight)
    assert list(store.objects.iter_digests()) == []
