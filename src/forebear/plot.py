"""W&B's ``wandb.plot``: charts a training script logs (``run.log({"roc": plot.roc_curve(
...)})``). Each is a `Chart`: the `Table` of the points to draw, and what to draw from it.
Logged, the table is kept with the run as any logged table is (see `Run.log`), and the
summary says which chart it makes, so the points stay readable without W&B's app.

The functions take W&B's arguments, in W&B's order, and lay the table out as W&B's do
(the same columns), so a script and whatever reads its tables back need no change."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .errors import InvalidInput
from .tables import Table


class Chart:
    """A chart to log: ``kind`` (``"line"``, ``"scatter"``, ``"bar"``, ``"histogram"``,
    ``"line_series"``, ``"confusion_matrix"``, ``"pr_curve"``, ``"roc_curve"``), the
    ``table`` of its points, the columns it draws (``fields``, as W&B names them) and its
    ``title``."""

    def __init__(self, kind: str, table: Table, fields: dict[str, str], title: str = "") -> None:
        if not isinstance(table, Table):
            raise InvalidInput(f"a {kind} chart draws a forebear.Table, not {table!r:.80}")
        missing = [column for column in fields.values() if column not in table.columns]
        if missing:
            raise InvalidInput(
                f"the table of this {kind} chart has no column {missing[0]!r} "
                f"(its columns: {', '.join(table.columns) or 'none'})"
            )
        self.kind = kind
        self.table = table
        self.fields = dict(fields)
        self.title = "" if title is None else str(title)

    def to_json(self) -> dict[str, Any]:
        """What a logged chart's summary record says of it, beside its kept table."""
        return {"kind": self.kind, "fields": self.fields, "title": self.title}

    def __repr__(self) -> str:
        return f"<Chart {self.kind} {self.title!r} of {len(self.table.data)} points>"


def line(
    table: Table, x: str, y: str, stroke: str | None = None, title: str = "",
    split_table: bool = False,
) -> Chart:  # fmt: skip
    """A line through the points (``x``, ``y``) of ``table``; one line per value of the
    column ``stroke``, if given."""
    del split_table  # where W&B's app shows the table: it is kept all the same
    fields = {"x": x, "y": y} if stroke is None else {"x": x, "y": y, "stroke": stroke}
    return Chart("line", table, fields, title)


def scatter(table: Table, x: str, y: str, title: str = "", split_table: bool = False) -> Chart:
    """The points (``x``, ``y``) of ``table``."""
    del split_table
    return Chart("scatter", table, {"x": x, "y": y}, title)


def bar(table: Table, label: str, value: str, title: str = "", split_table: bool = False) -> Chart:
    """One bar per row of ``table``: ``value`` high, named by ``label``."""
    del split_table
    return Chart("bar", table, {"label": label, "value": value}, title)


def histogram(table: Table, value: str, title: str = "", split_table: bool = False) -> Chart:
    """The distribution of the column ``value`` of ``table``."""
    del split_table
    return Chart("histogram", table, {"value": value}, title)


