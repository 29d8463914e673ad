"""Two keys that say an artifact's local files are exactly as they were when a version was
logged from them, so an unchanged re-log need not look at any file one by one (the stat
cache, one level up: git's index answers ``git status`` the same way).

- The *paths key* digests every entry's artifact path and local path, in order: which
  files make the artifact. It is cheap (no system call) and finds the record to compare.
- The *stats key* digests each file's device, inode, size, mtime and ctime (nanoseconds),
  in the same order: one ``stat`` per file. With the paths key, equal stats keys mean
  every file would get the digest the stat cache remembers for it, so the manifest is the
  one recorded. The five numbers are digested as 8 bytes each (modulo 2**64, the
  machine's byte order: the keys never leave it), not as text, which halves the work per
  file beside its ``stat``.

A third, the *roots key*, digests only where an artifact's files come from (its folders and
its number of entries), known before any entry is read: it finds the paths key last
recorded for those folders, so that a log of folders never logged before reads no entry
for the keys, and a re-log reads them once (the paths key and the stats key together).

Only an artifact made of local files has keys (a reference or a draft's kept entries are
not described by a file's stat). The newest change among the files (``changed_ns``) is
kept beside the keys: like the stat cache's racy files, a record taken less than
`RACY_SECONDS` after a change is not trusted.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from .artifacts import Artifact, PendingFile
from .hashing import HASH_ALGORITHM, Identity, new_hasher
from .manifest import MANIFEST_VERSION, ManifestEntry
from .stat_worker import StatHelper, extend_wrapped, stat_numbers

# What the recorded manifest digest also depends on: another format makes other keys.
_SEED = f"forebear-tree 2 {HASH_ALGORITHM} manifest {MANIFEST_VERSION}\n".encode()


class TreeKeys(NamedTuple):
    paths_key: str
    stats_key: str
    changed_ns: int  # the newest mtime or ctime among the files
    taken_ns: int  # when the first stat was taken


class KeyBuilder:
    """Both keys, fed one file at a time in the artifact's path order."""

    def __init__(self) -> None:
        self.paths = new_hasher()
        self.stats = new_hasher()
        self.paths.update(_SEED)
        self.stats.update(_SEED)
        self.changed_ns = 0
        self.taken_ns = time.time_ns()
        self._coming: Callable[[], array[int]] | None = None  # see stat_files

    def add_paths(self, items: Iterable[PendingFile]) -> None:
        self.paths.update(_encoded("".join(f"{i.path}\0{i.local_path}\0" for i in items)))

    def add_stats(self, items: Iterable[tuple[PendingFile, Identity]]) -> None:
        """Each file with its `FileStat` (or the same fields as a plain tuple)."""
        numbers = array("q")
        extend = numbers.extend
        for _file, identity in items:
            try:
                extend(identity)
            except OverflowError:  # rare: see extend_wrapped
                extend_wrapped(numbers, identity)
        self._add_numbers(numbers)

    def stat_files(self, items: Sequence[PendingFile], helper: StatHelper | None = None) -> None:
        """`add_stats` with each file stated now (a re-log does it for every file). With
        ``helper``, its process states part of a long list, whose numbers are digested
        at the next call or at `keys`, in order (meanwhile the caller reads on); a file
        that cannot be stated raises `OSError`, here or there."""
        self.finish_stats()
        paths = [local_path for _path, local_path in items]
        if helper is None:
            self._add_numbers(stat_numbers(paths))
        else:
            self._coming = helper.numbers_later(paths)

    def finish_stats(self) -> None:
        """Digest the numbers still coming from a helper (`OSError` as `stat_files`)."""
        coming, self._coming = self._coming, None
        if coming is not None:
            self._add_numbers(coming())

    def _add_numbers(self, numbers: array[int]) -> None:
        """Digest five stat numbers a file, and keep the newest mtime or ctime."""
        self.stats.update(numbers)
        if numbers:
            self.changed_ns = max(self.changed_ns, max(numbers[3::5]), max(numbers[4::5]))

    def keys(self) -> TreeKeys:
        self.finish_stats()
        return TreeKeys(
            self.paths.hexdigest(), self.stats.hexdigest(), self.changed_ns, self.taken_ns
        )


def _encoded(text: str) -> bytes:
    """UTF-8, with a local path's undecodable bytes as they are on disk (a folder above
    the artifact may have a name that is not UTF-8)."""
    return text.encode("utf-8", "surrogateescape")


def roots_key(artifact: Artifact) -> str | None:
    """The artifact's roots key; None for a draft or an artifact with no folder (files
    added one by one: their paths key is then the way to the record)."""
    folders = artifact.folders
    if not folders or artifact.base is not None:
        return None
    hasher = new_hasher()
    hasher.update(_SEED)
    hasher.update(_encoded("".join(f"{folder}\0" for folder in folders) + f"{len(artifact)}\0"))
    return str(hasher.hexdigest())


def paths_key(artifact: Artifact, batch_size: int) -> str | None:
    """The artifact's paths key (no file is touched), its entries read ``batch_size`` at a
    time; None when it has entries other than local files."""
    builder = _walk(artifact, batch_size, stat=False)
    return builder.paths.hexdigest() if builder is not None else None


def tree_keys(artifact: Artifact, batch_size: int) -> TreeKeys | None:
    """Both keys, every file stated now; None when the artifact has entries other than
    local files, or a file cannot be stated (logging it will say why)."""
    builder = _walk(artifact, batch_size, stat=True)
    return builder.keys() if builder is not None else None


def _walk(artifact: Artifact, batch_size: int, *, stat: bool) -> KeyBuilder | None:
    """The artifact's files fed to a new builder (with their stats, if ``stat``)."""
    builder = KeyBuilder()
    with StatHelper() as helper:
        for batch in artifact.batches(batch_size):
            files = _local(batch)
            if files is None:
                return None
            builder.add_paths(files)
            if stat:
                try:
                    builder.stat_files(files, helper)
                except OSError:
                    return None
        try:
            builder.finish_stats()
        except OSError:
            return None
    return builder


def _local(batch: list[PendingFile | ManifestEntry]) -> list[PendingFile] | None:
    files = [item for item in batch if isinstance(item, PendingFile)]
    return files if len(files) == len(batch) else None
