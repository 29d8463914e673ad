"""Rows kept unique and in key order: in memory while they are few, in a private temporary
SQLite database once they are many, so an artifact of millions of files never holds them
all in Python objects.

Up to `SPILL_ROWS` a dict is much faster (an SQLite insert costs about 3 µs a row here,
a dict insert 0.1 µs); above it, memory stays flat: SQLite keeps a few MiB of pages and
writes the rest to a temporary file that is deleted when the spool is closed.

Rows that arrive already in key order (a folder's files, walked in path order; a log's
rows, made in the artifact's order) need no index at all: while every row added sorts
after the last one, a spilled spool only appends them to an unnamed temporary file
(`marshal`, one record a batch; about 0.3 µs a row written and read back, against 5 µs
through SQLite). The first row out of order, or the first lookup or removal, moves them
into the SQLite database, which then serves as above.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .manifest import pages

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
        self._run: _SortedRun | None = None  # spilled rows still in key order
        self._last: str | None = None  # the greatest key, while every row came in order
        self._ordered = True
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        self._index()
        if self._db is None:
            return key in self._rows
        with self._lock:
            return self._db.execute("SELECT 1 FROM r WHERE k = ?", (key,)).fetchone() is not None

    @property
    def spilled(self) -> bool:
        return self._db is not None or self._run is not None

    def add(self, rows: Iterable[Row]) -> None:
        """Add rows; a key already present raises `DuplicateKey` and adds none of them."""
        batch = list(rows)
        ordered = self._ordered and _in_order(batch, self._last)
        if self._run is not None and not ordered:
            self._index()
        if not ordered:
            self._ordered, self._last = False, None
        elif batch:  # rising keys, all new: nothing below can refuse them
            self._last = batch[-1][0]
        if self._db is None and self._run is None:
            if not ordered:  # (rising keys after the last one cannot be here already)
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
        if self._run is not None:
            with self._lock:
                self._run.append(batch)
            self._count += len(batch)
            return
        self._insert(batch)

    def _spill(self) -> None:
        if self._ordered:  # the dict holds its rows in key order: append them as they are
            self._run = _SortedRun()
            self._run.append(list(self._rows.values()))
            self._rows = {}
            return
        self._open_db([self._rows[k] for k in sorted(self._rows)])
        self._rows = {}

    def _index(self) -> None:
        """Move a sorted run's rows into the SQLite database (for a lookup, a removal or
        a row out of order)."""
        if self._run is None:
            return
        run, self._run = self._run, None
        self._ordered = False
        self._last = None
        try:
            self._open_db([])
            for rows in run.pages():
                self._insert(rows)
        finally:
            run.close()

    def _open_db(self, rows: list[Row]) -> None:
        # "" names a private on-disk database that SQLite deletes when it is closed
        db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA cache_size = -8192")  # KiB: the memory SQLite may keep
        columns = "".join(f", c{i}" for i in range(1, self.width))
        db.execute(f"CREATE TABLE r (k TEXT PRIMARY KEY{columns}) WITHOUT ROWID")
        self._db = db
        self._count = 0
        if rows:
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
        self._index()
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
        if self._run is not None:
            yield from pages(self._run, size)
            return
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
        if self._run is not None:
            for rows in self._run.pages():
                yield from rows
            return
        if self._db is None:
            for key in sorted(self._rows):
                yield self._rows[key]
            return
        yield from self._db.execute("SELECT * FROM r ORDER BY k")

    def close(self) -> None:
        self._rows = {}
        if self._run is not None:
            self._run.close()
            self._run = None
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
        run = getattr(self, "_run", None)
        if run is not None:
            run.close()


def _in_order(batch: Sequence[Row], last: str | None) -> bool:
    """Whether ``batch``'s keys rise strictly, all after ``last``."""
    previous = last
    for row in batch:
        key = row[0]
        if previous is not None and not key > previous:
            return False
        previous = key
    return True


class _SortedRun:
    """Rows in key order in an unnamed temporary file, one `marshal` record per batch
    appended (a record is read with ``pread`` at its offset, so iterating needs no file
    position and can go on beside appends)."""

    def __init__(self) -> None:
        import tempfile  # only once rows spill: a small folder's re-log never does

        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._records: list[tuple[int, int]] = []  # (offset, length) of each record
        self._end = 0

    def append(self, rows: list[Row]) -> None:
        if not rows:
            return
        data = marshal.dumps(rows)
        self._file.write(data)
        self._file.flush()
        self._records.append((self._end, len(data)))
        self._end += len(data)

    def pages(self) -> Iterator[list[Row]]:
        fd = self._file.fileno()
        for offset, length in list(self._records):
            yield marshal.loads(os.pread(fd, length, offset))

    def __iter__(self) -> Iterator[Row]:
        for rows in self.pages():
            yield from rows

    def close(self) -> None:
        self._file.close()
