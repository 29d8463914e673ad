"""A local read-through cache of remote objects: content-addressed, bounded, LRU-evicted.

A cached copy is never trusted by its name or size: every use re-hashes it while copying it
out, and a copy that no longer matches its digest is thrown away and fetched again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .destination import Target, place_object
from .errors import IntegrityError
from .hashing import Progress, hash_bytes
from .objects import TRANSFER_WORKERS, ObjectLocation


@dataclass(frozen=True)
class CacheUsage:
    """How much the cache holds, and its bound."""

    root: Path
    files: int
    bytes: int
    max_bytes: int


class ObjectCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def _entries(self) -> Iterator[tuple[Path, os.stat_result]]:
        if not self.root.is_dir():
            return
        for prefix in self.root.iterdir():
            if not prefix.is_dir():
                continue
            for item in prefix.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    yield item, item.stat()

    def usage(self) -> CacheUsage:
        files = total = 0
        for _, info in self._entries():
            files += 1
            total += info.st_size
        return CacheUsage(self.root, files, total, self.max_bytes)

    def fill(self, location: ObjectLocation, wanted: dict[str, str]) -> None:
        """Fetch the objects not cached yet, several at a time, each verified; ``wanted``
        maps each digest to the label errors should name (e.g. ``"ds:v1 data/a.csv"``)."""
        missing = sorted(d for d in wanted if not self.path_of(d).is_file())

        def fetch(digest: str) -> None:
            self._fetch(location, digest, wanted[digest])

        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            for _ in pool.map(fetch, missing):
                pass

    def read(self, location: ObjectLocation, digest: str, label: str) -> bytes:
        """One (small) object's bytes through the cache, verified: a cached copy that fails
        the check is fetched again."""
        cached = self.path_of(digest)
        for _attempt in (1, 2):
            if not cached.is_file():
                self._fetch(location, digest, label)
            data = cached.read_bytes()
            if hash_bytes(data) == digest:
                os.utime(cached)  # most recently used
                return data
            cached.unlink(missing_ok=True)
        raise IntegrityError(f"{label}: the downloaded copy of object {digest} is corrupted")

    def _fetch(self, location: ObjectLocation, digest: str, label: str | None) -> None:
        """Download one object into the cache, atomically, checked on the way."""
        location.get_file(digest, self.path_of(digest), label=label)

    def copy_out(
        self,
        location: ObjectLocation,
        digest: str,
        target: Target,
        progress: Progress | None = None,
        label: str | None = None,
        link: str = "copy",
    ) -> None:
        """Place an object from the cache at ``target`` (see `links.LINK_TYPES`), verified;
        a cached copy that fails the check is replaced by a fresh download first."""
        cached = self.path_of(digest)
        for attempt in (1, 2):
            if not cached.is_file():
                self._fetch(location, digest, label)
            try:
                place_object(target, str(cached), digest, link, progress, label)
            except IntegrityError:
                cached.unlink(missing_ok=True)
                if attempt == 2:
                    raise
                continue
            os.utime(cached)  # most recently used
            return

    def prune(self, max_bytes: int | None = None) -> CacheUsage:
        """Evict least recently used objects until the cache fits; return what was removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries = sorted(self._entries(), key=lambda item: item[1].st_mtime)
        total = sum(info.st_size for _, info in entries)
        removed = freed = 0
        for path, info in entries:
            if total <= limit:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
                freed += info.st_size
                total -= info.st_size
        return CacheUsage(self.root, removed, freed, limit)

    def clear(self) -> CacheUsage:
        return self.prune(0)
