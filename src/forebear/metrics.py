"""Checking what goes into a run's history: a step is a whole number, and only numbers are
charted (other values still reach the summary); a whole number stays whole (an epoch read
back is ``3``, not ``3.0``); and what the summary keeps of each metric (`MetricSummaries`)."""

from __future__ import annotations

import fnmatch
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from .errors import InvalidInput
from .jsonvalues import check_no_nul
from .records import INTEGER_LIMIT

T = TypeVar("T")


def check_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or step >= 2**62:
        raise InvalidInput(
            f"step must be a whole number from 0 (e.g. the epoch or batch index), not {step!r}"
        )
    return step


def numeric_values(values: dict[str, Any], step: int, prefix: str = "") -> dict[str, float]:
    """The values to keep in the history at ``step``: numbers (not booleans), finite; those
    of a nested dict under dotted names (``{"train": {"loss": 1}}`` as ``train.loss``, as
    W&B charts them), but not those of a record of W&B's value types (a dict with
    ``_type``, such as a logged table's)."""
    numbers: dict[str, float] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            if "_type" not in value:  # a logged table's record is not a metric
                numbers.update(numeric_values(value, step, f"{key}."))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        numbers[key] = check_metric(key, value, step)
    return numbers


def check_metric(key: object, value: object, step: int) -> float:
    """One value of the history at ``step``, as the catalog keeps it: a finite number
    under a name of at most 256 characters; a whole number stays an ``int`` where the
    catalog keeps it exactly (`kept_whole`), and is its float beyond, as a chart shows it
    anyway."""
    if not isinstance(key, str) or len(key) > 256:
        raise InvalidInput(f"a metric name is a string of at most 256 characters, not {key!r:.80}")
    check_no_nul(key, "a metric name")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"metric {key!r} at step {step} is {value!r:.80}: not a number")
    if kept_whole(value):
        return value
    if isinstance(value, int):
        if abs(value) > sys.float_info.max:  # float() would overflow
            raise InvalidInput(
                f"metric {key!r} at step {step} is a whole number beyond 1.8e308 (of "
                f"{value.bit_length()} bits): too large to chart; log its logarithm instead"
            )
        return float(value)
    number = float(value)
    if not math.isfinite(number):  # json_dict refuses these first; kept for clarity
        raise InvalidInput(f"metric {key!r} at step {step} is {value!r}: not a finite number")
    return number


