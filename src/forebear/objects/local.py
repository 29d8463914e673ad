"""`LocalLocation`: objects as read-only files in a local folder.

A write goes to ``tmp/``, every byte of it (a write the disk accepts only in part is
finished or fails), is checked for its length and digest, and is renamed into
``objects/``: one step, so an object is whole or absent. One filesystem sync before a
commit makes them durable. Files are copied with a copy-on-write clone where the
filesystem can (reflink), so a later edit of the source never reaches the object.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import uuid
from collections.abc import Callable, Container, Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, BinaryIO

from ..direct import copy_to_new_file
from ..errors import StoreError
from ..hash_workers import hash_files
from ..hashing import Progress, hash_bytes, hash_stream
from ..links import reflink
from ..processes import PerProcess, thread_pool
from .base import (
    FORMAT_FILE,
    OBJECT_NAME_RE,
    OBJECT_NAMES_RE,
    PREFIX_RE,
    ObjectLocation,
    backend_errors,
    check_unchanged,
    missing,
    write_all,
)
from .copying import zero_rest
from .listing import StoredObject

if TYPE_CHECKING:
    import fsspec

DELETE_WORKERS = 16  # threads unlinking objects at once
_name = attrgetter("name")


_HINTS = PerProcess(  # opens wait on disk
    lambda: thread_pool(4, "forebear-readahead")
)


def _will_need(ranges: list[tuple[str, int, int]]) -> None:
    """``posix_fadvise`` WILLNEED over each (path, offset, length); a length of 0 means the
    whole file."""
    for path, offset, length in ranges:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(descriptor, offset, length, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(descriptor)


# a read that fails rather than wait for the disk (Linux): tells whether objects are cached
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)


def _in_memory(path: str) -> bool:
    """Whether the start of a file is in the page cache (False when it cannot be told)."""
    if not _NOWAIT:
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.preadv(descriptor, [bytearray(1)], 0, _NOWAIT) == 1
    except OSError:  # EAGAIN: on the disk; or a file system that cannot tell
        return False
    finally:
        os.close(descriptor)


class LocalLocation(ObjectLocation):
    is_local = True
    _fs: fsspec.AbstractFileSystem | None

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """fsspec's local filesystem, made on first use (most commands never need it)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    @fs.setter
    def fs(self, fs: fsspec.AbstractFileSystem | None) -> None:
        self._fs = fs

    def _create_once(self, path: str, body: bytes) -> None:
        os.makedirs(self.root, exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        _write_file(tmp, body)
        try:
            os.link(tmp, path)  # fails if another process won the race: fine
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)

    def _rewrite_format(self, version: int, store_id: str | None) -> None:
        path = self._path(FORMAT_FILE)
        with backend_errors(f"cannot update {path!r}"):
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            _write_file(tmp, self._format_body(version, store_id))
            os.replace(tmp, path)

    def will_need(self, digests: Sequence[str]) -> None:
        """Ask the kernel to start reading these objects (``posix_fadvise`` WILLNEED), loose
        or the span of a pack that holds them: the disk reads them while earlier ones are
        checked; a hint, so failures are ignored. Loose objects are announced one open
        each, so not when the first and last of them are found in the page cache already
        (the bytes of a file read lately)."""
        packed = self.packed(digests)
        loose = [self.path_of(d) for d in digests if d not in packed]
        if loose and _in_memory(loose[0]) and _in_memory(loose[-1]):
            loose = []
        wanted = [(path, 0, 0) for path in loose]
        spans: dict[str, tuple[int, int]] = {}  # of each pack, the bytes the objects span
        for slot in packed.values():
            start, end = spans.get(slot.pack, (slot.offset, slot.offset + slot.length))
            spans[slot.pack] = min(start, slot.offset), max(end, slot.offset + slot.length)
        if spans and self.packs is not None:
            path = self.packs.path
            wanted += [(path(pack), start, end - start) for pack, (start, end) in spans.items()]
        if wanted:
            _HINTS.get().submit(_will_need, wanted)

    def _read_loose_into(self, digest: str, view: memoryview, name: Callable[[], str]) -> None:
        try:
            descriptor = os.open(self.path_of(digest), os.O_RDONLY)
            try:  # no file object: a chunk is one open and one read
                filled = 0
                while filled < len(view):
                    with view[filled:] as rest:
                        if not (got := os.preadv(descriptor, [rest], filled)):
                            break
                    filled += got
                zero_rest(view, filled)
            finally:
                os.close(descriptor)
        except FileNotFoundError as exc:
            raise missing(self.url, digest, name()) from exc
        except OSError as exc:  # named only now: naming costs more than reading a chunk
            with backend_errors(f"cannot read {name()}"):
                raise exc

    def _read_whole(self, digest: str, name: str) -> bytes:
        try:
            with open(self.path_of(digest), "rb", buffering=0) as stored:
                return stored.read()  # one read of the size fstat gives
        except FileNotFoundError as exc:
            raise missing(self.url, digest, name) from exc

    def _size_or_none(self, digest: str) -> int | None:
        with backend_errors(f"cannot check object {digest}"):
            try:
                return os.stat(self.path_of(digest)).st_size
            except FileNotFoundError:
                return None

    def _loose_sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """One ``stat`` per object (no listing: a folder of a million files lists slowly),
        none under a prefix folder that does not exist (a packed store has few or none)."""
        found: dict[str, int] = {}
        base = self._path("objects")
        prefixes = set(self._prefixes("objects"))  # at most 256 names
        with backend_errors(f"cannot check objects under {base!r}"):
            for digest in set(digests):
                if digest[:2] not in prefixes:
                    continue
                try:
                    found[digest] = os.stat(f"{base}/{digest[:2]}/{digest[2:]}").st_size
                except FileNotFoundError:
                    continue
        return found

    def _prefixes(self, folder: str) -> list[str]:
        base = self._path(folder)
        with backend_errors(f"cannot list {base!r}"):
            try:
                names = os.listdir(base)
            except FileNotFoundError:
                return []
        return sorted(name for name in names if PREFIX_RE.fullmatch(name))

    def _list_prefix(
        self, prefix: str, folder: str = "objects", skip: Container[str] = frozenset()
    ) -> list[StoredObject]:
        """One ``scandir`` of the prefix folder: the names come with it, checked all at
        once, and only the objects not skipped cost a ``stat``."""
        path = self._path(f"{folder}/{prefix}")
        found = []
        with backend_errors(f"cannot list {path!r}"):
            try:
                with os.scandir(path) as listing:
                    entries = list(listing)
            except FileNotFoundError:
                return []
            if not OBJECT_NAMES_RE.fullmatch("\n".join(map(_name, entries))):  # foreign files
                entries = [entry for entry in entries if OBJECT_NAME_RE.fullmatch(entry.name)]
            for entry in entries:
                digest = prefix + entry.name
                if digest in skip:
                    continue
                try:
                    info = entry.stat()
                except FileNotFoundError:  # removed since it was listed
                    continue
                if not stat.S_ISDIR(info.st_mode):
                    found.append(StoredObject(digest, info.st_size, info.st_mtime))
        return found

    def _remove_many(self, folder: str, digests: Iterable[str]) -> None:
        """Unlinks on `DELETE_WORKERS` threads, a prefix folder each at a time: an unlink
        waits on the filesystem (its journal, a discard) far more than on Python, and
        unlinks in different folders do not wait for one another."""
        by_prefix: dict[str, list[str]] = {}
        for digest in digests:
            by_prefix.setdefault(digest[:2], []).append(digest)
        if not by_prefix:
            return
        base = self._path(folder)
        with (
            backend_errors(f"cannot delete {folder} in {self.url!r}"),
            thread_pool(min(DELETE_WORKERS, len(by_prefix))) as pool,
        ):
            batches = [(f"{base}/{prefix}", names) for prefix, names in by_prefix.items()]
            for future in [pool.submit(_unlink_all, *batch) for batch in batches]:
                future.result()

    def _put_loose_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        if self.has(digest, len(data)):
            return digest
        with backend_errors(f"cannot write object {digest}"):
            tmp = self._tmp_path()
            try:
                _write_file(tmp, data)
                move_into_place(tmp, self.path_of(digest))
            except BaseException:
                _remove_quietly(tmp)
                raise
        return digest

    def put_chunk_list(self, digest: str, data: bytes, *, replace: bool = False) -> None:
        self._mark_chunked()
        path = self.chunk_list_path(digest)
        with backend_errors(f"cannot write the chunk list of {digest}"):
            with contextlib.suppress(FileNotFoundError):
                if not replace and os.stat(path).st_size == len(data):
                    return
            tmp = self._tmp_path()
            try:
                _write_file(tmp, data)
                move_into_place(tmp, path)
            except BaseException:
                _remove_quietly(tmp)
                raise

    def _put_loose_file(
        self,
        local_path: str | os.PathLike[str],
        digest: str,
        progress: Progress | None = None,
        *,
        known_missing: bool = False,
    ) -> bool:
        """One copy at most: a reflink where the filesystem can share blocks, else a plain
        copy; either way the new object's bytes are hashed before it is published."""
        source = os.fspath(local_path)
        if not known_missing and self.has(digest, os.path.getsize(source)):
            return False

        def fill(tmp: str) -> tuple[str, int]:
            with open(source, "rb", buffering=0) as src:
                fd = _create(tmp)
                try:
                    shared = reflink(src.fileno(), fd)
                except BaseException:
                    os.close(fd)
                    raise
                if not shared:
                    return copy_to_new_file(src, fd, progress)
                os.close(fd)
            with open(tmp, "rb", buffering=0) as clone:
                return hash_stream(clone, progress)

        with backend_errors(f"cannot store {source!r}"):
            self._publish_checked(source, digest, fill)
        return True

    def _put_loose_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
    ) -> None:
        def fill(tmp: str) -> tuple[str, int]:
            return copy_to_new_file(src, _create(tmp), progress)

        with backend_errors(f"cannot store {source!r}"):
            self._publish_checked(source, digest, fill)

    def _put_loose_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        """One after the other: for many short writes, threads lose to the GIL here."""
        for local_path, digest in items:
            self.put_file(local_path, digest, progress, known_missing=True)

    def _publish_checked(
        self, source: str, digest: str, fill: Callable[[str], tuple[str, int]]
    ) -> None:
        """Write a temporary file with ``fill`` (which returns the digest and length of what
        it wrote) and publish it under ``digest`` only if they match and the file on disk
        has exactly that length; nothing is left otherwise."""
        tmp = self._tmp_path()
        try:
            written, length = fill(tmp)
            check_unchanged(source, digest, written)
            _check_length(tmp, length)
            move_into_place(tmp, self.path_of(digest))
        except BaseException:
            _remove_quietly(tmp)
            raise

    def _tmp_path(self) -> str:
        tmp_dir = self._path("tmp")
        if not os.path.isdir(tmp_dir):
            os.makedirs(tmp_dir, exist_ok=True)
        return os.path.join(tmp_dir, f"{os.getpid()}-{uuid.uuid4().hex}")

    def _flush_loose(self) -> None:
        """One filesystem sync (not one fsync per object) before the commit that makes the
        objects reachable. It runs even when this writer stored nothing new: objects it
        found may come from a writer that has not synced yet. A failed sync (a write-back
        error) fails the log: its objects may not be on disk."""
        if os.path.isdir(self._path("objects")):
            with backend_errors(f"cannot make the objects in {self.url!r} durable"):
                _syncfs(self._path("objects"))

    def clean_tmp(self, older_than: float) -> list[str]:
        """Remove files in ``tmp/`` left by crashed writers, older than ``older_than`` s."""
        removed: list[str] = []
        tmp_dir = self._path("tmp")
        if not os.path.isdir(tmp_dir):
            return removed
        cutoff = time.time() - older_than
        for entry in os.scandir(tmp_dir):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.name)
        return removed

    def store_file(self, local_path: str, path: str) -> None:
        """Renamed into place (the file is on this filesystem, synced), then the rename
        itself made durable."""
        move_into_place(local_path, path)
        _sync_folder(os.path.dirname(path))

    def store_small(self, path: str, data: bytes) -> None:
        tmp = self._tmp_path()
        try:
            _write_file(tmp, data)
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            self.store_file(tmp, path)
        except BaseException:
            _remove_quietly(tmp)
            raise

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """At most the bytes the file has there: a length that lies (a damaged or forged
        index row) must not size the buffer."""
        descriptor = os.open(path, os.O_RDONLY)
        try:
            there = max(0, os.fstat(descriptor).st_size - offset)
            return os.pread(descriptor, min(length, there), offset)
        finally:
            os.close(descriptor)

    def read_range_into(self, path: str, offset: int, view: memoryview) -> None:
        """Straight into ``view``, without a copy."""
        descriptor = os.open(path, os.O_RDONLY)
        try:
            filled = 0
            while filled < len(view):
                got = os.preadv(descriptor, [view[filled:]], offset + filled)
                if not got:
                    break
                filled += got
            zero_rest(view, filled)
        finally:
            os.close(descriptor)

    def local_object(self, digest: str, label: str | None = None) -> str:
        path = self.path_of(digest)
        if not os.path.isfile(path):
            raise missing(self.url, digest, label or f"object {digest}")
        return path

    def _loose_actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
        """On every core (worker processes for many small objects)."""
        wanted = sorted(set(digests))
        sizes = self._loose_sizes(wanted)
        present = [d for d in wanted if d in sizes]
        results = hash_files([self.path_of(d) for d in present], [sizes[d] for d in present])
        found: dict[str, str | None] = dict.fromkeys(wanted)
        for digest, result in zip(present, results, strict=True):
            if isinstance(result, str):  # unreadable: read it once more to report why
                found[digest] = self.actual_digest(digest)
            else:
                found[digest] = result[0]
        return found


