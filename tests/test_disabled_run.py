"""W&B's ``init(mode="disabled")``: a script written for forebear runs unchanged and
records nothing, opening no store; ``FOREBEAR_MODE`` sets it as ``WANDB_MODE`` does."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import forebear
from forebear.disabled_run import DisabledRun


@pytest.fixture(autouse=True)
def in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no store, where the default store would be created."""
    monkeypatch.chdir(tmp_path)
    for variable in ("FOREBEAR_DB", "FOREBEAR_OBJECTS", "FOREBEAR_DIR", "FOREBEAR_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("FOREBEAR_MODE", raising=False)
    return tmp_path


def test_a_disabled_run_answers_as_a_run_and_records_nothing(in_empty_folder: Path) -> None:
    Path("f.txt").write_text("x")
    run = forebear.init(project="p", mode="disabled", config={"lr": 0.1}, tags=["a"])
    assert run.disabled and forebear.run is run and run.status == "running"
    assert run.config.lr == 0.1 and forebear.config == {"lr": 0.1}
    run.config.update({"batch": 8})
    assert dict(run.config) == {"lr": 0.1, "batch": 8}
    for step in range(3):
        forebear.log({"loss": 1 / (step + 1)}, step=step)
    assert forebear.summary == {"loss": pytest.approx(1 / 3)} and run.history() == []
    artifact = forebear.Artifact("data", type="dataset")
    artifact.add_file("f.txt")
    assert run.log_artifact(artifact).wait().state is not None  # W&B's chain still runs
    artifact.save()  # logs nothing either, as W&B's save() in a disabled run
    assert run.use_artifact("data:latest") is None and forebear.save("f.txt") is False
    assert forebear.restore("model.h5") is None and forebear.use_model("m") is None
    assert len(run.history(pandas=True)) == 0
    run.define_metric("loss", summary="min")
    forebear.watch(object())
    assert (run.url, run.tags, run.project, run.path) == (None, ("a",), "p", f"p/{run.id}")
    assert os.path.isdir(run.dir)
    forebear.finish()
    assert forebear.run is None and run.status == "finished"
    assert not (in_empty_folder / ".forebear").exists()  # no store was opened or created


def test_a_disabled_run_has_every_public_name_of_a_run() -> None:
    """Code written for a recorded run finds each name; methods are callable."""
    run = forebear.init(mode="disabled")
    public = [name for name in dir(forebear.Run) if not name.startswith("_")]
    missing = [name for name in public if not hasattr(run, name)]
    assert missing == []
    not_callable = [
        name
        for name in dir(forebear.Run)
        if not name.startswith("_")
        and callable(inspect.getattr_static(forebear.Run, name))
        and not callable(getattr(run, name))
    ]
    assert not_callable == []
    run.finish()


def test_a_failure_in_a_disabled_run_marks_it_failed() -> None:
    with pytest.raises(RuntimeError), forebear.init(mode="disabled") as run:
        raise RuntimeError("boom")
    assert run.status == "failed" and forebear.run is None


def test_a_disabled_run_checks_what_it_is_given() -> None:
    with pytest.raises(forebear.InvalidInput, match="finite numbers"):
        forebear.init(mode="disabled", config={"lr": float("nan")})
    with pytest.raises(forebear.InvalidInput, match="tags must be a list"):
        forebear.init(mode="disabled", tags="a")
    with pytest.raises(forebear.InvalidInput, match=r"use 'online'.*or 'disabled'"):
        forebear.init(mode="dryrun-ish")
    assert forebear.run is None


def test_the_environment_disables_runs_unless_mode_is_given(
    in_empty_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREBEAR_MODE", "disabled")
    with forebear.init(project="p") as run:
        assert isinstance(run, DisabledRun)
    assert not (in_empty_folder / ".forebear").exists()
    monkeypatch.setenv("FOREBEAR_MODE", "Disabled")
    with pytest.raises(forebear.InvalidInput, match="FOREBEAR_MODE='Disabled': use 'online'"):
        forebear.init(project="p")
    with forebear.init(project="p", mode="online") as recorded:
        assert not recorded.disabled
    assert forebear.open().run(recorded.id).status == "finished"


def test_forebear_log_records_whatever_the_environment_says(in_empty_folder: Path) -> None:
    Path("data").mkdir()
    Path("data/a.txt").write_text("a")
    env = {**os.environ, "FOREBEAR_MODE": "disabled", "FOREBEAR_NO_PROGRESS": "1"}
    subprocess.run(
        [sys.executable, "-m", "forebear", "log", "-p", "p", "-n", "data", "data"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    assert forebear.open().artifact("p/data:latest").file_count == 1


def test_a_recorded_run_after_a_disabled_one_is_recorded(in_empty_folder: Path) -> None:
    with forebear.init(project="p", mode="disabled"):
        pass
    with forebear.init(project="p") as run:
        run.log({"loss": 0.5}, step=0)
    assert forebear.open().run(run.id).summary == {"loss": 0.5}
