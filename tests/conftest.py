"""Shared fixtures: every test runs in its own folder with no FOREBEAR_* settings leaking
in from the developer's shell, and no run left active."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import forebear
from forebear import run as run_module

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("FOREBEAR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FOREBEAR_NO_PROGRESS", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    for run in list(run_module._active):
        run.finish()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[forebear.Store]:
    """A fresh embedded store (SQLite file + local folder)."""
    opened = forebear.open(tmp_path / "store")
    yield opened
    opened.close()


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[..., Path]:
    """Write a folder of files: ``make_tree("data", {"a.txt": "x", "sub/b.bin": b"..."})``."""

    def make(name: str, files: dict[str, str | bytes]) -> Path:
        root = tmp_path / name
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            path.write_bytes(data)
        root.mkdir(parents=True, exist_ok=True)
        return root

    return make


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without FOREBEAR_* settings, for real subprocesses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
    env["FOREBEAR_NO_PROGRESS"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `forebear` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "forebear", *args],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
    )
