"""Runs read back as W&B's export scripts read them: ``run.history()`` as rows and as a
DataFrame, ``Runs.histories``, ``run.user`` and ``api.viewer``, ``run.load()`` and
``run.wait_until_finished()``; on SQLite + a folder, PostgreSQL + S3 and a server."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

import forebear

from .conftest import reopen

LOSSES = [0.9, 0.5, 0.25]


def fit(store: forebear.Store, name: str, lr: float) -> forebear.Run:
    with forebear.init(project="p", name=name, config={"lr": lr}, store=store) as run:
        for step, loss in enumerate(LOSSES):
            run.log({"loss": loss * lr, "epoch": step}, step=step)
        run.log({"acc": 0.8}, step=2)
    return run


def test_history_rows_also_answer_as_wandbs_dataframe(
    store: forebear.Store, tmp_path: Path
) -> None:
    """The export script of W&B's guide (``run.history().to_csv(...)``, a column by name,
    a mask) runs unchanged, and the rows stay the rows: indexed, iterated, compared."""
    run = store.run(fit(store, "fit", 1.0).id)
    history = run.history()
    assert history[0] == {"step": 0, "loss": 0.9, "epoch": 0}
    assert [row["step"] for row in history] == [0, 1, 2]
    assert history == run.history() and history[1:] == run.history()[1:]
    assert set(history.columns) == {"_step", "loss", "epoch", "acc"}
    assert history["loss"].tolist() == LOSSES and history.shape == (3, 4)
    assert history[history["loss"] < 0.6]["_step"].tolist() == [1, 2]
    assert history[["_step", "acc"]].dropna()["acc"].tolist() == [0.8]
    history.to_csv(tmp_path / "metrics.csv", index=False)
    assert pd.read_csv(tmp_path / "metrics.csv").equals(run.history(pandas=True))
    assert pd.DataFrame(run.history(keys=["acc"])).to_dict("records") == [{"step": 2, "acc": 0.8}]
    assert pd.Series(history).tolist() == list(history)  # pandas takes it for a list
    assert "<table" in history._repr_html_()  # a notebook shows it as W&B's table
    with pytest.raises(TypeError, match="cannot concatenate"):
        pd.concat([history, history])  # DataFrames only: history(pandas=True)
    with pytest.raises(AttributeError, match="no attribute 'to_cvs'"):
        history.to_cvs("x.csv")  # type: ignore[attr-defined]
    assert run.history(keys={"acc"}) == run.history(keys=history[["acc"]].columns)
    for bad in (5, [1], {"loss": 1}, b"acc"):
        with pytest.raises(forebear.InvalidInput, match="keys must be a metric name"):
            run.history(keys=bad)  # type: ignore[arg-type]


def test_histories_of_many_runs_carry_each_runs_id(store: forebear.Store) -> None:
    first, second = fit(store, "a", 1.0), fit(store, "b", 2.0)
    api = forebear.Api(store)
    rows = api.runs("p").histories(keys=["loss"])
    assert rows == [
        {"run_id": run.id, "step": step, "loss": loss * lr}
        for run, lr in ((first, 1.0), (second, 2.0))
        for step, loss in enumerate(LOSSES)
    ]
    frame = api.runs("p").histories(format="pandas")
    assert frame.groupby("run_id")["loss"].min().to_dict() == {first.id: 0.25, second.id: 0.5}
    found = api.runs("p", filters={"config.lr": 2.0})  # a filtered listing has them too
    assert found.histories(samples=1) == [
        {"run_id": second.id, "step": 2, "loss": 0.5, "epoch": 2, "acc": 0.8}
    ]
    for bad in ("polars", "csv"):
        with pytest.raises(forebear.InvalidInput, match="pandas"):
            api.runs("p").histories(format=bad)


def test_a_run_names_who_started_it(store: forebear.Store) -> None:
    """``run.user`` and ``api.viewer`` name whom the audit trail names: ``user@host`` on
    a store reached directly, the token's account through a server."""
    run = store.run(fit(store, "fit", 1.0).id)
    assert run.user is not None and run.user.username == store.backend.actor
    assert str(run.user) == run.user.name == store.backend.actor
    assert forebear.Api(store).viewer == run.user
    assert run.summary_metrics == {"loss": 0.25, "epoch": 2, "acc": 0.8}


def test_load_reads_the_run_again_and_a_reader_waits_for_it_to_finish(
    store: forebear.Store,
) -> None:
    with reopen(store) as reading, reopen(store) as editing:
        live = forebear.init(project="p", name="long", store=store)
        try:
            reader = reading.run(live.id)
            assert reader.status == "running"
            with pytest.raises(TimeoutError, match="still running"):
                reader.wait_until_finished(timeout=0)
            for bad in (-1, float("nan"), "5", True):
                with pytest.raises(forebear.InvalidInput, match="number of seconds"):
                    reader.wait_until_finished(timeout=bad)  # type: ignore[arg-type]
            with pytest.raises(forebear.RunStateError, match="never end"):
                live.wait_until_finished()
            live.log({"loss": 0.1}, step=0)
            other = editing.run(live.id)
            other.name = "renamed"
            other.update()
            reader.config["lr"] = 5  # changed here, not saved: load drops it, as W&B's does
            assert reader.load()["summary"] == {"loss": 0.1}
            assert (reader.name, reader.config, reader.summary) == ("renamed", {}, {"loss": 0.1})

            waited: list[str] = []
            waiting = threading.Thread(
                target=lambda: waited.append(str(reader.wait_until_finished()))
            )
            waiting.start()
        finally:
            live.finish()
        waiting.join()
    assert waited == ["None"] and reader.status == "finished" and reader.ended_at is not None
    assert live.load()["status"] == "finished"  # this process's run: its own record
