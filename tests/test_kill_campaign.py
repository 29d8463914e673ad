"""Randomised SIGKILLs: writers, alias movers, pushers and collectors killed at arbitrary
moments, on both backends; after every kill the store must be whole, and the work a killed
process was doing must complete when run again."""

from __future__ import annotations

import datetime
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import forebear

from .conftest import clean_env

pytestmark = pytest.mark.slow  # minutes of real processes: the full run only

# Runs one kind of work in a loop until killed. Every iteration makes new content.
WORKER = textwrap.dedent(
    """
    import datetime, itertools, os, sys
    from pathlib import Path
    import forebear

    op, work, target = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    store = forebear.Store()
    for i in itertools.count():
        if op == "log":
            folder = work / f"data-{os.getpid()}-{i}"
            folder.mkdir(parents=True)
            for k in range(12):
                (folder / f"part{k}.bin").write_bytes(os.urandom(40_000))
            with forebear.init(project="p", name="writer", store=store) as run:
                run.log_artifact(folder, name="ds", aliases=["hot"])
        elif op == "alias":
            versions = store.versions("ds")
            versions[i % len(versions)].add_alias("best")
        elif op == "push":
            store.push(target)
        elif op == "gc":
            store.gc(grace=datetime.timedelta(0))
    """
)

OPERATIONS = ["log", "log", "log", "alias", "push", "gc"]


def check_whole(store: forebear.Store, mirror: Path) -> None:
    assert store.verify() == []
    # on a loaded machine the first writers may be killed before any version exists
    versions = store.versions("ds") if _has_versions(store) else []
    numbers = [int(v.version[1:]) for v in versions]
    assert numbers == list(range(len(numbers)))  # unique and gapless
    for version in versions:
        assert len(version.files()) == 12  # never a partial version
    if (mirror / "forebear.json").exists():
        with forebear.open(mirror) as pushed:
            assert pushed.verify() == []


def campaign(store: forebear.Store, env: dict[str, str], work: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    mirror = work / "mirror"
    with forebear.init(project="p", store=store) as run:  # something to move aliases over
        first = work / "first"
        first.mkdir(parents=True)
        (first / "x").write_text("x")
        run.log_artifact(first, name="seed")
    killed = {op: 0 for op in set(OPERATIONS)}
    for _ in range(kills):
        op = rng.choice(OPERATIONS)
        if op in ("alias",) and not _has_versions(store):
            op = "log"
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, op, str(work / "w"), str(mirror)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(rng.uniform(0.6, 2.5))
        if worker.poll() is not None:  # it must still be working when killed
            raise AssertionError(f"{op} worker stopped by itself: {worker.communicate()}")
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=60)
        killed[op] += 1
        check_whole(store, mirror)
    assert killed["log"] > 0 and sum(killed.values()) == kills
    # what was interrupted completes when run again, and collecting leaves a whole store
    for folder in sorted((work / "w").glob("data-*")):
        if len(list(folder.iterdir())) == 12:
            with forebear.init(project="p", store=store) as run:
                run.log_artifact(folder, name="ds")
    store.push(mirror)
    store.gc(grace=datetime.timedelta(0))
    check_whole(store, mirror)


def _has_versions(store: forebear.Store) -> bool:
    try:
        return bool(store.versions("ds"))
    except forebear.ArtifactNotFound:
        return False


def test_thirty_kills_on_sqlite_and_a_folder(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        env = clean_env(FOREBEAR_DIR=str(store_dir))
        campaign(store, env, tmp_path, kills=30, seed=7)


def test_twenty_kills_on_postgres_and_s3(postgres_url: str, s3_url: str, tmp_path: Path) -> None:
    env = clean_env(FOREBEAR_DB=postgres_url, FOREBEAR_OBJECTS=s3_url)
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    with forebear.Store(postgres_url, s3_url, cache_dir=tmp_path / "cache") as store:
        campaign(store, env, tmp_path, kills=20, seed=11)


@pytest.mark.parametrize("writers", [3])
def test_gc_in_a_loop_beside_live_writers(tmp_path: Path, writers: int) -> None:
    store_dir = tmp_path / "store"
    env = clean_env(FOREBEAR_DIR=str(store_dir))
    with forebear.open(store_dir) as store:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, "log", str(tmp_path / f"w{i}"), "-"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(writers)
        ]
        deadline = time.monotonic() + 15
        collections = 0
        try:
            while time.monotonic() < deadline:
                store.gc(grace=datetime.timedelta(0))
                collections += 1
                for proc in procs:
                    assert proc.poll() is None, proc.communicate()
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=60)
        assert collections > 5
        versions = store.versions("ds")
        assert len(versions) >= writers
        assert store.verify() == []  # gc never took an object a commit relied on
        for version in versions[-3:]:
            version.download(tmp_path / "check" / version.version)
