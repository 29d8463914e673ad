"""`Table`: W&B's ``wandb.Table``, rows of values under named columns, for code that logs
predictions or samples. A table is stored as one JSON file, ``<name>.table.json`` (W&B's
name), inside a version: `Artifact.add(table, name)` puts it there, `version.get(name)`
reads it back, and `Run.log({"key": table})` logs it as a version of its own.

A picture, sound, video or page in a cell is kept as W&B keeps it: as a file of the same
version, ``media/<kind>/<digest>.<suffix>`` (one file for equal bytes), the cell holding
W&B's record of it (``{"_type": "image-file", "path": ..., ...}``); a histogram in a cell
is kept as its record, in the cell."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .errors import InvalidInput
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

    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """The column's values, in row order; ``convert_to="numpy"`` makes them a numpy
        array, as W&B's does."""
        if name not in self.columns:
            raise InvalidInput(f"this table has no column {name!r} (its columns: {self.columns})")
        if convert_to not in (None, "numpy"):
            raise InvalidInput(f"convert_to={convert_to!r}: None or 'numpy'")
        index = self.columns.index(name)
        values = [row[index] for row in self.data]
        if convert_to == "numpy":
            import numpy

            return numpy.array(values)
        return values

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """W&B's: each row with its index, ``for index, row in table.iterrows()``."""
        return enumerate(self.data)

    def get_index(self) -> list[int]:
        """W&B's: the rows' indices, 0 to the number of rows less one."""
        return list(range(len(self.data)))

    def add_computed_columns(self, fn: Callable[[int, dict[str, Any]], dict[str, Any]]) -> None:
        """W&B's: ``fn(index, row)`` (the row as a dict by column) gives new columns' values
        for each row, a dict by new column; every row must give the same new columns."""
        computed = [fn(index, dict(zip(self.columns, row, strict=True)))
                    for index, row in enumerate(self.data)]  # fmt: skip
        if not computed:
            return
        names = list(computed[0]) if isinstance(computed[0], dict) else None
        if names is None or not all(
            isinstance(c, dict) and c.keys() == computed[0].keys() for c in computed
        ):
            raise InvalidInput(
                "add_computed_columns: fn must give a dict of the same new columns for every row"
            )
        clash = [n for n in names if n in self.columns]
        if clash:
            raise InvalidInput(f"add_computed_columns: {clash} are columns already")
        for name in names:
            self.add_column(name, [c[name] for c in computed])

    def cast(self, *args: Any, **kwargs: Any) -> None:
        """W&B's typing of a column, which this table does not keep: it changes nothing."""
        del args, kwargs

    def get_dataframe(self) -> Any:
        """The table as a pandas DataFrame."""
        import pandas  # type: ignore[import-untyped]

        return pandas.DataFrame(self.data, columns=self.columns)

    def to_json(self, media: dict[str, bytes] | None = None) -> dict[str, Any]:
        """The table as W&B's JSON; ``media`` is given each picture, sound, video or page
        file its cells' records name, by its path in the version."""
        found = {} if media is None else media
        data = [[media_record(value, found) for value in row] for row in self.data]
        return {"_type": "table", "columns": self.columns, "data": data}

    def stored_files(self, path: str) -> dict[str, bytes]:
        """The files that keep the table in a version: its JSON under ``path``, then the
        files of its cells' media."""
        return stored_json(path, self.to_json)

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


def stored_json(path: str, to_json: Callable[[dict[str, bytes]], Any]) -> dict[str, bytes]:
    """The files that keep a value in a version: the JSON ``to_json`` makes, under
    ``path``, then the media files its records name (``to_json`` is given them, each
    hashed once, as it makes the records)."""
    media: dict[str, bytes] = {}
    body = json.dumps(to_json(media), ensure_ascii=False).encode()
    return {path: body, **media}


def table_path(name: str) -> str:
    """Where a table named ``name`` is kept in a version."""
    return name if name.endswith(TABLE_SUFFIX) else f"{name}{TABLE_SUFFIX}"


def _plain_row(values: Sequence[Any]) -> list[Any]:
    """Values as JSON holds them (numpy's scalars as numbers, what JSON has no form for as
    its text, non-finite numbers refused), but pictures, sound, video, pages and
    histograms, which stay as they are until the table is written (see the module)."""
    plain = [value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value
             for value in values]  # fmt: skip
    kept = {index: value for index, value in enumerate(plain) if _is_media(value)}
    row = [None if index in kept else value for index, value in enumerate(plain)]
    checked = list(json_dict({"row": row}, "a table row")["row"])
    for index, value in kept.items():
        checked[index] = value
    return checked


def _is_media(value: object) -> bool:
    from .histograms import Histogram
    from .media import Image
    from .media_files import MediaFile

    return isinstance(value, (Image, MediaFile, Histogram))


def media_record(value: Any, media: dict[str, bytes]) -> Any:
    """A cell as the table's JSON holds it: W&B's record of a picture, sound, video, page
    (naming its file in the version, which goes into ``media``) or histogram; any other
    value as it is."""
    from .histograms import Histogram
    from .media import Image
    from .media_files import MediaFile

    if isinstance(value, Histogram):
        return value.to_json()
    if isinstance(value, Image):
        kind, described = "image", {"format": value.format, "width": value.width,
                                    "height": value.height, "caption": value.caption}  # fmt: skip
    elif isinstance(value, MediaFile):
        kind, described = value.kind, value.describe()
    else:
        return value
    sha256 = hashlib.sha256(value.data).hexdigest()
    folder = "images" if kind == "image" else value.plural
    path = f"media/{folder}/{sha256[:32]}.{value.suffix}"
    media[path] = value.data
    return {"_type": f"{kind}-file", "path": path, **described, "size": len(value.data),
            "sha256": sha256}  # fmt: skip
