"""Load: sixteen writer processes log versions and move aliases while readers download,
for a minute on each backend (FOREBEAR_TEST_LOAD_SECONDS changes the duration). Zero
errors, gapless versions, every alias move kept, every download verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import forebear

from .conftest import clean_env

SECONDS = float(os.environ.get("FOREBEAR_TEST_LOAD_SECONDS", "60"))
WRITERS = 16
READERS = 2

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    import forebear

    work, until = Path(sys.argv[1]), float(sys.argv[2])
    store = forebear.Store()
    made = 0
    with forebear.init(project="load", name="writer", store=store) as run:
        while time.time() < until:
            folder = work / f"v{made}"
            folder.mkdir(parents=True)
            for k in range(3):
                (folder / f"f{k}.bin").write_bytes(os.urandom(2048))
            version = run.log_artifact(folder, name="shared", aliases=["hot"])
            if made % 3 == 0:
                version.add_alias("best")
            made += 1
    print(json.dumps({"made": made}))
    """
)

READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import forebear

    work, until = Path(sys.argv[1]), float(sys.argv[2])
    store = forebear.Store()
    reads = 0
    while time.time() < until:
        try:
            version = store.artifact("load/shared:latest")
        except forebear.NotFound:
            time.sleep(0.1)
            continue
        folder = version.download(work / f"r{reads}")
        assert sorted(p.name for p in folder.iterdir()) == ["f0.bin", "f1.bin", "f2.bin"]
        reads += 1
    print(json.dumps({"reads": reads}))
    """
)


def load(env: dict[str, str], work: Path, store: forebear.Store) -> dict[str, float]:
    until = time.time() + 10 + SECONDS  # starting 18 interpreters takes a few seconds here
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(work / f"{kind}{i}"), str(until)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, script, count in (("w", WRITER, WRITERS), ("r", READER, READERS))
        for i in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 300)
        assert proc.returncode == 0, err  # zero errors, in every process
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    made = sum(o.get("made", 0) for o in outputs)
    reads = sum(o.get("reads", 0) for o in outputs)
    versions = store.versions("load/shared")
    assert [v.version for v in versions] == [f"v{i}" for i in range(made)]  # gapless
    history = store.alias_history("load/shared")
    assert sum(1 for h in history if h["alias"] == "hot") == made  # no move lost
    assert store.verify() == []
    assert reads > 0
    return {"versions": made, "per_second": made / SECONDS, "downloads": reads}


def report(name: str, figures: dict[str, float], capsys: pytest.CaptureFixture[str]) -> None:
    line = (
        f"{name}: {WRITERS} writers, {READERS} readers, {SECONDS:.0f} s: "
        f"{figures['versions']:.0f} versions ({figures['per_second']:.1f}/s), "
        f"{figures['downloads']:.0f} verified downloads"
    )
    with capsys.disabled():  # shown even when pytest captures output
        print(f"\n{line}")


@pytest.mark.slow
def test_load_on_sqlite_and_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        figures = load(clean_env(FOREBEAR_DIR=str(store_dir)), tmp_path, store)
    report("SQLite + folder", figures, capsys)


@pytest.mark.slow
def test_load_on_postgres_and_s3(
    postgres_url: str, s3_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = clean_env(FOREBEAR_DB=postgres_url, FOREBEAR_OBJECTS=s3_url)
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    env["FOREBEAR_CACHE_DIR"] = str(tmp_path / "cache")
    with forebear.Store(postgres_url, s3_url, cache_dir=tmp_path / "cache") as store:
        figures = load(env, tmp_path, store)
    report("PostgreSQL + S3", figures, capsys)
