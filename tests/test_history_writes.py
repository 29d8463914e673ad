"""A running run's logged rows reach its store in batches (`forebear.history_buffer`): a
loop logging every batch does not wait for the catalog at each call, readers elsewhere
see the rows within about a second, the run itself sees them at once, and nothing logged
is lost when the run finishes or its summary changes in between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import forebear
from forebear.history_buffer import INTERVAL, MAX_ROWS

from .conftest import wait_for


def test_rows_logged_fast_reach_other_readers_without_more_logs(store: forebear.Store) -> None:
    run = forebear.init(project="p", store=store)
    for step in range(MAX_ROWS + 5):  # one batch written at once, the rest soon after
        run.log({"loss": 1 / (step + 1), "epoch": step // 100})
    reader = store.run(run.id)
    wait_for(lambda: len(reader.history()) == MAX_ROWS + 5)
    assert reader.history()[-1] == {"step": MAX_ROWS + 4, "loss": 1 / (MAX_ROWS + 5), "epoch": 10}
    wait_for(lambda: reader.load()["summary"] == {"loss": 1 / (MAX_ROWS + 5), "epoch": 10})
    run.finish()


def test_the_running_run_reads_every_row_it_logged(store: forebear.Store) -> None:
    with forebear.init(project="p", store=store) as run:
        run.log({"a": 1}, step=0)
        run.log({"b": 2}, step=0)  # the same step again: one row
        run.log({"a": 3}, step=1, commit=False)
        run.log({"a": 4}, step=1)  # a key logged at a step again: replaced
        assert run.history() == [{"step": 0, "a": 1, "b": 2}, {"step": 1, "a": 4}]
        assert [row["step"] for row in run.scan_history()] == [0, 1]
        assert run.lastHistoryStep == 1
    assert store.run(run.id).history() == [{"step": 0, "a": 1, "b": 2}, {"step": 1, "a": 4}]


def test_a_summary_set_between_logs_is_kept_with_the_rows(store: forebear.Store) -> None:
    with forebear.init(project="p", store=store) as run:
        run.log({"loss": 0.5})
        run.summary["best"] = 0.4  # saved at once, while the row above may still wait
        run.log({"loss": 0.3})
        reader = store.run(run.id)
        wait_for(lambda: len(reader.history()) == 2)
        assert reader.load()["summary"] == {"loss": 0.3, "best": 0.4}
    assert store.run(run.id).summary == {"loss": 0.3, "best": 0.4}


def test_a_slow_loop_writes_each_row_as_it_comes(store: forebear.Store) -> None:
    with forebear.init(project="p", store=store) as run:
        run.log({"loss": 1.0})
        time.sleep(INTERVAL)  # an epoch's work
        run.log({"loss": 0.5})
        assert len(store.run(run.id).history()) == 2  # no wait: written by log itself


def test_rows_of_a_process_killed_before_finishing_are_kept(tmp_path: Path) -> None:
    """Killed outright after a fast burst of logs and a pause, a training script keeps
    every row it logged: they were written during the pause, not only at finish."""
    store_dir = tmp_path / "store"
    script = (
        "import sys, time, forebear\n"
        f"run = forebear.init(project='p', store={str(store_dir)!r})\n"
        "for step in range(2500):\n"
        "    run.log({'loss': 1 / (step + 1)})\n"
        "print(run.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "FOREBEAR_NO_PROGRESS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        store = forebear.open(store_dir)
        wait_for(lambda: len(store.run(run_id).history()) == 2500)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert store.run(run_id).history()[-1] == {"step": 2499, "loss": 1 / 2500}
