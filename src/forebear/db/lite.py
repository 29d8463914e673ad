"""Reading a SQLite catalog through the standard library, for commands that only list.

Importing SQLAlchemy and building the schema's mappings costs about 0.4 s on every start,
ten times what ``forebear ls`` needs to open the catalog and list it. A `LiteCatalog`
answers the few listing queries with ``sqlite3`` on a read-only connection, returning
exactly what the SQLAlchemy queries in `versions` and `aliases` return (a test holds the
two to the same answers). It never writes, never migrates, and refuses nothing: when it
cannot answer plainly (a catalog that is not at the current schema, a URL it does not
parse simply, a malformed row), it says so with None and the caller opens the catalog the
full way, which gives the proper error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Self
from urllib.parse import quote

from ..paths import is_name
from ..records import VersionData

# The newest migration; a test checks it matches the migrations folder.
SCHEMA_HEAD = "0015"
BUSY_TIMEOUT_SECONDS = 60
LATEST = "latest"
# SQLite keeps times as integer microseconds since this moment (see `schema.UTCDateTime`)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

# The columns of `VersionData`, in its order (as `versions.load_versions` selects them).
_VERSION_COLUMNS = """
    v.id, v.artifact_id, p.name, a.name, v.number, a.type, v.digest, v.hash_algorithm,
    v.size, v.file_count, v.description, CAST(v.metadata AS TEXT), v.created_at,
    v.created_by, CAST(v.chunking AS TEXT), v.new_bytes, v.shared_bytes, v.deleted_at,
    v.deleted_by, v.purged_at, v.expires_at, v.source_version_id
"""
_TIMES = (12, 17, 19, 20)  # created_at, deleted_at, purged_at, expires_at


def plain_sqlite_file(url: str) -> str | None:
    """The file of a ``sqlite:///path`` URL written plainly (no query, no escapes, not in
    memory), made absolute; None for anything else, which only the full parser reads."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    database = url[len(prefix) :]
    if not database or any(c in database for c in "?%#") or database.startswith(":memory:"):
        return None
    return os.path.abspath(database)


class LiteCatalog:
    """A SQLite catalog file, opened read-only for each question and closed after it, so
    every answer is a committed state and nothing is created beside the file. Each answer
    is None when SQLite could not give it (locked too long, replaced, damaged): the full
    reader then explains what is wrong."""

    def __init__(self, path: str, store_id: str | None) -> None:
        self.path = path
        self.store_id = store_id

    @classmethod
    def open(cls, path: str) -> Self | None:
        """The catalog at ``path`` when it exists and is at the current schema."""
        if not os.path.isfile(path):
            return None
        catalog = cls(path, None)
        if catalog.rows("SELECT version_num FROM alembic_version", ()) != [(SCHEMA_HEAD,)]:
            return None
        found = catalog.rows("SELECT value FROM store_info WHERE key = 'store_id'", ())
        if found is None:
            return None
        catalog.store_id = str(found[0][0]) if found else None
        return catalog

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(
            file_uri(self.path, "ro"), uri=True, timeout=BUSY_TIMEOUT_SECONDS
        )
        try:
            yield connection
        finally:
            connection.close()

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The rows ``sql`` selects, or None when SQLite could not answer."""
        try:
            with self._connection() as connection:
                return connection.execute(sql, params).fetchall()
        except sqlite3.Error:
            return None

    def latest_versions(self, project: str | None, type_: str | None) -> list[VersionData] | None:
        """The version ``latest`` points to for every artifact (of a project or type), as
        `versions.latest_version_ids` and `versions.load_versions` find them; None when a
        row is not what forebear writes (the full reader explains it)."""
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM aliases l "
            "JOIN versions v ON v.id = l.version_id "
            "JOIN artifacts a ON a.id = v.artifact_id "
            "JOIN projects p ON p.id = a.project_id "
            "WHERE l.name = ?"
        )
        params: list[Any] = [LATEST]
        if project is not None:
            sql += " AND p.name = ?"
            params.append(project)
        if type_ is not None:
            sql += " AND a.type = ?"
            params.append(type_)
        rows = self.rows(sql, params)
        if rows is None:
            return None
        found = [version_data(row) for row in rows]
        return None if None in found else found  # type: ignore[return-value]

    def version(self, version_id: int) -> VersionData | None:
        """One version, as `versions.load_versions` reads it."""
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM versions v "
            "JOIN artifacts a ON a.id = v.artifact_id "
            "JOIN projects p ON p.id = a.project_id "
            "WHERE v.id = ?"
        )
        rows = self.rows(sql, (version_id,))
        return version_data(rows[0]) if rows and len(rows) == 1 else None

    def aliases(self, version_id: int) -> list[str] | None:
        """A version's aliases, ``latest`` first (as `aliases.aliases_for` orders them)."""
        rows = self.rows("SELECT name FROM aliases WHERE version_id = ?", (version_id,))
        if rows is None:
            return None
        return sorted((str(r[0]) for r in rows), key=latest_first)

    def tags(self, version_id: int) -> list[str] | None:
        """A version's tags, by name (as `lifecycle.tags_for` orders them)."""
        rows = self.rows("SELECT name FROM tags WHERE version_id = ?", (version_id,))
        return None if rows is None else sorted(str(r[0]) for r in rows)


def version_data(row: Sequence[Any]) -> VersionData | None:
    """A row of `_VERSION_COLUMNS` as a `VersionData`; None when it is not what forebear
    writes."""
    values = list(row)
    for i in _TIMES:
        if values[i] is not None:
            if not isinstance(values[i], int):
                return None
            values[i] = EPOCH + dt.timedelta(microseconds=values[i])
    data = VersionData(*values)
    return data if is_name(data.project) and is_name(data.name) else None


def read_only(path: str) -> str | None:
    """Why the SQLite catalog file at ``path`` can only be read ("read-only filesystem",
    "no write permission"), or None when it can be written."""
    folder = os.path.dirname(path)
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only filesystem"
    except OSError:
        return None
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        return "no write permission"
    return None


def stored_moment(value: dt.datetime) -> int:
    """A time as the catalog keeps it on SQLite: integer microseconds since `EPOCH` (a
    naive time is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return (value - EPOCH) // dt.timedelta(microseconds=1)


def latest_first(alias: str) -> tuple[bool, str]:
    """The order a version's aliases are shown in: ``latest``, then the others by name."""
    return (alias != LATEST, alias)


def file_uri(path: str, mode: str) -> str:
    """A ``file:`` URI opening ``path`` in ``mode`` (``ro``, ``rw``: never creating it),
    with ``?``, ``#`` and ``%`` in folder names escaped, and a name that is not UTF-8
    given byte for byte."""
    return f"file:{quote(os.fsencode(path), safe='/')}?mode={mode}"
