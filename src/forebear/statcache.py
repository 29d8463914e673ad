"""Digests of local files remembered by their identity and change times, so unchanged
files are never read again.

A file's digest is reused only when its device, inode, size, mtime and ctime (both in
nanoseconds) are all exactly as they were when it was hashed. ctime cannot be set by a
user, so even a file whose mtime was put back (``touch -d``) is hashed again.

Racy files: a file changed twice within one timestamp tick can keep identical times. Like
git's "racily clean" index entries, a digest recorded less than `RACY_SECONDS` after the
file's last change is not trusted: the next log hashes that file again, and then caches it.

The cache is an optimisation, never a source of truth: any failure to read or write it
(a locked, read-only or damaged file) is ignored and the files are simply hashed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

# Longer than the coarsest timestamp granularity of common local filesystems (FAT: 2 s).
RACY_SECONDS = 2.0
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
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class StatCache:
    """A small SQLite table beside the store (in its cache folder), shared by every store
    on this machine: a digest depends only on the bytes, never on the store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS files (device INTEGER, inode INTEGER, size INTEGER,"
                " mtime_ns INTEGER, ctime_ns INTEGER, recorded_ns INTEGER, digest TEXT,"
                " PRIMARY KEY (device, inode)) WITHOUT ROWID"
            )
            yield connection
        finally:
            connection.close()

    def lookup(self, stats: Sequence[FileStat]) -> list[str | None]:
        """The remembered digest of each file, or None where it must be hashed."""
        found: list[str | None] = [None] * len(stats)
        if not stats or not self.path.exists():
            return found
        by_device: dict[int, dict[int, list[int]]] = {}
        for index, stat in enumerate(stats):
            by_device.setdefault(stat.device, {}).setdefault(stat.inode, []).append(index)
        racy_ns = int(RACY_SECONDS * 1e9)
        with contextlib.suppress(sqlite3.Error), self._connect() as connection:
            for device, wanted in by_device.items():
                inodes = list(wanted)
                for start in range(0, len(inodes), _LOOKUP_BATCH):
                    batch = inodes[start : start + _LOOKUP_BATCH]
                    rows = connection.execute(
                        "SELECT inode, size, mtime_ns, ctime_ns, recorded_ns, digest FROM files"
                        f" WHERE device = ? AND inode IN ({','.join('?' * len(batch))})",
                        [device, *batch],
                    )
                    for inode, size, mtime, ctime, recorded, digest in rows:
                        if recorded - max(mtime, ctime) < racy_ns:
                            continue  # recorded too soon after a change to be sure
                        for index in wanted[inode]:
                            stat = stats[index]
                            if (stat.size, stat.mtime_ns, stat.ctime_ns) == (size, mtime, ctime):
                                found[index] = digest
        return found

    def remember(self, hashed: Iterable[tuple[FileStat, str, int]]) -> None:
        """Record digests of files just hashed, each with when its hashing began
        (``time.time_ns()``), which is what makes a recent change detectable as racy."""
        rows = [
            (s.device, s.inode, s.size, s.mtime_ns, s.ctime_ns, began_ns, digest)
            for s, digest, began_ns in hashed
        ]
        if not rows:
            return
        with contextlib.suppress(sqlite3.Error, OSError), self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", rows)
            connection.execute("COMMIT")
