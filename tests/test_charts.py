"""W&B's ``wandb.Histogram`` and ``wandb.plot``: what a training script counts or charts is
made once, checked, and kept with the run by `run.log` as a version of its own, in the
layout W&B gives it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

import forebear
from forebear import plot


def test_a_histogram_counts_as_numpy_does_once_when_made() -> None:
    values = np.random.default_rng(1).normal(size=1000)
    histogram = forebear.Histogram(values, num_bins=10)
    counts, edges = np.histogram(values, bins=10)
    assert histogram.histogram == counts.tolist() and histogram.bins == edges.tolist()
    values[:] = 0  # counted when made: a later change does not reach it
    assert sum(histogram.histogram) == 1000 and histogram.histogram == counts.tolist()
    assert histogram.to_json() == {
        "_type": "histogram", "values": counts.tolist(), "bins": edges.tolist()
    }  # fmt: skip
    assert len(forebear.Histogram([1, 2, 3]).histogram) == 64  # W&B's default
    same = forebear.Histogram([5, 5])  # one value: numpy's bins around it
    assert sum(same.histogram) == 2 and same.bins[0] < 5 < same.bins[-1]
    given_ = forebear.Histogram(np_histogram=(np.array([2, 0, 1]), [0.0, 1.0, 2.0, 3.0]))
    assert (given_.histogram, given_.bins) == ([2, 0, 1], [0.0, 1.0, 2.0, 3.0])
    weighted = forebear.Histogram(np_histogram=([0.5, 0.25], [0, 1, 2]))  # density: floats
    assert weighted.histogram == [0.5, 0.25] and weighted == forebear.Histogram(
        np_histogram=([0.5, 0.25], [0, 1, 2])
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
    st.integers(1, 512),
)
def test_every_value_falls_in_one_bin_of_rising_edges(values: list[float], bins: int) -> None:
    histogram = forebear.Histogram(values, num_bins=bins)
    assert sum(histogram.histogram) == len(values) and len(histogram.histogram) == bins
    assert histogram.bins == sorted(histogram.bins) and len(histogram.bins) == bins + 1
    assert histogram.bins[0] <= min(values) and max(values) <= histogram.bins[-1]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({}, "needs the values"),
        ({"sequence": [1.0, float("nan")]}, "NaN or infinity"),
        ({"sequence": [1.0, float("inf")]}, "NaN or infinity"),
        ({"sequence": ["a"]}, "counts numbers, not"),
        ({"sequence": [10**400]}, "counts numbers, not"),
        ({"np_histogram": ([10**400], [0, 1])}, "np_histogram is"),
        ({"sequence": [1], "num_bins": 513}, "at most 512 bins, not 513"),
        ({"sequence": [1], "num_bins": 0}, "num_bins is a whole number"),
        ({"sequence": [1], "num_bins": 2.5}, "num_bins is a whole number"),
        ({"np_histogram": ([1, 2], [0, 1])}, "2 counts and 2 edges"),
        ({"np_histogram": ([1], [1, 0])}, "edges go down"),
        ({"np_histogram": ([1], [0, "1"])}, "an edge is a number"),
        ({"np_histogram": ([float("nan")], [0, 1])}, "a count is nan"),
        ({"np_histogram": 5}, r"np_histogram is \(counts, edges\)"),
        ({"np_histogram": ([0] * 513, range(514))}, "at most 512 bins, not 513"),
    ],
)
def test_what_is_no_histogram_gets_one_clear_error(arguments: dict, says: str) -> None:
    with pytest.raises(forebear.InvalidInput, match=says):
        forebear.Histogram(**arguments)


def test_logged_histograms_are_kept_step_by_step(store: forebear.Store) -> None:
    with forebear.init(project="p", name="weights", store=store) as run:
        for epoch in range(2):
            weights = np.arange(10) * (epoch + 1)
            run.log({"weights": forebear.Histogram(weights, num_bins=5), "loss": 1 / (epoch + 1)})
        summary = dict(run.summary)
    first, second = store.versions(f"p/run-{run.id}-weights-histograms")
    assert (first.type, first.metadata, second.metadata) == ("run_media", {"step": 0}, {"step": 1})
    assert first.files() == ["0.histogram.json"] and second.files() == ["1.histogram.json"]
    kept = json.loads(second.open("1.histogram.json").read())
    assert kept == forebear.Histogram(np.arange(10) * 2, num_bins=5).to_json()
    assert summary["weights"] == {
        **kept, "artifact": second.qualified_ref, "path": "1.histogram.json"
    }  # fmt: skip
    assert run.outputs == [first, second]
    history = store.run(run.id).history()  # numbers only: no column for the histograms
    assert history == [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}]


def test_a_chart_draws_columns_its_table_has() -> None:
    table = forebear.Table(columns=["epoch", "loss", "split"], data=[[0, 1.0, "a"]])
    chart = plot.line(table, "epoch", "loss", stroke="split", title="Loss")
    assert (chart.kind, chart.table, chart.title) == ("line", table, "Loss")
    assert chart.fields == {"x": "epoch", "y": "loss", "stroke": "split"}
    assert plot.scatter(table, "epoch", "loss").fields == {"x": "epoch", "y": "loss"}
    assert plot.bar(table, "split", "loss").fields == {"label": "split", "value": "loss"}
    assert plot.histogram(table, "loss", split_table=True).kind == "histogram"
    with pytest.raises(forebear.InvalidInput, match=r"no column 'acc' \(its columns: epoch, loss"):
        plot.scatter(table, "epoch", "acc")
    with pytest.raises(forebear.InvalidInput, match=r"draws a forebear\.Table, not"):
        plot.line([[0, 1]], "x", "y")  # type: ignore[arg-type]


def test_line_series_lays_out_w_and_b_rows() -> None:
    chart = plot.line_series([0, 1], [[1.0, 2.0], [3.0, 4.0]], keys=["a", "b"], xname="epoch")
    assert chart.table.columns == ["step", "lineKey", "lineVal"]
    assert chart.table.data == [[0, "a", 1.0], [1, "a", 2.0], [0, "b", 3.0], [1, "b", 4.0]]
    assert chart.fields["xname"] == "epoch"
    own = plot.line_series([[0, 1], [5]], [[1, 2], [3]])  # x values for each line
    assert own.table.data == [[0, "line_0", 1], [1, "line_0", 2], [5, "line_1", 3]]
    with pytest.raises(forebear.InvalidInput, match="line 'line_0' has 2 values and 3 x values"):
        plot.line_series([0, 1, 2], [[1, 2]])
    with pytest.raises(forebear.InvalidInput, match="2 lines in ys, 2 lists of x values and 1"):
        plot.line_series([0], [[1], [2]], keys=["only"])


def test_a_confusion_matrix_counts_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 60)
    probs = rng.random((60, 3))
    chart = plot.confusion_matrix(probs=probs, y_true=y_true, class_names=["a", "b", "c"])
    expected = metrics.confusion_matrix(y_true, probs.argmax(axis=1), labels=[0, 1, 2])
    assert chart.table.columns == ["Actual", "Predicted", "nPredictions"]
    counts = {(row[0], row[1]): row[2] for row in chart.table.data}
    assert counts == {
        ("abc"[i], "abc"[j]): int(expected[i][j]) for i in range(3) for j in range(3)
    }  # fmt: skip
    named = plot.confusion_matrix(y_true=["cat", "dog"], preds=["dog", "dog"])  # no names
    assert named.table.data == [
        ["Class_1", "Class_1", 0], ["Class_1", "Class_2", 1],
        ["Class_2", "Class_1", 0], ["Class_2", "Class_2", 1],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"y_true": [0], "preds": [0], "probs": [[1.0]]}, "either probs or preds"),
        ({"y_true": [0]}, "either probs or preds"),
        ({"preds": [0]}, "needs y_true"),
        ({"y_true": [0, 1], "preds": [0]}, "2 true classes and 1 predictions"),
        ({"y_true": [0, 2], "preds": [0, 1], "class_names": ["a", "b"]}, "class 2 is no index"),
        ({"y_true": [[0]], "preds": [0]}, "y_true is a list of classes"),
        ({"y_true": "01", "preds": [0, 1]}, "y_true is a list of classes"),
        ({"y_true": [0], "probs": [[]]}, "a row of no scores"),
        ({"y_true": [0], "probs": [["x"]]}, "probs is rows of numbers"),
        ({"y_true": [0], "probs": [[10**400]]}, "probs is rows of numbers"),
        ({"y_true": [0], "probs": [[float("nan")]]}, "probs holds NaN or infinity"),
        ({"y_true": [float("nan")], "preds": [0]}, "y_true holds NaN or infinity"),
    ],
)
def test_a_confusion_matrix_of_what_does_not_match_is_refused(arguments: dict, says: str) -> None:
    with pytest.raises(forebear.InvalidInput, match=says):
        plot.confusion_matrix(**arguments)


def test_roc_and_pr_curves_follow_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, 80)
    y_probas = rng.dirichlet([1, 1, 1], 80).round(2)  # rounded: some scores tie
    roc = plot.roc_curve(y_true, y_probas, labels=["a", "b", "c"], classes_to_plot=[0, 2])
    assert roc.table.columns == ["class", "fpr", "tpr"]
    assert {row[0] for row in roc.table.data} == {"a", "c"}
    for column, name in ((0, "a"), (2, "c")):
        fpr, tpr, _ = metrics.roc_curve(
            y_true == column, y_probas[:, column], drop_intermediate=False
        )
        points = [value for row in roc.table.data if row[0] == name for value in row[1:]]
        assert points == pytest.approx([v for pair in zip(fpr, tpr, strict=True) for v in pair])
    pr = plot.pr_curve(y_true, y_probas, interp_size=11)
    assert pr.table.columns == ["class", "recall", "precision"] and len(pr.table.data) == 33
    for column in range(3):
        precision, recall, _ = metrics.precision_recall_curve(y_true == column, y_probas[:, column])
        rows = [row for row in pr.table.data if row[0] == str(column)]
        for _, at, best in rows:  # the best precision at this recall or more
            reached = [p for p, r in zip(precision, recall, strict=True) if r >= at and r > 0]
            assert best == pytest.approx(round(max(reached), 3))


def test_curves_of_scores_that_do_not_fit_the_classes_are_refused() -> None:
    with pytest.raises(
        forebear.InvalidInput, match=r"needs y_true \(the true classes\) and y_probas"
    ):
        plot.roc_curve([0, 1])
    with pytest.raises(forebear.InvalidInput, match="a row for each of the 2 true classes, each"):
        plot.roc_curve([0, 1], [[0.1], [0.9]])
    with pytest.raises(forebear.InvalidInput, match="3 labels for 2 classes"):
        plot.pr_curve([0, 1], [[0.1, 0.9], [0.8, 0.2]], labels=["a", "b", "c"])
    with pytest.raises(forebear.InvalidInput, match="class 7 is not among y_true's"):
        plot.pr_curve([0, 1], [[0.1, 0.9], [0.8, 0.2]], classes_to_plot=[7])
    with pytest.raises(forebear.InvalidInput, match="interp_size is a whole number, 2 or more"):
        plot.pr_curve([0, 1], [[0.1, 0.9], [0.8, 0.2]], interp_size=1)


def test_a_logged_chart_keeps_its_table_and_says_what_it_draws(store: forebear.Store) -> None:
    with forebear.init(project="p", name="charts", store=store) as run:
        table = forebear.Table(columns=["epoch", "loss"], data=[[0, 1.0], [1, 0.5]])
        run.log({"loss curve": forebear.plot.line(table, "epoch", "loss", title="Loss")})
        summary = dict(run.summary)
    (version,) = run.outputs
    assert (version.name, version.type) == (f"run-{run.id}-loss-curve", "run_table")
    assert version.get("loss-curve") == table
    assert summary["loss curve"] == {
        "_type": "table-file", "artifact": version.qualified_ref, "path": "loss-curve.table.json",
        "nrows": 2, "ncols": 2,
        "chart": {"kind": "line", "fields": {"x": "epoch", "y": "loss"}, "title": "Loss"},
    }  # fmt: skip
    assert store.run(run.id).history() == []


def test_w_and_b_reaches_the_chart_names_as_it_does_its_own() -> None:
    assert forebear.plot is plot and {"plot", "Histogram"} <= set(dir(forebear))
    assert hasattr(forebear.plot, "confusion_matrix") and hasattr(forebear, "Histogram")


def test_what_a_nested_dict_holds_is_kept_under_its_dotted_name(store: forebear.Store) -> None:
    with forebear.init(project="p", name="nested", store=store) as run:
        run.log({"val": {"weights": forebear.Histogram([1, 2, 3], num_bins=2), "acc": 0.5}})
        summary = dict(run.summary)
    (version,) = run.outputs
    assert version.name == f"run-{run.id}-val.weights-histograms"
    assert summary["val"]["acc"] == 0.5 and summary["val"]["weights"]["values"] == [1, 2]
    assert summary["val"]["weights"]["artifact"] == version.qualified_ref
    assert store.run(run.id).history() == [{"step": 0, "val.acc": 0.5}]
