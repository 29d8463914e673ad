"""Write-once, content-addressed objects on one fsspec filesystem.

Layout under the location's root::

    forebear.json                  format version + hash algorithm, checked on open
    objects/<2 hex>/<30 hex>       one immutable blob per xxh3-128 digest
    chunklists/<2 hex>/<30 hex>    how the file with that digest is made of chunk objects
    tmp/                           in-flight local writes, renamed into objects/

Objects are written atomically (a temporary file renamed into place on local disks, one PUT
on object stores) and read back through a reader that checks the digest. This module knows
nothing of artifacts, versions or runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import (
    IntegrityError,
    InvalidInput,
    ObjectNotFound,
    StoreError,
    StoreVersionError,
)
from .hashing import BLOCK_SIZE, HASH_ALGORITHM, Progress, hash_bytes, hash_stream, new_hasher
from .links import LINK_TYPES

FORMAT_FILE = "forebear.json"
SMALL_BATCH = 16  # up to this many objects, check each; beyond, list their prefixes
TRANSFER_WORKERS = 8  # concurrent requests to a remote location
FORMAT_VERSION = 2  # 2: files may be stored as chunks (format 1 stores are read as they are)
CHUNK_LISTS = "chunklists"
_OBJECT_NAME_RE = re.compile(r"^[0-9a-f]{30}$")
_PREFIX_RE = re.compile(r"^[0-9a-f]{2}$")


def object_key(digest: str) -> str:
    """Relative key of an object: ``objects/<first 2 hex>/<remaining 30 hex>``."""
    return f"objects/{digest[:2]}/{digest[2:]}"


@contextlib.contextmanager
def backend_errors(what: str) -> Iterator[None]:
    """Translate backend exceptions into forebear errors, once, at the storage edge."""
    try:
        yield
    except (ObjectNotFound, IntegrityError, StoreError):
        raise
    except FileNotFoundError as exc:
        raise ObjectNotFound(f"{what}: not found ({exc})") from exc
    except PermissionError as exc:
        raise StoreError(
            f"{what}: permission denied ({exc}); check the credentials or file permissions"
        ) from exc
    except OSError as exc:
        raise StoreError(f"{what}: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in _BACKEND_PACKAGES:
            raise StoreError(f"{what}: {exc}") from exc
        raise


# Libraries whose exceptions mean "the backend failed" (network, auth, service errors).
_BACKEND_PACKAGES = {"botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "gcsfs", "adlfs"}


class VerifyingReader(io.RawIOBase):
    """A read-only stream over one object that raises `IntegrityError` when it reaches the
    end if the bytes read do not hash to the expected digest: bad bytes are never handed
    over as good. After a seek, only whole-object reads from the start are checked."""

    def __init__(self, raw: BinaryIO, digest: str, label: str) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._label = label
        self._hasher = new_hasher()
        self._sequential = True
        self._checked = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        if self._sequential:
            if n:
                self._hasher.update(data)
            elif not self._checked and len(view):
                self._checked = True
                actual = self._hasher.hexdigest()
                if actual != self._digest:
                    raise IntegrityError(
                        f"{self._label}: stored bytes hash to {actual}, expected "
                        f"{self._digest}; the data is corrupted (run 'forebear verify')"
                    )
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        position = int(self._raw.seek(offset, whence))
        if position == 0:
            self._hasher = new_hasher()
            self._sequential = True
            self._checked = False
        else:
            self._sequential = False
        return position

    def tell(self) -> int:
        return int(self._raw.tell())

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class ObjectLocation:
    """The object half of a store: blobs named by digest on any fsspec filesystem."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        with backend_errors(f"cannot use object location {url!r}"):
            try:
                fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
            except (ImportError, ValueError) as exc:
                raise StoreError(
                    f"cannot use object location {url!r}: {exc}; install the fsspec backend "
                    "for this protocol (for example 'pip install s3fs')"
                ) from exc
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/") if root not in ("/", "") else root
        self.is_local = isinstance(fs, LocalFileSystem)
        self.format_version = FORMAT_VERSION

    def __repr__(self) -> str:
        return f"ObjectLocation({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def path_of(self, digest: str) -> str:
        return self._path(object_key(digest))

    # -- format file -------------------------------------------------------------------

    def ensure_format(self) -> None:
        """Create the format file if missing, else refuse a format this code cannot read."""
        path = self._path(FORMAT_FILE)
        with backend_errors(f"cannot open the object location {self.url!r}"):
            try:
                raw = self.fs.cat_file(path)
            except FileNotFoundError:
                raw = None
            if raw is None:
                try:
                    self._create_format_file(path)
                except FileNotFoundError as exc:
                    raise StoreError(
                        f"cannot create a store at {self.url!r}: its parent does not exist "
                        f"({exc}); create the bucket or folder first"
                    ) from exc
                return
        try:
            info = json.loads(raw)
            version = int(info["format_version"])
            algorithm = info["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{path} is not a forebear format file; is {self.url!r} the right location?"
            ) from exc
        if version > FORMAT_VERSION:
            raise StoreVersionError(
                f"the store at {self.url!r} has format version {version}; this forebear reads "
                f"up to {FORMAT_VERSION}: upgrade forebear ('pip install -U forebear')"
            )
        if algorithm != HASH_ALGORITHM:
            raise StoreVersionError(
                f"the store at {self.url!r} uses hash {algorithm!r}; this forebear uses "
                f"{HASH_ALGORITHM!r}"
            )
        self.format_version = version

    def _format_body(self) -> bytes:
        body = {"format_version": FORMAT_VERSION, "hash": HASH_ALGORITHM}
        return json.dumps(body, indent=2).encode() + b"\n"

    def _create_format_file(self, path: str) -> None:
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as f:
                f.write(self._format_body())
            try:
                os.link(tmp, path)  # fails if another process won the race: fine
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        else:
            self.fs.pipe_file(path, self._format_body())

    def _upgrade_format(self) -> None:
        """Mark a format 1 location as format 2 before its first chunked file, so that an
        older forebear refuses it ("upgrade forebear") instead of finding files missing, or
        collecting chunks it does not know are in use."""
        if self.format_version >= FORMAT_VERSION:
            return
        path = self._path(FORMAT_FILE)
        with backend_errors(f"cannot update {path!r}"):
            if self.is_local:
                tmp = f"{path}.{uuid.uuid4().hex}.tmp"
                with open(tmp, "wb") as f:
                    f.write(self._format_body())
                os.replace(tmp, path)
            else:
                self.fs.pipe_file(path, self._format_body())
        self.format_version = FORMAT_VERSION

    # -- queries ---------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        with backend_errors(f"cannot check object {digest}"):
            if self.is_local:
                return os.path.exists(self.path_of(digest))
            return bool(self.fs.exists(self.path_of(digest)))

    def has_many(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` present in the location.

        Remote locations answer by listing: one request for the prefixes that exist, then
        one per existing two-hex prefix involved (a page lists up to 1,000 objects), instead
        of one request per object, once there are more objects to check than that.
        """
        wanted = set(digests)
        if self.is_local or len(wanted) <= SMALL_BATCH:
            return {d for d in wanted if self.has(d)}
        base = self._path("objects")
        with backend_errors(f"cannot list objects under {base!r}"):
            try:  # one request tells which prefixes exist at all
                names = self.fs.ls(base, detail=False, refresh=True)
            except FileNotFoundError:
                return set()
        existing = {str(n).rstrip("/").rsplit("/", 1)[-1] for n in names}
        prefixes = sorted({d[:2] for d in wanted} & existing)

        def listed(prefix: str) -> set[str]:
            path = self._path(f"objects/{prefix}")
            with backend_errors(f"cannot list objects under {path!r}"):
                try:
                    names = self.fs.ls(path, detail=False, refresh=True)
                except FileNotFoundError:
                    return set()
            return {prefix + str(n).rstrip("/").rsplit("/", 1)[-1] for n in names}

        present: set[str] = set()
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            for found in pool.map(listed, prefixes):
                present |= found & wanted  # a listing can be far larger than the batch
        return present

    def size_of(self, digest: str) -> int:
        with backend_errors(f"cannot read object {digest}"):
            return int(self.fs.size(self.path_of(digest)))

    def iter_digests(self) -> Iterator[str]:
        """Every digest stored; files that do not look like objects are ignored."""
        yield from self._iter_names(self._path("objects"))

    def _iter_names(self, base: str) -> Iterator[str]:
        with backend_errors(f"cannot list {base!r}"):
            if not self.fs.exists(base):
                return
            for prefix_path in sorted(self.fs.ls(base, detail=False)):
                prefix = prefix_path.rstrip("/").rsplit("/", 1)[-1]
                if not _PREFIX_RE.match(prefix):
                    continue
                for obj_path in sorted(self.fs.ls(prefix_path, detail=False)):
                    rest = obj_path.rstrip("/").rsplit("/", 1)[-1]
                    if _OBJECT_NAME_RE.match(rest):
                        yield prefix + rest

    # -- writes ----------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (small blobs such as manifests) and return its digest."""
        digest = hash_bytes(data)
        if self.has(digest):
            return digest
        with backend_errors(f"cannot write object {digest}"):
            if self.is_local:
                tmp = self._local_tmp_path()
                with open(tmp, "wb") as f:
                    f.write(data)
                self._publish_local(tmp, digest)
            else:
                self.fs.pipe_file(self.path_of(digest), data)
        return digest

    # -- chunk lists -----------------------------------------------------------------

    def chunk_list_path(self, digest: str) -> str:
        return self._path(f"{CHUNK_LISTS}/{digest[:2]}/{digest[2:]}")

    def put_chunk_list(self, digest: str, data: bytes) -> None:
        """Store how the file with ``digest`` is made of chunks (written once, atomically;
        an existing list is kept)."""
        self._upgrade_format()
        path = self.chunk_list_path(digest)
        with backend_errors(f"cannot write the chunk list of {digest}"):
            if self.is_local:
                if os.path.exists(path):
                    return
                tmp = self._local_tmp_path()
                with open(tmp, "wb") as f:
                    f.write(data)
                _move_into_place(tmp, path)
            elif not self.fs.exists(path):
                self.fs.pipe_file(path, data)

    def read_chunk_list(self, digest: str) -> bytes | None:
        """The stored chunk list of the file with ``digest``; None when there is none."""
        return self._read_or_none(self.chunk_list_path(digest), f"the chunk list of {digest}")

    def _read_or_none(self, path: str, what: str) -> bytes | None:
        with backend_errors(f"cannot read {what}"):
            try:
                return bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None

    def iter_chunk_lists(self) -> Iterator[str]:
        """The digest of every file with a stored chunk list."""
        yield from self._iter_names(self._path(CHUNK_LISTS))

    def delete_chunk_list(self, digest: str) -> None:
        self._remove(self.chunk_list_path(digest), f"the chunk list of {digest}")

    def put_file(
        self,
        local_path: str | os.PathLike[str],
        digest: str,
        progress: Progress | None = None,
        *,
        known_missing: bool = False,
    ) -> bool:
        """Store a local file under its known ``digest``; return False if already stored.
        A file that changed since it was hashed is refused (see `put_stream`)."""
        if not known_missing and self.has(digest):
            return False
        if self.is_local:
            with backend_errors(f"cannot store {os.fspath(local_path)!r}"):
                self._put_local_file(os.fspath(local_path), digest, progress)
            return True
        with open(local_path, "rb") as src:
            self.put_stream(src, digest, progress, source=os.fspath(local_path))
        return True

    def _put_local_file(self, source: str, digest: str, progress: Progress | None) -> None:
        """Store a local file into this local location with one copy at most: a reflink
        where the filesystem can share blocks (copy-on-write, so later edits of the source
        never reach the object), else a plain copy. Either way the new object's bytes are
        hashed before it is published."""

        def fill(tmp: str) -> str:
            with open(source, "rb", buffering=0) as src, open(tmp, "wb", buffering=0) as dst:
                if not _reflink(src.fileno(), dst.fileno()):
                    return _copy_hashing(src, dst, progress)
            with open(tmp, "rb", buffering=0) as clone:
                return hash_stream(clone, progress)[0]

        self._publish_local_checked(source, digest, fill)

    def _publish_local_checked(self, source: str, digest: str, fill: Callable[[str], str]) -> None:
        """Write a temporary file with ``fill`` (which returns the digest of what it wrote)
        and publish it under ``digest`` only if they match; nothing is left otherwise."""
        tmp = self._local_tmp_path()
        try:
            _check_unchanged(source, digest, fill(tmp))
            self._publish_local(tmp, digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
    ) -> None:
        """Store a stream's bytes under ``digest``, hashing them on the way.

        Nothing becomes visible under the digest unless they match: locally a temporary
        file is renamed into place; on an object store the upload is discarded before it
        completes (one PUT, or a multipart upload that is aborted).
        """
        with backend_errors(f"cannot store {source!r}"):
            if self.is_local:

                def fill(tmp: str) -> str:
                    with open(tmp, "wb", buffering=0) as dst:
                        return _copy_hashing(src, dst, progress)

                self._publish_local_checked(source, digest, fill)
            else:
                target = self.path_of(digest)
                upload = self.fs.open(target, "wb")
                try:
                    _check_unchanged(source, digest, _copy_hashing(src, upload, progress))
                except BaseException:
                    self._discard(upload, target)
                    raise
                upload.close()

    def put_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        """Store several missing files; remote uploads run concurrently."""
        if self.is_local or len(items) <= 1:
            for local_path, digest in items:
                self.put_file(local_path, digest, progress, known_missing=True)
            return
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            futures = [
                pool.submit(self.put_file, path, digest, progress, known_missing=True)
                for path, digest in items
            ]
            for future in futures:
                future.result()

    def _discard(self, upload: Any, target: str) -> None:
        """Abandon an upload so nothing stays under ``target``: abort it where the backend
        can (S3 multipart), and remove whatever a backend published on open or close."""
        discard = getattr(upload, "discard", None)
        with contextlib.suppress(Exception):
            if callable(discard):
                discard()
                upload.closed = True  # discarded: closing it later must not upload anything
            else:
                upload.close()
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(target)

    def _local_tmp_path(self) -> str:
        tmp_dir = self._path("tmp")
        if not os.path.isdir(tmp_dir):
            os.makedirs(tmp_dir, exist_ok=True)
        return os.path.join(tmp_dir, f"{os.getpid()}-{uuid.uuid4().hex}")

    def _publish_local(self, tmp: str, digest: str) -> None:
        _move_into_place(tmp, self.path_of(digest))

    def flush(self) -> None:
        """Make the objects durable with one filesystem sync (not one fsync per object)
        before the commit that makes them reachable. It runs even when this writer stored
        nothing new: objects it found may come from a writer that has not synced yet."""
        if self.is_local and os.path.isdir(self._path("objects")):
            _syncfs(self._path("objects"))

    def delete(self, digest: str) -> None:
        self._remove(self.path_of(digest), f"object {digest}")

    def _remove(self, path: str, what: str) -> None:
        with backend_errors(f"cannot delete {what}"), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def clean_tmp(self, older_than: float) -> list[str]:
        """Remove in-flight files left by crashed local writers, older than ``older_than`` s."""
        removed: list[str] = []
        if not self.is_local:
            return removed
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

    # -- reads -----------------------------------------------------------------------

    def open(self, digest: str, label: str | None = None) -> io.BufferedReader:
        """A stream of the object's bytes that fails at its end if they are corrupted."""
        name = label or f"object {digest}"
        with backend_errors(f"cannot read {name}"):
            try:
                raw = self.fs.open(self.path_of(digest), "rb")
            except FileNotFoundError as exc:
                raise _missing(self.url, digest, name) from exc
        return io.BufferedReader(VerifyingReader(raw, digest, name), BLOCK_SIZE)

    def local_object(self, digest: str, label: str | None = None) -> str:
        """The file holding an object of this local location; `ObjectNotFound` if none."""
        path = self.path_of(digest)
        if not os.path.isfile(path):
            raise _missing(self.url, digest, label or f"object {digest}")
        return path

    def read_bytes(self, digest: str, label: str | None = None) -> bytes:
        with self.open(digest, label) as reader:
            return reader.read()

    def get_file(
        self,
        digest: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
        label: str | None = None,
    ) -> None:
        """Copy an object to a local file, atomically, after checking its digest."""
        with self.open(digest, label) as src:
            save_stream(src, dest, progress)

    def raw_bytes(self, digest: str) -> bytes | None:
        """A (small) object's bytes, unchecked, for `verify`; None when it is missing."""
        return self._read_or_none(self.path_of(digest), f"object {digest}")

    def actual_digest(self, digest: str) -> str | None:
        """Re-hash a stored object: its actual digest, or None when it is missing."""
        with backend_errors(f"cannot read object {digest}"):
            try:
                with self.fs.open(self.path_of(digest), "rb") as f:
                    return hash_stream(f)[0]
            except FileNotFoundError:
                return None


def _move_into_place(tmp: str, final: str) -> None:
    """Publish a finished local file under its final name, read-only (stored files are
    immutable; accidental edits fail), creating its prefix folder on first use."""
    os.chmod(tmp, 0o444)
    try:
        os.replace(tmp, final)
    except FileNotFoundError:  # first file under this prefix
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(tmp, final)


def _missing(url: str, digest: str, name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"{name} is missing from {url!r} (object {digest}); "
        "it may have been deleted by hand: run 'forebear verify'"
    )


def save_stream(
    src: BinaryIO, dest: str | os.PathLike[str], progress: Progress | None = None
) -> None:
    """Write a stream to a local file atomically: a temporary name beside it, renamed into
    place only once the stream ended without error (a verifying stream checks at its end)."""
    dest = os.fspath(dest)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    tmp = f"{dest}.forebear-{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as dst:
            while True:
                block = src.read(BLOCK_SIZE)
                if not block:
                    break
                dst.write(block)
                if progress is not None:
                    progress(len(block))
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def copy_verified(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    digest: str,
    progress: Progress | None = None,
    label: str | None = None,
) -> None:
    """Copy a local file atomically, hashing it on the way; `IntegrityError` (and no file
    at ``dest``) if its bytes do not match ``digest``."""
    name = label or f"{os.fspath(src)!r}"
    with open(src, "rb") as raw:
        save_stream(
            io.BufferedReader(VerifyingReader(raw, digest, name), BLOCK_SIZE), dest, progress
        )


def check_link_type(link: str) -> str:
    if link not in LINK_TYPES:
        raise InvalidInput(f"unknown link type {link!r}: use one of {', '.join(LINK_TYPES)}")
    return link


def place_verified(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    digest: str,
    link: str = "auto",
    progress: Progress | None = None,
    label: str | None = None,
) -> None:
    """Put a local object's bytes at ``dest`` the way ``link`` says, atomically, after
    checking they match ``digest`` (`IntegrityError`, and nothing at ``dest``, if not)."""
    check_link_type(link)
    name = label or f"{os.fspath(src)!r}"
    dest = os.fspath(dest)
    if link == "copy" or (link == "auto" and not _may_reflink(src, dest)):
        copy_verified(src, dest, digest, progress, label)
        return
    tmp = f"{dest}.forebear-{uuid.uuid4().hex[:8]}.tmp"
    try:
        if link in ("auto", "reflink"):
            with open(src, "rb", buffering=0) as source, open(tmp, "wb", buffering=0) as clone:
                cloned = _reflink(source.fileno(), clone.fileno())
            if not cloned:
                if link == "reflink":
                    raise InvalidInput(
                        f"cannot reflink {name}: the filesystem of {dest!r} cannot share "
                        "blocks with the store (reflinks need btrfs, XFS or similar on the "
                        "same filesystem); use link 'auto' or 'copy'"
                    )
                os.unlink(tmp)
                copy_verified(src, dest, digest, progress, label)
                return
            checked = tmp  # the clone itself is checked: it is what the user gets
        else:
            checked = os.fspath(src)
        with open(checked, "rb") as raw:  # the reader raises at the end if corrupted
            reader = VerifyingReader(raw, digest, name)
            view = memoryview(bytearray(BLOCK_SIZE))
            while n := reader.readinto(view):
                if progress is not None:
                    progress(n)
        if link == "hardlink":
            try:
                os.link(src, tmp)
            except OSError as exc:
                raise InvalidInput(
                    f"cannot hardlink {name} to {dest!r}: {exc.strerror}; hardlinks need "
                    "the store and the destination on one filesystem; use link 'auto' or 'copy'"
                ) from exc
        elif link == "symlink":
            os.symlink(os.path.abspath(src), tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _copy_hashing(src: BinaryIO, dst: IO[bytes], progress: Progress | None) -> str:
    """Copy ``src`` to its end into ``dst``, hashing on the way; the digest of what was
    written."""
    hasher = new_hasher()
    readinto = getattr(src, "readinto", None)
    if readinto is None:
        while block := src.read(BLOCK_SIZE):
            hasher.update(block)
            dst.write(block)
            if progress is not None:
                progress(len(block))
        return str(hasher.hexdigest())
    view = memoryview(bytearray(BLOCK_SIZE))
    direct = isinstance(dst, io.FileIO)  # other writers may keep what they are given
    while n := readinto(view):
        hasher.update(view[:n])
        dst.write(view[:n] if direct else bytes(view[:n]))
        if progress is not None:
            progress(n)
    return str(hasher.hexdigest())


_FICLONE = 0x40049409  # Linux ioctl: share all of a file's blocks (btrfs, XFS, bcachefs...)
_reflink_unsupported: set[tuple[int, int]] = set()  # (source, target) devices: not again


def _may_reflink(src: str | os.PathLike[str], dest: str) -> bool:
    """False where reflinks are not tried at all (outside Linux), or when one between these
    filesystems already failed: then no clone is attempted (a temporary file made and
    removed for nothing, per file)."""
    if sys.platform != "linux":
        return False
    try:
        devices = (os.stat(src).st_dev, os.stat(os.path.dirname(dest) or ".").st_dev)
    except OSError:
        return True  # let the attempt report what is wrong
    return devices not in _reflink_unsupported


def _reflink(src_fd: int, dst_fd: int) -> bool:
    """Make ``dst`` a copy-on-write clone of ``src``; False where the filesystem cannot."""
    if sys.platform != "linux":
        return False
    devices = (os.fstat(src_fd).st_dev, os.fstat(dst_fd).st_dev)
    if devices in _reflink_unsupported:
        return False
    import fcntl

    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
    except OSError:
        _reflink_unsupported.add(devices)
        return False
    return True


def _check_unchanged(local_path: str | os.PathLike[str], expected: str, actual: str) -> None:
    if actual != expected:
        raise IntegrityError(
            f"{os.fspath(local_path)!r} changed while it was being logged (hashed {expected}, "
            f"then read {actual}); log it again once nothing is writing to it"
        )


_libc: Any = None


def _syncfs(path: str) -> None:
    """Flush the filesystem holding ``path`` (Linux syncfs), else fall back to sync()."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name, use_errno=True) if name else False
    if _libc and hasattr(_libc, "syncfs"):
        fd = os.open(path, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()
