"""Digests of local files remembered by their identity and change times, so unchanged
files are never read again.

A file's digest is reused only when its device, inode, size, mtime and ctime (both in
nanoseconds) are all exactly as they were when it was hashed. ctime cannot be set by a
user, so even a file whose mtime was put back (``touch -d``) is hashed again.

Racy files: a file changed twice within one timestamp tick can keep identical times. Like
git's "racily clean" index entries, a digest recorded less than `RACY_SECONDS` after the
file's last change is not trusted: the next log hashes that file again, and then caches it.

It also remembers which chunk lists were seen to make their file (`StatCache.makes_whole`),
so that a later read of the same chunked file checks each chunk but does not hash the
whole file again.

The cache is an optimisation, never a source of truth: any failure to read or write it
(a locked, read-only or damaged file) is ignored and the files are simply hashed.

Rows are sealed: each carries a keyed hash (BLAKE2b) of all its fields, under a key only
this OS user can read (``stat-cache.key``, mode 0600, in the user's cache folder). A row
that anyone else wrote or edited (to make a file pass for other bytes) does not match and
is ignored: the file is hashed again, so the cache can never change what is stored or what
a download keeps.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import queue
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import settings as config
from .hashing import identity
from .processes import PerProcess

# Longer than the coarsest timestamp granularity of common local filesystems (FAT: 2 s).
RACY_SECONDS = 2.0
STAT_CACHE = "stat-cache.db"  # its file, in a store's (or a server's) cache folder
KEY_FILE = "stat-cache.key"  # the sealing key's file, in the user's cache folder

# well under SQLite's limit of bound parameters (999 before 3.32, 32766 since)
_LOOKUP_BATCH = 5000 if sqlite3.sqlite_version_info >= (3, 32) else 900


class FileStat(NamedTuple):
    """What must be unchanged for a remembered digest to still describe the file."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileStat:
        return cls(*identity(info))


_TABLE = "sealed_files"
_TREES = "sealed_trees_2"
_OLD_TREES = "sealed_trees"  # records without a whole mark: read, never written
_WHOLE = "whole_chunk_lists"  # chunk lists seen to make their file, by `ChunkList.key`
_ROOTS = "tree_roots"  # roots key -> the paths key last recorded for it (a hint: unsealed)
# Records go in as one JSON array a call, not a row at a time: a log records its files from
# a thread beside the one stating the next batch, and each row's insert gave the GIL up and
# waited to get it back (see `forebear.db.bulk.insert_values`).
_REMEMBER_FROM_JSON = (
    f"INSERT OR REPLACE INTO {_TABLE} SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(8))
    + " FROM json_each(?)"
)


class TreeRecord(NamedTuple):
    """An artifact's files as a version was logged from them (see `forebear.treekey`):
    their stats key, the manifest digest they made, their newest change and when they
    were stated; ``whole_at``: the store and the state of its objects in which the
    version was known to hold every object it needs ("": not known)."""

    stats_key: str
    digest: str
    changed_ns: int
    taken_ns: int
    whole_at: str = ""


@functools.cache
def _joined(count: int) -> str:
    """A format joining ``count`` values by colons, as ``":".join(map(str, values))``."""
    return ":".join(["%s"] * count)


def _load_key(path: Path) -> bytes:
    """The sealing key, created on first use (atomically: concurrent creators agree)."""
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes()
        if len(key) == 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, os.urandom(32))
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # loses to a concurrent creator: then use theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    key = path.read_bytes()
    if len(key) != 32:
        raise OSError(f"{str(path)!r} is not a stat-cache key")
    return key


