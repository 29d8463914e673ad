"""Everything forebear keeps outside the object location, in one bounded, LRU-evicted
folder (the store's ``cache/`` for a local store, the user's cache folder otherwise):

- ``objects/<2 hex>/<30 hex>``: a read-through cache of remote objects;
- ``artifacts/<project>/<name>/<vN>/``: versions downloaded without a destination;
- ``stat-cache.db``: digests of files already hashed (see `statcache`).

A cached object is never trusted by its name or size: every use re-hashes it while copying
it out, and a copy that no longer matches its digest is thrown away and fetched again.
Downloaded versions are re-verified by every `download()` that returns them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .destination import Target, place_object, save_stream
from .errors import IntegrityError
from .hashing import Progress, hash_bytes
from .objects import TRANSFER_WORKERS, ObjectLocation
from .statcache import STAT_CACHE


@dataclass(frozen=True)
class CacheUsage:
    """How much the cache holds (or, from `prune`, what was removed), and its bound:
    ``files`` and ``bytes`` in all, then by kind."""

    root: Path
    files: int
    bytes: int
    max_bytes: int
    objects: int = 0  # cached remote objects
    object_bytes: int = 0
    downloads: int = 0  # versions downloaded into the cache
    download_bytes: int = 0
    stat_cache_bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.root),
            "files": self.files,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "objects": self.objects,
            "object_bytes": self.object_bytes,
            "downloads": self.downloads,
            "download_bytes": self.download_bytes,
            "stat_cache_bytes": self.stat_cache_bytes,
        }


@dataclass
class _Unit:
    """What eviction removes at once: one cached object, or one downloaded version."""

    path: Path
    files: int
    bytes: int
    used: float  # last use, seconds since the epoch
    is_download: bool


class LocalCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.objects_root = root / "objects"
        self.downloads_root = root / "artifacts"

    def path_of(self, digest: str) -> Path:
        return self.objects_root / digest[:2] / digest[2:]

    def download_folder(self, project: str, name: str, version: str) -> Path:
        """Where `download()` without a destination puts a version."""
        return self.downloads_root / project / name / version

    def forget_objects(self, digests: Iterable[str]) -> int:
        """Remove these objects from the cache (purged bytes); how many were there."""
        removed = 0
        for digest in digests:
            with contextlib.suppress(FileNotFoundError):
                self.path_of(digest).unlink()
                removed += 1
        return removed

    def forget_entries(self, entries: Iterable[tuple[str, str, str, str]]) -> int:
        """Remove these files, ``(project, name, version, entry path)``, from the versions
        downloaded into the cache (purged bytes); how many were there."""
        removed = 0
        for project, name, version, path in entries:
            with contextlib.suppress(FileNotFoundError):
                (self.download_folder(project, name, version) / path).unlink()
                removed += 1
        return removed

    def touch(self, folder: Path) -> None:
        """Mark a downloaded version as just used (eviction takes the least recent)."""
        with contextlib.suppress(OSError):
            os.utime(folder)

    # -- accounting ------------------------------------------------------------------

    def _objects(self) -> Iterator[_Unit]:
        if not self.objects_root.is_dir():
            return
        for prefix in self.objects_root.iterdir():
            if not prefix.is_dir():
                continue
            for item in prefix.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    info = item.stat()
                    yield _Unit(item, 1, info.st_size, info.st_mtime, False)

    def _downloads(self) -> Iterator[_Unit]:
        if not self.downloads_root.is_dir():
            return
        for project in self.downloads_root.iterdir():
            for name in project.iterdir() if project.is_dir() else ():
                for version in name.iterdir() if name.is_dir() else ():
                    with contextlib.suppress(OSError):
                        files, size = _tree_size(version)
                        yield _Unit(version, files, size, version.stat().st_mtime, True)

    def _stat_cache_bytes(self) -> tuple[int, int]:
        files = size = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                size += (self.root / f"{STAT_CACHE}{suffix}").stat().st_size
                files += 1
        return files, size

    def usage(self) -> CacheUsage:
        return self._sum([*self._objects(), *self._downloads()], self._stat_cache_bytes())

    def _sum(self, units: list[_Unit], stat_cache: tuple[int, int]) -> CacheUsage:
        objects = [u for u in units if not u.is_download]
        downloads = [u for u in units if u.is_download]
        return CacheUsage(
            self.root,
            files=sum(u.files for u in units) + stat_cache[0],
            bytes=sum(u.bytes for u in units) + stat_cache[1],
            max_bytes=self.max_bytes,
            objects=len(objects),
            object_bytes=sum(u.bytes for u in objects),
            downloads=len(downloads),
            download_bytes=sum(u.bytes for u in downloads),
            stat_cache_bytes=stat_cache[1],
        )

    def prune(self, max_bytes: int | None = None, *, keep: Path | None = None) -> CacheUsage:
        """Evict the least recently used cached objects and downloaded versions until
        everything fits ``max_bytes`` (default: the bound); never ``keep`` (the version
        just downloaded). Returns what was removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        units = sorted([*self._objects(), *self._downloads()], key=lambda u: u.used)
        total = sum(u.bytes for u in units) + self._stat_cache_bytes()[1]
        removed: list[_Unit] = []
        kept = keep.resolve() if keep is not None else None
        for unit in units:
            if total <= limit:
                break
            if kept is not None and unit.path.resolve() == kept:
                continue
            if unit.is_download:
                shutil.rmtree(unit.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    unit.path.unlink()
            removed.append(unit)
            total -= unit.bytes
        return dataclasses.replace(self._sum(removed, (0, 0)), max_bytes=limit)

    def clear(self) -> CacheUsage:
        """Remove everything: cached objects, downloaded versions and the stat cache."""
        removed = self.prune(0)
        files, size = self._stat_cache_bytes()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                (self.root / f"{STAT_CACHE}{suffix}").unlink()
        return dataclasses.replace(
            removed,
            files=removed.files + files,
            bytes=removed.bytes + size,
            stat_cache_bytes=size,
        )

    # -- objects ---------------------------------------------------------------------

    def fill(self, location: ObjectLocation, wanted: dict[str, str]) -> None:
        """Fetch the objects not cached yet, several at a time, each verified; ``wanted``
        maps each digest to the label errors should name (e.g. ``"ds:v1 data/a.csv"``)."""
        # in the caller's order (a file's chunks: as they are in their packs, end to end)
        missing = [d for d in wanted if not self.path_of(d).is_file()]
        together = set()  # packed neighbours in one request, or a server's batch reads
        for digest, data in location.read_together(missing, wanted):
            save_stream(io.BytesIO(data), self.path_of(digest))
            together.add(digest)
        missing = [d for d in missing if d not in together]

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


def _tree_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    stack = [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    files += 1
                    size += entry.stat(follow_symlinks=False).st_size
    return files, size
