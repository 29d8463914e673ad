"""A run's history as both kinds of script read it: rows, and W&B's DataFrame.

forebear's ``run.history()`` is a list of rows (dicts holding ``step`` and the values
logged at it). W&B's ``run.history()`` is a pandas DataFrame, and the scripts that export
W&B runs treat it as one: ``run.history().to_csv(...)``, ``history["loss"].min()``,
``history.columns``. `HistoryRows` is the list, and answers those too: a column name (or
a list of names, or a mask) in brackets, and any DataFrame attribute the list lacks, go to
the DataFrame that ``history(pandas=True)`` gives, built on first use. So both kinds of
script run unchanged.

`histories` is W&B's ``Runs.histories``: the rows of several runs, each with its run's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, SupportsIndex, overload

from .errors import InvalidInput
from .metrics import history_frame

HISTORY_FORMATS = ("default", "pandas")


class HistoryRows(list[dict[str, Any]]):
    """A run's history rows, oldest first; also W&B's DataFrame of them (see the module).

    An int or a slice indexes the rows, as in any list, and ``len``, iteration and ``==``
    are the list's. Where the two disagree, the list wins: ``index``, ``count``, ``copy``
    and ``sort`` are the list's methods (``history(pandas=True)`` is a DataFrame whole).
    The DataFrame is built from the rows as they are when first asked for."""

    _frame: Any = None

    def frame(self) -> Any:
        """The rows as W&B's DataFrame: the step under ``_step`` (needs pandas)."""
        if self._frame is None:
            self._frame = history_frame(list(self))
        return self._frame

    @overload
    def __getitem__(self, key: SupportsIndex) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, key: slice) -> list[dict[str, Any]]: ...

    @overload
    def __getitem__(self, key: object) -> Any: ...

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (slice, SupportsIndex)) and not isinstance(key, (str, bool)):
            return super().__getitem__(key)
        return self.frame()[key]  # a column, columns, or a boolean mask: as a DataFrame

    def __getattr__(self, name: str) -> Any:
        # only reached for what a list lacks: DataFrame attributes (to_csv, columns, loc...).
        # Private names stay unanswered: pandas asks `_typ` to tell a DataFrame, and would
        # then take these rows for one (pd.Series(rows) refused them, pd.concat broke).
        if name.startswith("_") and name != "_repr_html_":  # a notebook shows the table
            raise AttributeError(name)
        try:
            import pandas  # type: ignore[import-untyped]
        except ImportError:
            raise AttributeError(
                f"history rows have no attribute {name!r}; they answer pandas' DataFrame "
                "attributes (as W&B's history does) once pandas is installed: pip install pandas"
            ) from None
        if not hasattr(pandas.DataFrame, name):
            raise AttributeError(f"history rows, and their DataFrame, have no attribute {name!r}")
        return getattr(self.frame(), name)


class _HasHistory(Protocol):
    id: str

    def history(
        self, samples: int | None = None, keys: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...


def histories(
    runs: Iterable[_HasHistory],
    samples: int | None,
    keys: Sequence[str] | None,
    format: str,
) -> Any:
    """W&B's ``Runs.histories``: every run's rows (each as ``run.history(samples, keys)``
    gives them), with ``run_id`` added; a pandas DataFrame of them with
    ``format="pandas"``."""
    if format == "polars":
        raise InvalidInput(
            "forebear gives histories as rows or as a pandas DataFrame: ask for "
            "format='pandas' (polars.from_pandas converts it)"
        )
    if format not in HISTORY_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(HISTORY_FORMATS)}, not {format!r}")
    rows = [
        {"run_id": run.id, **row} for run in runs for row in run.history(samples=samples, keys=keys)
    ]
    return rows if format == "default" else history_frame(rows)
