"""`Table`: W&B's ``wandb.Table``, rows of values under named columns, for code that logs
predictions or samples. A table is stored as one JSON file, ``<name>.table.json`` (W&B's
name), inside a version: `Artifact.add(table, name)` puts it there, `version.get(name)`
reads it back, and `Run.log({"key": table})` logs it as a version of its own."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import ForebearWarning, InvalidInput
from .jsonvalues import json_dict, loads

TABLE_SUFFIX = ".table.json"


class Table:
    """Rows of values under named columns: ``Table(columns=[...], data=[[...], ...])``,
    or ``Table(dataframe=df)``; ``add_data(*row)`` adds one row. Values must be what JSON
    holds (others are kept as their text, as a run's config)."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Iterable[Sequence[Any]] | None = None,
        rows: Iterable[Sequence[Any]] | None = None,
        dataframe: Any = None,
        dtype: object = None,
        optional: object = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = None,
    ) -> None:
        del dtype, optional, allow_mixed_types, log_mode  # W&B's typing of columns
        if dataframe is not None:
            columns = [str(column) for column in dataframe.columns]
            data = dataframe.itertuples(index=False, name=None)
        given = [list(row) for row in (data if data is not None else rows or [])]
        if columns is None:
            columns = [f"Column_{i + 1}" for i in range(len(given[0]) if given else 0)]
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput(f"a table's columns are a list of names, not {columns!r}")
        self.columns: list[str] = list(columns)
        self.data: list[list[Any]] = []
        for row in given:
            self.add_data(*row)

    def add_data(self, *values: Any) -> None:
        """Add one row: one value per column."""
        if len(values) != len(self.columns):
            raise InvalidInput(
                f"a row of this table has {len(self.columns)} values ({', '.join(self.columns)}), "
                f"not {len(values)}"
            )
        self.data.append(_plain_row(values))

    def add_column(self, name: str, data: Sequence[Any]) -> None:
        """Add a column with one value per row."""
        if not isinstance(name, str) or name in self.columns:
            raise InvalidInput(f"column {name!r} must be a new name")
        if len(data) != len(self.data):
            raise InvalidInput(f"column {name!r} needs {len(self.data)} values, not {len(data)}")
        self.columns.append(name)
        for row, value in zip(self.data, _plain_row(data), strict=True):
            row.append(value)

    def get_column(self, name: str) -> list[Any]:
        if name not in self.columns:
            raise InvalidInput(f"this table has no column {name!r} (its columns: {self.columns})")
        index = self.columns.index(name)
        return [row[index] for row in self.data]

    def get_dataframe(self) -> Any:
        """The table as a pandas DataFrame."""
        import pandas  # type: ignore[import-untyped]

        return pandas.DataFrame(self.data, columns=self.columns)

    def to_json(self) -> dict[str, Any]:
        return {"_type": "table", "columns": self.columns, "data": self.data}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Table:
        try:
            body = loads(data.decode(), where)
            return cls(columns=body["columns"], data=body["data"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{where} is not a table ({exc})") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.columns, self.data) == (
            other.columns,
            other.data,
        )

    def __repr__(self) -> str:
        return f"<Table {len(self.data)} rows x {len(self.columns)} columns>"


def table_path(name: str) -> str:
    """Where a table named ``name`` is kept in a version."""
    return name if name.endswith(TABLE_SUFFIX) else f"{name}{TABLE_SUFFIX}"


def _plain_row(values: Sequence[Any]) -> list[Any]:
    """Values as JSON holds them: numpy's scalars as numbers, what JSON has no form for as
    its text (a picture, sound or a histogram in a cell too, said with a warning: W&B
    keeps those as files beside the table); non-finite numbers refused."""
    from .histograms import Histogram
    from .media import Image
    from .media_files import MediaFile

    kept_as_text = [v for v in values if isinstance(v, (Image, MediaFile, Histogram))]
    if kept_as_text:
        warnings.warn(
            f"a table cell holding a forebear.{type(kept_as_text[0]).__name__} keeps only its text "
            f"({kept_as_text[0]!r}): log pictures, sound and histograms with run.log "
            "(run.log({'samples': [forebear.Image(...), ...]})), beside the table",
            ForebearWarning,
            stacklevel=3,
        )
    plain = [value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value
             for value in values]  # fmt: skip
    return list(json_dict({"row": plain}, "a table row")["row"])