class StatCache:
    """A small SQLite table beside the store (in its cache folder), shared by every store
    on this machine: a digest depends only on the bytes, never on the store. ``key_path``
    is the sealing key's file (see the module docstring)."""

    def __init__(self, path: Path, key_path: Path) -> None:
        self.path = path
        self.key_path = key_path
        self._keyed: Any = None  # a BLAKE2b hasher given the key, copied for each seal
        # One connection for the cache's life, its threads taking turns: opening one for
        # each use cost 1.8 ms (closing the last connection checkpoints the WAL and syncs),
        # twice for every logged version.
        self._turn = PerProcess(threading.Lock, threading.Lock())  # a child's lock its own
        self._connection: sqlite3.Connection | None = None
        self._opened: tuple[int, tuple[int, ...]] = (0, ())  # see `_connect`

    @classmethod
    def in_folder(cls, folder: Path) -> StatCache:
        """The stat cache kept in a cache folder, sealed with this OS user's key."""
        return cls(folder / STAT_CACHE, config.user_cache_dir() / KEY_FILE)

    def _seal(self, values: tuple[int | str, ...]) -> str:
        """The keyed hash of ``values`` joined by colons. A copy of a hasher keyed once and
        one %-format, not a hasher keyed for each row: 1.5 against 2.3 µs a row here, paid
        for every file a log hashes or finds here."""
        if self._keyed is None:
            self._keyed = hashlib.blake2b(key=_load_key(self.key_path), digest_size=16)
        hasher = self._keyed.copy()
        hasher.update((_joined(len(values)) % tuple(values)).encode())
        return str(hasher.hexdigest())

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """The cache's connection, to this thread alone while the block runs; opened on
        first use, and again in a forked process (which must not share its parent's) or
        for a file removed, replaced or written over since (this connection writes to
        the WAL, and to the file only at a checkpoint). A failure part way is rolled
        back, so that no transaction is left open for the next use."""
        with self._turn.get():
            connection = self._connection
            if connection is None or self._opened != (os.getpid(), _identity(self.path)):
                if connection is not None:
                    _close_in(connection, self._opened[0])
                connection = self._connection = self._open()
                self._opened = (os.getpid(), _identity(self.path))
                weakref.finalize(self, _close_in, connection, os.getpid())
            try:
                yield connection
            finally:
                if connection.in_transaction:  # a failure part way: undo, for the next use
                    try:
                        connection.rollback()
                    except sqlite3.Error:
                        self._connection = None
                        _close_in(connection, os.getpid())

    def close(self) -> None:
        """Close this process's connection to the cache (the next use opens another)."""
        with self._turn.get():
            connection, self._connection = self._connection, None
            if connection is not None:
                _close_in(connection, self._opened[0])

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (device INTEGER, inode INTEGER,"
                " size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, recorded_ns INTEGER,"
                " digest TEXT, seal TEXT, PRIMARY KEY (device, inode)) WITHOUT ROWID"
            )
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {_TREES} (paths_key TEXT PRIMARY KEY,"
                " stats_key TEXT, digest TEXT, changed_ns INTEGER, taken_ns INTEGER,"
                " whole_at TEXT, seal TEXT) WITHOUT ROWID"
            )
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {_ROOTS} (roots_key TEXT PRIMARY KEY,"
                " paths_key TEXT) WITHOUT ROWID"
            )
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {_WHOLE} (list_key TEXT PRIMARY KEY,"
                " seal TEXT) WITHOUT ROWID"
            )
        except BaseException:
            connection.close()
            raise
        return connection

    def lookup(self, stats: Sequence[FileStat]) -> list[str | None]:
        """The remembered digest of each file, or None where it must be hashed."""
        found: list[str | None] = [None] * len(stats)
        if not stats or not self.path.exists():
            return found
        by_device: dict[int, dict[int, list[int]]] = {}
        for index, stat in enumerate(stats):
            by_device.setdefault(stat.device, {}).setdefault(stat.inode, []).append(index)
        racy_ns = int(RACY_SECONDS * 1e9)
        with contextlib.suppress(sqlite3.Error, OSError), self._connect() as connection:
            for device, wanted in by_device.items():
                inodes = list(wanted)
                for start in range(0, len(inodes), _LOOKUP_BATCH):
                    batch = inodes[start : start + _LOOKUP_BATCH]
                    rows = connection.execute(
                        "SELECT inode, size, mtime_ns, ctime_ns, recorded_ns, digest, seal"
                        f" FROM {_TABLE}"
                        f" WHERE device = ? AND inode IN ({','.join('?' * len(batch))})",
                        [device, *batch],
                    )
                    for inode, size, mtime, ctime, recorded, digest, seal in rows:
                        if recorded - max(mtime, ctime) < racy_ns:
                            continue  # recorded too soon after a change to be sure
                        expected = (device, inode, size, mtime, ctime, recorded, digest)
                        if not isinstance(seal, str) or not hmac.compare_digest(
                            seal, self._seal(expected)
                        ):
                            continue  # not written by this user's forebear: hash again
                        for index in wanted[inode]:
                            stat = stats[index]
                            if (stat.size, stat.mtime_ns, stat.ctime_ns) == (size, mtime, ctime):
                                found[index] = digest
        return found

    def remember(self, hashed: Iterable[tuple[FileStat, str, int]]) -> None:
        """Record digests of files just hashed, each with when its hashing began
        (``time.time_ns()``), which is what makes a recent change detectable as racy."""
        with contextlib.suppress(sqlite3.Error, OSError):
            rows = []
            for s, digest, began_ns in hashed:
                values = (s.device, s.inode, s.size, s.mtime_ns, s.ctime_ns, began_ns, digest)
                rows.append((*values, self._seal(values)))
            if not rows:
                return
            with self._connect() as connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(_REMEMBER_FROM_JSON, (json.dumps(rows),))
                connection.execute("COMMIT")

    def remembered_tree(self, paths_key: str) -> TreeRecord | None:
        """What the files with this paths key were when last logged, if it can be trusted:
        sealed by this user, and stated long enough after their last change."""
        if not self.path.exists():
            return None
        row = None
        with contextlib.suppress(sqlite3.Error, OSError), self._connect() as connection:
            row = connection.execute(
                f"SELECT stats_key, digest, changed_ns, taken_ns, whole_at, seal FROM {_TREES}"
                " WHERE paths_key = ?",
                (paths_key,),
            ).fetchone()
            if row is None:  # a record of the table before whole marks: sealed without one
                found = connection.execute(
                    f"SELECT stats_key, digest, changed_ns, taken_ns, seal FROM {_OLD_TREES}"
                    " WHERE paths_key = ?",
                    (paths_key,),
                ).fetchone()
                row = (*found[:4], None, found[4]) if found is not None else None
        if row is None:
            return None
        record, seal = TreeRecord(row[0], row[1], row[2], row[3], row[4] or ""), row[5]
        types = (str, str, int, int, str)
        if not all(isinstance(v, t) for v, t in zip(record, types, strict=True)):
            return None  # not a row this code wrote
        if not _trusted_tree(record):
            return None
        sealed = (
            ("tree", paths_key, *record) if row[4] is not None else ("tree", paths_key, *row[:4])
        )
        with contextlib.suppress(OSError):
            if isinstance(seal, str) and hmac.compare_digest(seal, self._seal(sealed)):
                return record
        return None

    def paths_key_at(self, roots_key: str) -> str | None:
        """The paths key last recorded for files from these roots (see `forebear.treekey`),
        if any: only where to look, since the record it names is checked in full."""
        row = self._one_row(f"SELECT paths_key FROM {_ROOTS} WHERE roots_key = ?", roots_key)
        return row[0] if row is not None and isinstance(row[0], str) else None

    def _one_row(self, query: str, key: str) -> tuple[Any, ...] | None:
        """The row ``query`` finds for ``key``: None when there is none, or the cache
        cannot be read."""
        if not self.path.exists():
            return None
        with contextlib.suppress(sqlite3.Error, OSError), self._connect() as connection:
            row: tuple[Any, ...] | None = connection.execute(query, (key,)).fetchone()
            return row
        return None

    def remember_tree(
        self, paths_key: str, record: TreeRecord, roots_key: str | None = None
    ) -> None:
        """Record what an artifact's files made, and under ``roots_key`` where they came
        from (a racy record is not kept)."""
        if not _trusted_tree(record):
            return
        with contextlib.suppress(sqlite3.Error, OSError):
            seal = self._seal(("tree", paths_key, *record))
            with self._connect() as connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    f"INSERT OR REPLACE INTO {_TREES} VALUES (?,?,?,?,?,?,?)",
                    (paths_key, *record, seal),
                )
                if roots_key is not None:
                    connection.execute(
                        f"INSERT OR REPLACE INTO {_ROOTS} VALUES (?,?)", (roots_key, paths_key)
                    )
                connection.execute("COMMIT")

    def makes_whole(self, list_key: str) -> bool:
        """Whether the chunk list with this key (`ChunkList.key`: the file's digest and
        every chunk's digest and size) was seen, on this machine, to make its file: its
        chunks, read end to end, hashed to the file's digest."""
        row = self._one_row(f"SELECT seal FROM {_WHOLE} WHERE list_key = ?", list_key)
        if row is None or not isinstance(row[0], str):
            return False
        with contextlib.suppress(OSError):  # the sealing key cannot be read
            return hmac.compare_digest(row[0], self._seal(("whole", list_key)))
        return False

    def remember_whole(self, list_key: str) -> None:
        """Record that the chunk list with this key makes its file."""
        with contextlib.suppress(sqlite3.Error, OSError):
            seal = self._seal(("whole", list_key))
            with self._connect() as connection:
                connection.execute(
                    f"INSERT OR REPLACE INTO {_WHOLE} VALUES (?,?)", (list_key, seal)
                )


