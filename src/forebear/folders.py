"""A local folder against a version: which files differ (`compare`), and making the folder
hold exactly the version (`remove_extras`, then a download: `checkout`).

Walks never follow symbolic links: a link in the folder is a file of its own (an extra one,
removed by a checkout as a link, never through it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidPath, Problem
from .fingerprint import fingerprint_if_readable
from .manifest import ManifestEntry
from .statcache import FileStat

if TYPE_CHECKING:
    from .statcache import StatCache

BATCH = 2000  # files hashed at once


def local_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every file (or link, or other non-folder) under ``root``: its entry-style path
    (``a/b.csv``) and its lstat."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in [*files, *[d for d in dirs if os.path.islink(base / d)]]:
            path = base / name
            yield path.relative_to(root).as_posix(), path.lstat()


def compare(
    entries: Iterable[ManifestEntry],
    root: Path,
    label: str,
    cache: StatCache | None,
    skip: frozenset[str] = frozenset(),
) -> list[Problem]:
    """What differs between a folder and a version's entries: missing files, files with
    other bytes, and files the version does not have. ``skip``: entry paths not compared
    (purged ones)."""
    if not root.is_dir():
        raise InvalidPath(f"{str(root)!r} is not a folder; give the folder to check")
    present = dict(local_files(root))
    problems: list[Problem] = []
    batch: list[tuple[ManifestEntry, str, os.stat_result]] = []

    def check(pending: list[tuple[ManifestEntry, str, os.stat_result]]) -> None:
        found = fingerprint_if_readable(
            [str(root / path) for _, path, _ in pending],
            [FileStat.of(info) for _, _, info in pending],
            cache,
        )
        for (entry, path, _), print_ in zip(pending, found, strict=True):
            if print_ is None or print_.digest != entry.digest:
                problems.append(Problem(label, path, "the local file differs from the version"))

    for entry in entries:
        info = present.pop(entry.path, None)
        if entry.path in skip:
            continue
        if info is None:
            problems.append(Problem(label, entry.path, "missing from the folder"))
        elif not stat.S_ISREG(info.st_mode):
            problems.append(Problem(label, entry.path, "not a regular file in the folder"))
        elif entry.digest is None:  # a reference: its bytes live elsewhere
            continue
        elif info.st_size != entry.size:
            problems.append(
                Problem(
                    label,
                    entry.path,
                    f"{info.st_size} bytes in the folder, {entry.size} in the version",
                )
            )
        else:
            batch.append((entry, entry.path, info))
            if len(batch) >= BATCH:
                check(batch)
                batch = []
    check(batch)
    problems.extend(
        Problem(label, path, "in the folder but not in the version") for path in sorted(present)
    )
    return sorted(problems, key=lambda p: p.path)


def remove_extras(entry_paths: set[str], root: Path) -> list[str]:
    """Delete every file under ``root`` that is not one of ``entry_paths``, and the folders
    left empty that no entry needs; the paths removed."""
    if not root.exists():
        return []
    needed = {parent for path in entry_paths for parent in _parents(path)}
    removed = []
    for path, _info in list(local_files(root)):
        if path not in entry_paths:
            os.unlink(root / path)  # a link goes as a link: its target is not touched
            removed.append(path)
    for folder, _dirs, _files in sorted(os.walk(root), key=lambda walked: -len(walked[0])):
        relative = Path(folder).relative_to(root).as_posix()
        if relative != "." and relative not in needed and not os.listdir(folder):
            os.rmdir(folder)
    return removed


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")[:-1]
    for end in range(1, len(parts) + 1):
        yield "/".join(parts[:end])