def kept_whole(value: object) -> bool:
    """Whether the catalog keeps ``value`` exactly as a whole number: an int (not a bool)
    that its 64-bit integers hold."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -INTEGER_LIMIT <= value < INTEGER_LIMIT
    )


def rows_holding(
    rows: list[dict[str, Any]], keys: str | Sequence[str] | None
) -> list[dict[str, Any]]:
    """History rows as W&B's ``keys=`` argument chooses them: with ``keys`` (one name or
    several), only the rows that hold every one, each with its step and just those."""
    if keys is None:
        return rows
    wanted = [keys] if isinstance(keys, str) else _names(keys)
    if wanted is None:
        raise InvalidInput(f"keys must be a metric name or a list of them, not {keys!r:.80}")
    return [
        {"step": row["step"], **{key: row[key] for key in wanted}}
        for row in rows
        if all(key in row for key in wanted)
    ]


def _names(keys: object) -> list[str] | None:
    """The names of a list, tuple, set or other iterable of texts (a pandas Index); None
    for anything else (a number, a dict)."""
    if isinstance(keys, (Mapping, bytes)) or not isinstance(keys, Iterable):
        return None
    names = list(keys)
    return names if all(isinstance(name, str) for name in names) else None


def thinned(rows: list[T], count: int) -> list[T]:
    """At most ``count`` of ``rows``, evenly spread, the first and the last kept."""
    if len(rows) <= count:
        return rows
    if count == 1:
        return rows[-1:]
    last = len(rows) - 1
    return [rows[round(i * last / (count - 1))] for i in range(count)]


def history_frame(rows: list[dict[str, Any]]) -> Any:
    """History rows as W&B's ``run.history()`` gives them: a pandas DataFrame, the step
    under ``_step``."""
    try:
        import pandas  # type: ignore[import-untyped]
    except ImportError as exc:
        raise InvalidInput(
            "history(pandas=True) needs pandas: pip install pandas, or leave pandas out for "
            "a list of rows"
        ) from exc
    records = [
        {"_step": row["step"], **{k: v for k, v in row.items() if k != "step"}} for row in rows
    ]
    return pandas.DataFrame.from_records(records, columns=None if records else ["_step"])


SUMMARY_KINDS = ("min", "max", "mean", "first", "last", "best", "copy", "none")


class MetricSummaries:
    """What a run's summary keeps of each metric, as W&B's ``define_metric(name,
    summary=...)`` says: by default (and with ``"copy"``) the last value; with ``"none"``
    nothing; with aggregations (``"min,max"``, ``"mean"``, ``"first"``, ``"last"``,
    ``"best"`` with a ``goal``) a dict of them, e.g. ``{"min": 0.12}``. Names may be globs
    (``"val/*"``); an exact name wins over a glob. Values that are not numbers leave the
    aggregations as they were."""

    def __init__(self) -> None:
        self.defined: dict[str, tuple[tuple[str, ...], str | None]] = {}
        self.means: dict[str, tuple[float, int]] = {}  # running sum and count

    def define(
        self, name: str, summary: str | None, goal: str | None, overwrite: bool | None
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"define_metric needs a metric name (or a glob), not {name!r}")
        kinds = tuple(k.strip() for k in summary.split(",")) if summary else ("copy",)
        unknown = [k for k in kinds if k not in SUMMARY_KINDS]
        if unknown:
            raise InvalidInput(
                f"summary {summary!r}: {', '.join(map(repr, unknown))} is not one of "
                f"{', '.join(SUMMARY_KINDS)} (several are joined by commas: 'min,max')"
            )
        if goal not in (None, "minimize", "maximize"):
            raise InvalidInput(f"goal must be 'minimize' or 'maximize', not {goal!r}")
        if "best" in kinds and goal is None:
            raise InvalidInput("summary 'best' needs goal='minimize' or goal='maximize'")
        if overwrite is False and name in self.defined:  # W&B adds to the definition
            before, before_goal = self.defined[name]
            kinds = tuple(dict.fromkeys(before + kinds))
            goal = goal or before_goal
        self.defined[name] = (kinds, goal)

    def kinds_of(self, key: str) -> tuple[tuple[str, ...], str | None] | None:
        found = self.defined.get(key)
        if found is not None:
            return found
        for name, definition in self.defined.items():
            if fnmatch.fnmatchcase(key, name):
                return definition
        return None

    def apply(self, logged: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        """The summary once ``logged`` is logged (a new dict)."""
        updated = {**summary}
        for key, value in logged.items():
            definition = self.kinds_of(key)
            kinds, goal = definition if definition is not None else (("copy",), None)
            if "none" in kinds:
                updated.pop(key, None)
                continue
            if kinds == ("copy",):
                updated[key] = value
                continue
            previous = summary.get(key)
            kept: dict[str, Any] = dict(previous) if isinstance(previous, dict) else {}
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                updated[key] = kept  # nothing to aggregate
                continue
            for kind in kinds:
                kept[kind] = self._aggregate(key, kind, goal, kept.get(kind), value)
            updated[key] = kept
        return updated

    def _aggregate(self, key: str, kind: str, goal: str | None, before: Any, value: float) -> float:
        if kind == "best":
            kind = "min" if goal == "minimize" else "max"
        if kind == "mean":
            total, count = self.means.get(key, (0.0, 0))
            self.means[key] = (total + value, count + 1)
            return (total + value) / (count + 1)
        if kind in ("last", "copy") or before is None:
            return value
        if kind == "first":
            return before  # type: ignore[no-any-return]
        if not isinstance(before, (int, float)):
            return value
        return min(before, value) if kind == "min" else max(before, value)