def _identity(path: Path) -> tuple[int, ...]:
    """The cache file's inode, size and change time; empty when there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return info.st_ino, info.st_size, info.st_mtime_ns


def _close_in(connection: sqlite3.Connection, pid: int) -> None:
    """Close ``connection`` if this is the process that opened it: a forked child closing
    its parent's copy would checkpoint the WAL under the parent (locks are not inherited)."""
    if os.getpid() == pid:
        with contextlib.suppress(sqlite3.Error):
            connection.close()


def _trusted_tree(record: TreeRecord) -> bool:
    return record.taken_ns - record.changed_ns >= int(RACY_SECONDS * 1e9)


class RememberBehind:
    """`StatCache.remember` on a thread of its own, as many rows in one transaction as
    have come in meanwhile: a hashing worker hands its batches over and reads on. Recorded
    in line, waiting for the cache's write lock (the other workers take it too) and for
    SQLite's inserts took a fifth of a worker's time; the thread's one statement a
    transaction holds no GIL while SQLite works. `close` waits for every row."""

    def __init__(self, cache: StatCache) -> None:
        self.cache = cache
        self._waiting: queue.SimpleQueue[list[tuple[FileStat, str, int]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def add(self, rows: list[tuple[FileStat, str, int]]) -> None:
        if not rows:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="forebear-remember")
            self._thread.start()
        self._waiting.put(rows)

    def _run(self) -> None:
        ending = False
        while not ending:
            rows: list[tuple[FileStat, str, int]] = []
            while not ending and (rows == [] or not self._waiting.empty()):
                more = self._waiting.get()  # waits only while it has nothing to write
                if more is None:
                    ending = True
                else:
                    rows += more
            self.cache.remember(rows)

    def close(self) -> None:
        if self._thread is not None:
            self._waiting.put(None)
            self._thread.join()
            self._thread = None
