"""W&B's resuming: ``init(id=..., resume="allow")`` goes on with a run that ended or
crashed (a preempted training job started again), its history, summary and config kept
and its steps going on after the last; a run still alive elsewhere, a deleted one, or one
of another project is refused with one clear error that changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import forebear

from .conftest import wait_for
from .serving import ForebearServer


def opening(store: forebear.Store) -> str:
    """Python that opens ``store`` in another process."""
    server = getattr(store, "server", None)
    if server is not None:
        return f"forebear.Store({server.url!r}, token={server.admin_token!r})"
    return f"forebear.Store({store.db_url!r}, {store.objects_url!r})"


def resume_events(store: forebear.Store, run_id: str) -> list[dict[str, object]]:
    target = f"run {run_id}"
    return [e.details for e in store.audit() if e.action == "resume-run" and e.target == target]


def test_a_finished_run_goes_on_where_it_stopped(store: forebear.Store) -> None:
    with forebear.init(project="p", name="train", config={"lr": 0.1}, store=store) as run:
        for epoch in range(3):
            run.log({"loss": 1 / (epoch + 1)})
        run.summary["best"] = 0.3
        assert run.resumed is False
    with forebear.init(
        project="p", id=run.id, resume="allow", config={"epochs": 6}, store=store
    ) as again:
        assert again.id == run.id and again.resumed is True
        assert again.status == "running" and store.run(run.id).status == "running"
        assert again.step == again.starting_step == 3  # W&B: from the last step on
        assert again.config == {"lr": 0.1, "epochs": 6}  # the config given is added
        assert again.summary["best"] == 0.3 and again.name == "train"
        again.log({"loss": 0.2})
        again.log({"loss": 0.1}, step=10)
    record = store.run(run.id)
    assert record.status == "finished" and record.ended_at is not None
    assert [row["step"] for row in record.history()] == [0, 1, 2, 3, 10]
    assert record.summary == {"loss": 0.1, "best": 0.3}
    assert resume_events(store, run.id) == [{"was": "finished"}]


def test_a_failed_run_resumed_with_a_new_name_and_tags(store: forebear.Store) -> None:
    with pytest.raises(RuntimeError), forebear.init(project="p", store=store) as run:
        run.log({"loss": 1.0})
        raise RuntimeError("out of memory")
    assert store.run(run.id).status == "failed"
    again = forebear.init(
        project="p", id=run.id, resume="must", name="second try", tags=["retry"], store=store
    )
    assert (again.name, list(again.tags)) == ("second try", ["retry"])
    again.finish()
    assert store.run(run.id).name == "second try" and store.run(run.id).status == "finished"
    assert resume_events(store, run.id) == [{"was": "failed"}]


def test_a_crashed_run_is_resumed_by_the_process_started_again(store: forebear.Store) -> None:
    """A training job killed outright (preempted) and started again with the same id."""
    script = (
        "import time, forebear\n"
        f"run = forebear.init(project='p', id='job1', resume='allow', store={opening(store)})\n"
        "for step in range(5):\n"
        "    run.log({'loss': 1 / (step + 1)})\n"
        "run.history()  # every row written\n"
        "print(run.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "FOREBEAR_NO_PROGRESS": "1"}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"job1"
        with pytest.raises(forebear.InvalidInput, match=r"run job1 is running \(process \d+"):
            forebear.init(project="p", id="job1", resume="allow", store=store)
        assert resume_events(store, "job1") == []  # refused: nothing changed
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    # the server judges by the heartbeat alone: the run reads as crashed a little later
    wait_for(lambda: store.run("job1").status == "crashed")
    with forebear.init(project="p", id="job1", resume="allow", store=store) as again:
        assert again.resumed and again.step == 5
        assert store.run("job1").status == "running"  # alive: this process beats for it
        again.log({"loss": 0.1})
    record = store.run("job1")
    assert record.status == "finished" and len(record.history()) == 6
    assert resume_events(store, "job1") == [{"was": "crashed"}]


def test_what_resume_says_of_an_id_that_is_new_or_taken(store: forebear.Store) -> None:
    fresh = forebear.init(project="p", id="new1", resume="allow", store=store)
    assert fresh.id == "new1" and fresh.resumed is False and fresh.step == 0
    fresh.finish()
    with pytest.raises(forebear.InvalidInput, match="no run has id 'zz9'"):
        forebear.init(project="p", id="zz9", resume="must", store=store)
    for refusing in ("never", None):
        with pytest.raises(forebear.InvalidInput, match=r"exists already .*resume='allow'"):
            forebear.init(project="p", id="new1", resume=refusing, store=store)
    with pytest.raises(forebear.InvalidInput, match="in project 'p', not 'q'"):
        forebear.init(project="q", id="new1", resume="allow", store=store)
    for unknown in ("sometimes", "yes", 1.5):  # with an id or without: W&B's values only
        for given in ({"id": "new1"}, {}):
            with pytest.raises(forebear.InvalidInput, match="use 'allow', 'must'"):
                forebear.init(project="p", resume=unknown, store=store, **given)  # type: ignore[arg-type]
    store.delete_run("new1")
    with pytest.raises(forebear.InvalidInput, match="run new1 is deleted"):
        forebear.init(project="p", id="new1", resume="must", store=store)
    assert store.run("new1").status == "finished" and resume_events(store, "new1") == []


def test_an_id_the_script_chooses_as_w_and_b_lets_it(store: forebear.Store) -> None:
    # a preemptible job names its run after the experiment, to resume it when restarted
    chosen = "ResNet50-seed_1.lr0.1"
    with forebear.init(project="p", id=chosen, store=store) as run:
        run.log({"loss": 1.0})
    with forebear.init(project="p", id=chosen, resume="allow", store=store) as again:
        assert again.resumed and again.id == chosen
        again.log({"loss": 0.5})
        model = forebear.Artifact("model", "model")
        with model.new_file("weights.txt") as f:
            f.write("1")
        out = again.log_artifact(model)
    assert [row["loss"] for row in store.run(chosen).history()] == [1.0, 0.5]
    assert out.wait().created_by == chosen
    with pytest.raises(forebear.RunNotFound):  # ids are told apart by case, as in W&B
        store.run(chosen.lower())
    longest = "a" * 64  # W&B's limit
    with forebear.init(project="p", id=longest, store=store):
        pass
    assert store.run(longest).status == "finished"
    for bad in ("a" * 65, "a/b", "../a", "-a", ".a", "a b", "a:b", "a#b", "ünï", "a\0b", ""):
        with pytest.raises(forebear.InvalidInput, match="a run id is 1 to 64 letters"):
            forebear.init(project="p", id=bad, store=store)
    assert {run.id for run in store.runs(project="p")} == {chosen, longest}


def test_resume_auto_goes_on_with_the_run_last_begun_in_the_folder(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # W&B's preemptible-job habit: no id, the same script started again in the same folder
    job = tmp_path / "job"
    job.mkdir()
    monkeypatch.chdir(job)
    with pytest.raises(RuntimeError), forebear.init(project="p", resume="auto", store=store) as run:
        run.log({"loss": 1.0})
        raise RuntimeError("preempted")
    assert not list((tmp_path / "job").iterdir())  # nothing written among the user's files
    with forebear.init(project="p", resume=True, store=store) as again:
        assert again.id == run.id and again.resumed and again.starting_step == 1
        again.log({"loss": 0.5})
    assert resume_events(store, run.id) == [{"was": "failed"}]
    # it finished cleanly: the next start is a new run, and so is one in another folder
    with forebear.init(project="p", resume="auto", store=store) as third:
        assert third.id != run.id and not third.resumed
        beside = forebear.init(project="p", resume="auto", store=store)
        # the run remembered is running in this process: the other start does not take it
        assert beside.id not in (run.id, third.id)
        beside.finish("failed")
    monkeypatch.chdir(tmp_path)
    with forebear.init(project="p", resume="auto", store=store) as elsewhere:
        assert not elsewhere.resumed
    # without resume, or in another project, nothing is resumed
    monkeypatch.chdir(tmp_path / "job")
    with forebear.init(project="p", store=store) as plain:
        assert not plain.resumed
    with forebear.init(project="q", resume="auto", store=store) as other:
        assert not other.resumed and other.id != beside.id


def failed_here(store: forebear.Store, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fail a run started with ``resume="auto"`` in ``folder``: the record that remembers
    it (in the test's own cache folder)."""
    monkeypatch.chdir(folder)
    with pytest.raises(RuntimeError), forebear.init(project="p", resume="auto", store=store):
        raise RuntimeError("preempted")
    [record] = (Path(os.environ["XDG_CACHE_HOME"]) / "forebear" / "resume").iterdir()
    return record


