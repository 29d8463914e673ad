"""Digests of the local files being logged: remembered ones from the stat cache, the rest
hashed in place on every core, each checked unchanged by its stat before and after (the
one after taken from the open file by whoever hashed it)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import NamedTuple

from .errors import IntegrityError, InvalidPath
from .hash_workers import HashPool, hash_files
from .hashing import HashResult, Progress
from .statcache import FileStat, StatCache


class Fingerprint(NamedTuple):
    digest: str
    size: int
    stat: FileStat
    staged: tuple[str, int] | None = None  # where a hashing worker staged its bytes


def stat_file(path: str) -> FileStat:
    try:
        return FileStat.of(os.stat(path))
    except FileNotFoundError as exc:
        raise InvalidPath(f"cannot log {path!r}: the file disappeared after it was added") from exc


def check_unchanged(path: str, seen: FileStat) -> None:
    """Refuse a file that changed while it was being logged: its recorded digest could
    describe bytes that no longer exist."""
    try:
        now: FileStat | None = FileStat.of(os.stat(path))
    except OSError:
        now = None
    if now != seen:
        raise _changed(path)


def _changed(path: str) -> IntegrityError:
    return IntegrityError(
        f"{path!r} changed while it was being logged (size, time or identity "
        "differ from when logging began); log it again once nothing is writing to it"
    )


def fingerprint_if_readable(
    paths: Sequence[str], stats: Sequence[FileStat], cache: StatCache | None
) -> list[Fingerprint | None]:
    """The digest of each file (whose `stat_file` is given), reading only the files the
    stat cache cannot vouch for; None for a file that cannot be read or changed while it
    was hashed (for files whose digest is only compared, never recorded). A log goes
    through the same steps, `look_up`, `hash_todo` and `settle`, on threads of its own."""
    lookup = look_up(paths, stats, cache)
    return settle(lookup, hash_todo(lookup), cache, tolerant=True)


class Lookup(NamedTuple):
    """Files the stat cache was asked about: what it knew of each (None: to hash), and
    when that question was asked (the files to hash are hashed later)."""

    paths: Sequence[str]
    stats: Sequence[FileStat]
    known: list[str | None]
    began_ns: int

    def todo(self) -> list[int]:
        """The indices of the files to hash."""
        return [i for i, digest in enumerate(self.known) if digest is None]


def look_up(
    paths: Sequence[str],
    stats: Sequence[FileStat],
    cache: StatCache | None,
    progress: Progress | None = None,
) -> Lookup:
    """What the stat cache remembers of these files (``progress``: told their bytes)."""
    known: list[str | None] = [None] * len(paths)
    if cache is not None:
        known = cache.lookup(stats)
    if progress is not None:
        progress(sum(stats[i].size for i, d in enumerate(known) if d is not None))
    # before any of them is read: a change within RACY_SECONDS of this is not trusted
    return Lookup(paths, stats, known, time.time_ns())


def hash_todo(
    lookup: Lookup, progress: Progress | None = None, pool: HashPool | None = None
) -> list[HashResult]:
    """Hash the files the stat cache did not know, in order."""
    todo = lookup.todo()
    names = [lookup.paths[i] for i in todo]
    return hash_files(names, [lookup.stats[i].size for i in todo], progress, pool)


def settle(
    lookup: Lookup,
    hashed: Sequence[HashResult],
    cache: StatCache | None,
    *,
    tolerant: bool = False,
) -> list[Fingerprint | None]:
    """Each file's fingerprint from what the stat cache knew and what was hashed (see
    `hash_todo`), the new digests remembered; a file that could not be read or changed
    meanwhile raises (``tolerant``: is None)."""
    paths, stats = lookup.paths, lookup.stats
    fresh: dict[int, Fingerprint | None] = {}
    to_remember: list[tuple[FileStat, str, int]] = []  # not remembered by a worker
    for index, result in zip(lookup.todo(), hashed, strict=True):
        try:
            if isinstance(result, str):
                raise InvalidPath(f"cannot read {paths[index]!r}: {result}")
            if result.after != stats[index] or result.size != stats[index].size:
                raise _changed(paths[index])
        except (InvalidPath, IntegrityError):
            if not tolerant:
                raise
            fresh[index] = None
            continue
        fresh[index] = Fingerprint(result.digest, result.size, stats[index], result.staged)
        if not result.remembered:
            to_remember.append((stats[index], result.digest, lookup.began_ns))
    if cache is not None:
        cache.remember(to_remember)
    return [
        fresh[i] if digest is None else Fingerprint(digest, stats[i].size, stats[i])
        for i, digest in enumerate(lookup.known)
    ]
