"""Rows kept unique and in key order: in memory while they are few, in a private temporary
SQLite database once they are many, so an artifact of millions of files never holds them
all in Python objects.

Up to `SPILL_ROWS` a dict is much faster (an SQLite insert costs about 3 µs a row here,
a dict insert 0.1 µs); above it, memory stays flat: SQLite keeps a few MiB of pages and
writes the rest to a temporary file that is deleted when the spool is closed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# Rows held in memory before moving to disk. A log holds two spools of about 0.4 KB a row
# each: 64,000 entries keep its peak near 140 MB (measured), under the 150 MB it aims for.
SPILL_ROWS = 64_000

Row = tuple[Any, ...]


class DuplicateKey(KeyError):
    """A row's key (its first value) is already in the spool."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Spool:
    """Rows whose first value is a unique text key; iterated in key order (by code
    point, which SQLite's byte order of UTF-8 text matches)."""

    def __init__(self, width: int, spill_rows: int | None = None) -> None:
        self.width = width
        self.spill_rows = SPILL_ROWS if spill_rows is None else spill_rows
        self._rows: dict[str, Row] = {}
        self._db: sqlite3.Connection | None = None
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        if self._db is None:
            return key in self._rows
        with self._lock:
            return self._db.execute("SELECT 1 FROM r WHERE k = ?", (key,)).fetchone() is not None

    @property
    def spilled(self) -> bool:
        return self._db is not None

    def add(self, rows: Iterable[Row]) -> None:
        """Add rows; a key already present raises `DuplicateKey` and adds none of them."""
        batch = list(rows)
        if self._db is None:
            seen: set[str] = set()
            for row in batch:
                key = row[0]
                if key in self._rows or key in seen:
                    raise DuplicateKey(key)
                seen.add(key)
            if self._count + len(batch) <= self.spill_rows:
                self._rows.update((row[0], row) for row in batch)
                self._count += len(batch)
                return
            self._spill()
        self._insert(batch)

    def _spill(self) -> None:
        # "" names a private on-disk database that SQLite deletes when it is closed
        db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA cache_size = -8192")  # KiB: the memory SQLite may keep
        columns = "".join(f", c{i}" for i in range(1, self.width))
        db.execute(f"CREATE TABLE r (k TEXT PRIMARY KEY{columns}) WITHOUT ROWID")
        self._db = db
        rows = [self._rows[k] for k in sorted(self._rows)]
        self._rows = {}
        self._count = 0
        self._insert(rows)

    def _insert(self, rows: Sequence[Row]) -> None:
        assert self._db is not None
        marks = ",".join("?" * self.width)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(f"INSERT INTO r VALUES ({marks})", rows)
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise DuplicateKey(self._first_duplicate(rows)) from None
            self._db.execute("COMMIT")
        self._count += len(rows)

    def _first_duplicate(self, rows: Sequence[Row]) -> str:
        assert self._db is not None
        seen: set[str] = set()
        for row in rows:
            key = row[0]
            if key in seen or self._db.execute("SELECT 1 FROM r WHERE k = ?", (key,)).fetchone():
                return str(key)
            seen.add(key)
        raise AssertionError("an IntegrityError without a duplicate key")

    def remove(self, key: str, *, prefix: bool = False) -> int:
        """Drop the row with this key (or, with ``prefix``, every row whose key starts with
        it); how many went."""
        if self._db is None:
            gone = [k for k in self._rows if k.startswith(key)] if prefix else [key]
            removed = sum(1 for k in gone if self._rows.pop(k, None) is not None)
        else:
            with self._lock:
                if prefix:
                    cursor = self._db.execute(
                        "DELETE FROM r WHERE substr(k, 1, ?) = ?", (len(key), key)
                    )
                else:
                    cursor = self._db.execute("DELETE FROM r WHERE k = ?", (key,))
                removed = cursor.rowcount
        self._count -= removed
        return removed

    def batches(self, size: int) -> Iterator[list[Row]]:
        """Every row in key order, ``size`` at a time."""
        if self._db is None:
            keys = sorted(self._rows)
            for start in range(0, len(keys), size):
                yield [self._rows[k] for k in keys[start : start + size]]
            return
        last: str | None = None
        while True:
            with self._lock:
                if last is None:
                    page = self._db.execute("SELECT * FROM r ORDER BY k LIMIT ?", (size,))
                else:
                    page = self._db.execute(
                        "SELECT * FROM r WHERE k > ? ORDER BY k LIMIT ?", (last, size)
                    )
                rows = page.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def __iter__(self) -> Iterator[Row]:
        """Every row in key order, one at a time (on disk, straight from a cursor)."""
        if self._db is None:
            for key in sorted(self._rows):
                yield self._rows[key]
            return
        yield from self._db.execute("SELECT * FROM r ORDER BY k")

    def close(self) -> None:
        self._rows = {}
        if self._db is not None:
            self._db.close()
            self._db = None
        self._count = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
