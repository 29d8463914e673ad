"""The newcomer's flow: the README's demo runs end to end and leaves a real store behind."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import forebear

from .conftest import REPO, clean_env, run_cli


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py")],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "prepare: logged iris-raw:v0" in out
    assert "train:   used iris-raw:v0, logged iris-rf:v0" in out
    assert "Which data produced iris-rf:v0 (latest, best)?" in out
    assert "iris-raw:v0 [dataset], made by run 'prepare'" in out

    output = tmp_path / "demo-output"
    svg = ET.fromstring((output / "lineage.svg").read_text())
    assert svg.tag.endswith("svg")
    labels = {t.text for t in svg.iter() if t.tag.endswith("text")}
    assert {"iris-raw:v0 (latest)", "rf-baseline", "iris-rf:v0 (latest, best)"} <= labels
    assert (output / "lineage.png").read_bytes()[:4] == b"\x89PNG"

    store = forebear.open(output / "store")
    model = store.artifact("iris/iris-rf:best")
    assert model.metadata["accuracy"] > 0.8
    assert [v.ref for v in model.upstream()] == ["iris-raw:v0"]
    assert store.verify() == []
    listing = run_cli("--objects", str(output / "store"), "ls", "--json")
    assert listing.returncode == 0, listing.stderr
    assert '"iris-rf"' in listing.stdout
    # the last hint works as printed, from where the demo ran
    hint = out.strip().splitlines()[-1]
    assert hint.startswith("Try the CLI: ")
    tried = subprocess.run(
        hint.removeprefix("Try the CLI: "), shell=True, cwd=tmp_path, env=clean_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert tried.returncode == 0, tried.stderr
    assert "iris-rf" in tried.stdout