def _create(path: str) -> int:
    """A new file for writing, as ``open(path, "wb")`` makes it."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)


def _write_file(path: str, data: bytes) -> None:
    """Create ``path`` with ``data``, every byte written (a short write on a full disk
    raises instead of leaving a truncated file)."""
    with open(path, "wb", buffering=0) as f:
        write_all(f, memoryview(data))
    _check_length(path, len(data))


def _check_length(path: str, length: int) -> None:
    actual = os.stat(path).st_size
    if actual != length:
        raise StoreError(
            f"wrote {length} bytes to {path!r} but it holds {actual}; the disk may be full or "
            "failing: nothing was published"
        )


def _unlink_all(folder: str, digests: Iterable[str]) -> None:
    """Remove the objects with these digests from their prefix folder."""
    for digest in digests:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{folder}/{digest[2:]}")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def move_into_place(tmp: str, final: str) -> None:
    """Publish a finished local file under its final name, read-only (stored files are
    immutable; accidental edits fail), creating its prefix folder on first use."""
    os.chmod(tmp, 0o444)
    try:
        os.replace(tmp, final)
    except FileNotFoundError:  # first file under this prefix
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(tmp, final)


def _sync_folder(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_libc: Any = None


def _syncfs(path: str) -> None:
    """Flush the filesystem holding ``path`` (Linux syncfs, which reports write-back
    errors), else fall back to sync()."""
    import ctypes  # here: 3 ms of imports that only a sync needs
    import ctypes.util

    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name, use_errno=True) if name else False
    if _libc and hasattr(_libc, "syncfs"):
        fd = os.open(path, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) == 0:
                return
            error = ctypes.get_errno()
        finally:
            os.close(fd)
        if error != 38:  # ENOSYS: no syncfs here; fall back below
            raise OSError(error, os.strerror(error))
    os.sync()