def test_a_damaged_or_foreign_resume_record_only_starts_a_new_run(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = failed_here(store, tmp_path, monkeypatch)
    kept = json.loads(record.read_text())
    for damaged in (
        "{not json",
        "[]",
        json.dumps({**kept, "folder": "/elsewhere"}),
        json.dumps({**kept, "run_id": "../../x"}),
        json.dumps({**kept, "run_id": 7}),
    ):
        record.write_text(damaged)
        with forebear.init(project="p", resume="auto", store=store) as run:
            assert not run.resumed
    record.write_text(json.dumps(kept))  # as written: the failed run goes on
    with forebear.init(project="p", resume="auto", store=store) as run:
        assert run.resumed and run.id == kept["run_id"]


@pytest.mark.skipif(
    not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file away takes root"
)
def test_a_resume_record_another_user_owns_is_not_believed(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cache folder shared with others: one of them names a run of theirs to take over
    record = failed_here(store, tmp_path, monkeypatch)
    os.chown(record, 65534, 65534)
    with forebear.init(project="p", resume="auto", store=store) as run:
        assert not run.resumed


def test_a_killed_script_is_resumed_automatically(store: forebear.Store, tmp_path: Path) -> None:
    script = (
        "import sys, time, forebear\n"
        f"run = forebear.init(project='p', resume='auto', store={opening(store)})\n"
        "run.log({'loss': 1.0})\n"
        "run.history()  # every row written\n"
        "print(run.id, run.resumed, run.starting_step, flush=True)\n"
        "if sys.argv[1:] == ['hang']:\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "FOREBEAR_NO_PROGRESS": "1"}
    args = [sys.executable, "-c", script]
    with subprocess.Popen([*args, "hang"], stdout=subprocess.PIPE, env=env, cwd=tmp_path) as child:
        assert child.stdout is not None
        first, resumed, _ = child.stdout.readline().split()
        assert resumed == b"False"
        child.send_signal(signal.SIGKILL)
    wait_for(lambda: store.run(first.decode()).status == "crashed")
    again = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, check=True)
    assert again.stdout.split() == [first, b"True", b"1"]
    assert [row["loss"] for row in store.run(first.decode()).history()] == [1.0, 1.0]


def test_a_batch_job_sets_its_run_id_and_resume_in_the_environment(
    store: forebear.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as WANDB_RUN_ID=$SLURM_JOB_ID WANDB_RESUME=allow in a job script
    monkeypatch.setenv("FOREBEAR_RUN_ID", "slurm-4242_7")
    monkeypatch.setenv("FOREBEAR_RESUME", "allow")
    with forebear.init(project="p", store=store) as first:
        assert first.id == "slurm-4242_7" and not first.resumed
        first.log({"loss": 1.0})
    with forebear.init(project="p", store=store) as again:  # the job requeued
        assert again.id == "slurm-4242_7" and again.resumed and again.starting_step == 1
    with forebear.init(project="p", id="given1", resume="never", store=store) as given:
        assert given.id == "given1"  # what init is given wins
    monkeypatch.setenv("FOREBEAR_RESUME", "never")
    with pytest.raises(forebear.InvalidInput, match="exists already"):
        forebear.init(project="p", store=store)
    monkeypatch.setenv("FOREBEAR_RESUME", "sometimes")
    with pytest.raises(forebear.InvalidInput, match="FOREBEAR_RESUME='sometimes': use 'allow'"):
        forebear.init(project="p", store=store)
    monkeypatch.setenv("FOREBEAR_RUN_ID", "job 7")
    with pytest.raises(forebear.InvalidInput, match="FOREBEAR_RUN_ID='job 7': a run id is"):
        forebear.init(project="p", store=store, resume="allow")
    assert [run.id for run in store.runs()] == ["slurm-4242_7", "given1"]


def test_a_reader_cannot_resume_a_run(server: ForebearServer) -> None:
    writer = server.store()
    with forebear.init(project="p", id="mine1", store=writer):
        pass
    reader = server.store(server.user("rita", {"p": "reader"}))
    with pytest.raises(forebear.ForebearError, match="writer"):
        forebear.init(project="p", id="mine1", resume="allow", store=reader)
    assert writer.run("mine1").status == "finished" and resume_events(writer, "mine1") == []
    reader.close()
    writer.close()
