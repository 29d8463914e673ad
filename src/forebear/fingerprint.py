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
from .hashing import Progress
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


def fingerprint(
    paths: Sequence[str],
    stats: Sequence[FileStat],
    cache: StatCache | None,
    progress: Progress | None = None,
    pool: HashPool | None = None,
) -> list[Fingerprint]:
    """The digest of each file (whose `stat_file` is given), reading only the files the
    stat cache cannot vouch for; a file that cannot be read, or changed while it was
    hashed, raises. ``pool``: hashing workers kept across calls."""
    found = _fingerprint(paths, stats, cache, progress, pool, tolerant=False)
    return [f for f in found if f is not None]


def fingerprint_if_readable(
    paths: Sequence[str], stats: Sequence[FileStat], cache: StatCache | None
) -> list[Fingerprint | None]:
    """`fingerprint`, with None for a file that cannot be read or changed meanwhile (for
    files whose digest is only compared, never recorded)."""
    return _fingerprint(paths, stats, cache, None, None, tolerant=True)


def _fingerprint(
    paths: Sequence[str],
    stats: Sequence[FileStat],
    cache: StatCache | None,
    progress: Progress | None,
    pool: HashPool | None,
    *,
    tolerant: bool,
) -> list[Fingerprint | None]:
    known = cache.lookup(stats) if cache is not None else [None] * len(paths)
    todo = [i for i, digest in enumerate(known) if digest is None]
    if progress is not None:
        progress(sum(stats[i].size for i, d in enumerate(known) if d is not None))
    began_ns = time.time_ns()
    names = [paths[i] for i in todo]
    hashed = hash_files(names, [stats[i].size for i in todo], progress, pool)
    fresh: dict[int, Fingerprint | None] = {}
    for index, result in zip(todo, hashed, strict=True):
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
    if cache is not None:
        cache.remember((f.stat, f.digest, began_ns) for f in fresh.values() if f is not None)
    return [
        fresh[i] if digest is None else Fingerprint(digest, stats[i].size, stats[i])
        for i, digest in enumerate(known)
    ]