def line_series(
    xs: Sequence[Any], ys: Sequence[Sequence[Any]], keys: Sequence[str] | None = None,
    title: str = "", xname: str = "x", split_table: bool = False,
) -> Chart:  # fmt: skip
    """Several lines on one chart: ``ys`` holds each line's values, ``xs`` their x values
    (one list for every line, or a list for each), ``keys`` their names (``line_0``, ...
    unless given). The table is W&B's: one row per point, ``step``, ``lineKey``,
    ``lineVal``."""
    del split_table
    lines = [list(values) for values in ys]
    shared = not lines or not any(isinstance(x, (list, tuple)) for x in xs)
    xs_each = [list(xs)] * len(lines) if shared else [list(x) for x in xs]
    names = [f"line_{i}" for i in range(len(lines))] if keys is None else [str(k) for k in keys]
    if len(xs_each) != len(lines) or len(names) != len(lines):
        raise InvalidInput(
            f"line_series has {len(lines)} lines in ys, {len(xs_each)} lists of x values "
            f"and {len(names)} keys: give one of each per line"
        )
    table = Table(columns=["step", "lineKey", "lineVal"])
    for xs_line, name, values in zip(xs_each, names, lines, strict=True):
        if len(xs_line) != len(values):
            raise InvalidInput(
                f"line {name!r} has {len(values)} values and {len(xs_line)} x values: "
                "give one x for each value"
            )
        for x, value in zip(xs_line, values, strict=True):
            table.add_data(x, name, value)
    fields = {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"}
    chart = Chart("line_series", table, fields, title)
    chart.fields["xname"] = str(xname)  # a label, not a column
    return chart


def confusion_matrix(
    probs: Sequence[Sequence[float]] | None = None, y_true: Sequence[Any] | None = None,
    preds: Sequence[Any] | None = None, class_names: Sequence[str] | None = None,
    title: str = "Confusion Matrix Curve", split_table: bool = False,
) -> Chart:  # fmt: skip
    """How often each true class (``y_true``) was predicted as each class: from ``preds``
    (the predicted classes), or from ``probs`` (each row's scores; its highest counts).
    Classes are indexes into ``class_names`` where that is given; otherwise the values
    seen, named ``Class_1``, ... The table is W&B's: ``Actual``, ``Predicted``,
    ``nPredictions``, a row for every pair of classes."""
    del split_table
    if (probs is None) == (preds is None):
        raise InvalidInput("confusion_matrix takes either probs or preds, not both or neither")
    if y_true is None:
        raise InvalidInput("confusion_matrix needs y_true, the true class of each prediction")
    if probs is not None:
        preds = [_highest(row) for row in _rows(probs, "probs")]
    predicted = _plain_list(preds, "preds")
    actual = _plain_list(y_true, "y_true")
    if len(predicted) != len(actual):
        raise InvalidInput(
            f"confusion_matrix has {len(actual)} true classes and {len(predicted)} "
            "predictions: give one prediction for each"
        )
    if class_names is None:
        classes = sorted(set(actual) | set(predicted), key=lambda c: (str(type(c)), c))
        names = [f"Class_{i + 1}" for i in range(len(classes))]
    else:
        names = [str(name) for name in class_names]
        classes = list(range(len(names)))
        outside = [c for c in (*actual, *predicted) if c not in classes]
        if outside:
            raise InvalidInput(
                f"class {outside[0]!r} is no index into class_names ({len(names)} names): "
                "y_true and preds hold class indexes where class_names is given"
            )
    index = {c: i for i, c in enumerate(classes)}
    counts = [[0] * len(classes) for _ in classes]
    for true_class, predicted_class in zip(actual, predicted, strict=True):
        counts[index[true_class]][index[predicted_class]] += 1
    table = Table(columns=["Actual", "Predicted", "nPredictions"])
    for i, true_name in enumerate(names):
        for j, predicted_name in enumerate(names):
            table.add_data(true_name, predicted_name, counts[i][j])
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return Chart("confusion_matrix", table, fields, title)


def roc_curve(
    y_true: Sequence[Any] | None = None, y_probas: Sequence[Sequence[float]] | None = None,
    labels: Sequence[str] | None = None, classes_to_plot: Sequence[Any] | None = None,
    title: str = "ROC Curve", split_table: bool = False,
) -> Chart:  # fmt: skip
    """The receiver operating characteristic of each class: the rate of false positives
    against the rate of true ones, as the score threshold falls. ``y_probas`` holds each
    row's score for each class (the classes seen in ``y_true``, in sorted order), ``labels``
    their names. The table is W&B's: ``class``, ``fpr``, ``tpr``."""
    del split_table
    table = Table(columns=["class", "fpr", "tpr"])
    for name, points in _per_class(y_true, y_probas, labels, classes_to_plot, "roc_curve"):
        positives = points[-1][0] or 1
        negatives = points[-1][1] or 1
        for true_positives, false_positives in [(0, 0), *points]:
            table.add_data(name, false_positives / negatives, true_positives / positives)
    return Chart("roc_curve", table, {"x": "fpr", "y": "tpr", "class": "class"}, title)


def pr_curve(
    y_true: Sequence[Any] | None = None, y_probas: Sequence[Sequence[float]] | None = None,
    labels: Sequence[str] | None = None, classes_to_plot: Sequence[Any] | None = None,
    interp_size: int = 21, title: str = "Precision-Recall Curve", split_table: bool = False,
) -> Chart:  # fmt: skip
    """The precision of each class against its recall, as the score threshold falls, read
    at ``interp_size`` recalls from 0 to 1 (the best precision at that recall or more).
    Arguments as `roc_curve`'s. The table is W&B's: ``class``, ``recall``, ``precision``."""
    del split_table
    if isinstance(interp_size, bool) or not isinstance(interp_size, int) or interp_size < 2:
        raise InvalidInput(f"interp_size is a whole number, 2 or more, not {interp_size!r:.40}")
    table = Table(columns=["class", "recall", "precision"])
    for name, points in _per_class(y_true, y_probas, labels, classes_to_plot, "pr_curve"):
        positives = points[-1][0]
        curve = [(tp / positives if positives else 0.0, tp / (tp + fp)) for tp, fp in points]
        for step in range(interp_size):
            recall = step / (interp_size - 1)
            reached = [precision for got, precision in curve if got >= recall]
            table.add_data(name, round(recall, 3), round(max(reached, default=0.0), 3))
    return Chart("pr_curve", table, {"x": "recall", "y": "precision", "class": "class"}, title)


def _per_class(
    y_true: Sequence[Any] | None,
    y_probas: Sequence[Sequence[float]] | None,
    labels: Sequence[str] | None,
    classes_to_plot: Sequence[Any] | None,
    what: str,
) -> list[tuple[str, list[tuple[int, int]]]]:
    """For each class to draw: its name, and the (true, false) positives counted at each
    distinct score, highest first, when that class is the positive one."""
    if y_true is None or y_probas is None:
        raise InvalidInput(f"{what} needs y_true (the true classes) and y_probas (the scores)")
    actual = _plain_list(y_true, "y_true")
    scores = _rows(y_probas, "y_probas")
    classes = sorted(set(actual), key=lambda c: (str(type(c)), c))
    if len(scores) != len(actual) or any(len(row) != len(classes) for row in scores):
        raise InvalidInput(
            f"{what}: y_probas needs a row for each of the {len(actual)} true classes, each "
            f"with a score for each of the {len(classes)} classes they hold"
        )
    if labels is not None and len(labels) != len(classes):
        raise InvalidInput(f"{what}: {len(labels)} labels for {len(classes)} classes")
    chosen = classes if classes_to_plot is None else list(classes_to_plot)
    unknown = [c for c in chosen if c not in classes]
    if unknown:
        raise InvalidInput(f"{what}: class {unknown[0]!r} is not among y_true's {classes}")
    curves = []
    for c in chosen:
        column = classes.index(c)
        ranked = sorted(
            ((row[column], label == c) for row, label in zip(scores, actual, strict=True)),
            key=lambda pair: -pair[0],
        )
        points: list[tuple[int, int]] = []
        true_positives = false_positives = 0
        for i, (score, positive) in enumerate(ranked):
            true_positives += positive
            false_positives += not positive
            if i + 1 == len(ranked) or ranked[i + 1][0] != score:  # the last of this score
                points.append((true_positives, false_positives))
        name = str(labels[column]) if labels is not None else str(c)
        curves.append((name, points))  # one point at least: the class is among y_true
    return curves


def _highest(row: Sequence[float]) -> int:
    """The index of the highest score of a row (the first, where several are)."""
    if not row:
        raise InvalidInput("probs has a row of no scores: give each row a score per class")
    return max(range(len(row)), key=lambda i: (row[i], -i))


def _rows(values: Any, what: str) -> list[list[float]]:
    """A table of scores as lists of numbers (numpy arrays and tensors taken as lists)."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    try:
        rows = [[float(x) for x in (row.tolist() if hasattr(row, "tolist") else row)]
                for row in values]  # fmt: skip
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{what} is rows of numbers, one row per example ({exc})") from None
    if not all(math.isfinite(x) for row in rows for x in row):
        raise InvalidInput(f"{what} holds NaN or infinity: give every example finite scores")
    return rows


def _plain_list(values: Any, what: str) -> list[Any]:
    """Classes as a plain list (numpy's scalars as Python's)."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, (str, bytes)):
        raise InvalidInput(f"{what} is a list of classes, not {values!r:.40}")
    try:
        classes = [v.item() if hasattr(v, "item") else v for v in values]
        set(classes)  # each class a value that can be told apart from the others
        if any(isinstance(c, float) and not math.isfinite(c) for c in classes):
            raise InvalidInput(f"{what} holds NaN or infinity, which names no class")
    except TypeError:
        raise InvalidInput(
            f"{what} is a list of classes (numbers or names), not {values!r:.60}"
        ) from None
    return classes
