"""Write-once, content-addressed objects on one fsspec filesystem: what every object
location does, whatever holds it.

Layout under the location's root::

    forebear.json                  format version, hash algorithm and store id, checked on open
    objects/<2 hex>/<30 hex>       one immutable blob per xxh3-128 digest
    chunklists/<2 hex>/<30 hex>    how the file with that digest is made of chunk objects
    tmp/                           in-flight local writes, renamed into objects/

An object gets its final name only once every byte was written and the written bytes hash
to that name (see `LocalLocation` and `RemoteLocation` for how). An object that a writer
relies on for deduplication must at least have the right size. Reads check every byte
before handing it over (see `readers`). This package knows nothing of artifacts, versions
or runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import IO, Any, BinaryIO, NamedTuple

import fsspec

from ..destination import save_stream
from ..errors import (
    IntegrityError,
    ObjectNotFound,
    StoreError,
    StoreVersionError,
)
from ..hashing import (
    BLOCK_SIZE,
    HASH_ALGORITHM,
    Progress,
    hash_bytes,
    hash_stream,
    new_hasher,
)
from ..readers import checked_at_end, corrupted, verified_copy

FORMAT_FILE = "forebear.json"
SMALL_BATCH = 16  # up to this many objects, check each; beyond, list their prefixes
TRANSFER_WORKERS = 8  # concurrent requests to a remote location
DELETE_BATCH = 10_000  # paths handed to the filesystem's bulk removal at once
FORMAT_VERSION = 2  # 2: files may be stored as chunks (format 1 stores are read as they are)
CHUNK_LISTS = "chunklists"
OBJECT_NAME_RE = re.compile(r"^[0-9a-f]{30}$")
OBJECT_NAMES_RE = re.compile(r"[0-9a-f]{30}(?:\n[0-9a-f]{30})*")  # names joined by newlines
PREFIX_RE = re.compile(r"^[0-9a-f]{2}$")
DIGEST_RE = re.compile(r"^[0-9a-f]{32}$")


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
        hint = "; free some space and try again" if exc.errno == 28 else ""  # ENOSPC
        raise StoreError(f"{what}: {exc}{hint}") from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in _BACKEND_PACKAGES:
            raise StoreError(f"{what}: {exc}") from exc
        raise


def _modified(entry: Mapping[str, Any]) -> float | None:
    """When a listed object was last written, from whichever field its backend fills."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = entry.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    return None


def missing(url: str, digest: str, name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"{name} is missing from {url!r} (object {digest}); "
        "it may have been deleted by hand: run 'forebear verify'"
    )


def check_unchanged(local_path: str | os.PathLike[str], expected: str, actual: str) -> None:
    if actual != expected:
        raise IntegrityError(
            f"{os.fspath(local_path)!r} changed while it was being logged (hashed {expected}, "
            f"then read {actual}); log it again once nothing is writing to it"
        )


def copy_hashing(src: BinaryIO, dst: IO[bytes], progress: Progress | None) -> tuple[str, int]:
    """Copy ``src`` to its end into ``dst``, hashing on the way: the digest and length of
    what was written (every byte of it: short writes are finished or fail)."""
    hasher = new_hasher()
    total = 0
    readinto = getattr(src, "readinto", None)
    if readinto is None:
        while block := src.read(BLOCK_SIZE):
            hasher.update(block)
            write_all(dst, memoryview(block))
            total += len(block)
            if progress is not None:
                progress(len(block))
        return str(hasher.hexdigest()), total
    view = memoryview(bytearray(BLOCK_SIZE))
    direct = isinstance(dst, io.FileIO)  # other writers may keep what they are given
    while n := readinto(view):
        hasher.update(view[:n])
        write_all(dst, view[:n] if direct else memoryview(bytes(view[:n])))
        total += n
        if progress is not None:
            progress(n)
    return str(hasher.hexdigest()), total


def write_all(dst: IO[bytes], view: memoryview) -> None:
    """Write all of ``view``: raw files may accept fewer bytes than given (a disk filling
    up), and then the rest must be written again or the error surfaces."""
    while len(view):
        written = dst.write(view)
        if written is None:  # a buffered writer took everything
            return
        if written <= 0:
            raise OSError(28, "No space left on device")  # ENOSPC: nothing more accepted
        view = view[written:]


# Libraries whose exceptions mean "the backend failed" (network, auth, service errors).
_BACKEND_PACKAGES = {"botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "gcsfs", "adlfs"}


class FormatInfo(NamedTuple):
    """What ``forebear.json`` says: the format version and the id of the store it belongs
    to (None in files written before stores had ids)."""

    format_version: int
    store_id: str | None


class StoredObject(NamedTuple):
    """An object as a listing of the location sees it; ``modified`` in seconds since the
    epoch (None where the backend does not say)."""

    digest: str
    size: int
    modified: float | None


class ObjectLocation(ABC):
    """The object half of a store: blobs named by digest on an fsspec filesystem.

    Made by `open_location`, which picks `LocalLocation` for a local folder and
    `RemoteLocation` for any other filesystem. Capabilities, as flags rather than type
    checks: ``is_local`` (objects are files on this machine: downloads may link or clone
    them, and writes can be made durable with one sync).
    """

    is_local = False

    def __init__(self, url: str, fs: fsspec.AbstractFileSystem, root: str) -> None:
        self.url = url
        self.fs = fs
        self.root: str = root.rstrip("/") if root not in ("/", "") else root
        self.format_version = FORMAT_VERSION
        self.store_id: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def path_of(self, digest: str) -> str:
        return self._path(object_key(digest))

    def read_format(self) -> FormatInfo | None:
        """The location's format file, or None when there is none yet; refuses a format
        this code cannot read."""
        path = self._path(FORMAT_FILE)
        with backend_errors(f"cannot open the object location {self.url!r}"):
            try:
                raw = bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None
        try:
            info = json.loads(raw)
            version = int(info["format_version"])
            algorithm = info["hash"]
            store_id = info.get("store_id")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
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
        if store_id is not None and not (isinstance(store_id, str) and DIGEST_RE.match(store_id)):
            raise StoreError(f"{path} holds an invalid store id {store_id!r}")
        self.format_version = version
        self.store_id = store_id
        return FormatInfo(version, store_id)

    def ensure_format(self, store_id: str | None = None) -> FormatInfo:
        """Read the format file, creating it (with ``store_id``, else a new one) if missing;
        concurrent creators agree on whichever file was written first."""
        found = self.read_format()
        if found is not None:
            return found
        path = self._path(FORMAT_FILE)
        body = self._format_body(FORMAT_VERSION, store_id or uuid.uuid4().hex)
        with backend_errors(f"cannot create a store at {self.url!r}"):
            try:
                self._create_once(path, body)
            except FileNotFoundError as exc:
                raise StoreError(
                    f"cannot create a store at {self.url!r}: its parent does not exist "
                    f"({exc}); create the bucket or folder first"
                ) from exc
        created = self.read_format()
        if created is None:  # pragma: no cover - written just above
            raise StoreError(f"cannot create a store at {self.url!r}")
        return created

    def record_store_id(self, store_id: str) -> None:
        """Write the store id into a format file from before stores had one."""
        self._rewrite_format(self.format_version, store_id)
        self.store_id = store_id

    @staticmethod
    def _format_body(version: int, store_id: str | None) -> bytes:
        body: dict[str, Any] = {"format_version": version, "hash": HASH_ALGORITHM}
        if store_id is not None:
            body["store_id"] = store_id
        return json.dumps(body, indent=2).encode() + b"\n"

    def _upgrade_format(self) -> None:
        """Mark a format 1 location as format 2 before its first chunked file, so that an
        older forebear refuses it ("upgrade forebear") instead of finding files missing, or
        collecting chunks it does not know are in use."""
        if self.format_version >= FORMAT_VERSION:
            return
        self._rewrite_format(FORMAT_VERSION, self.store_id)
        self.format_version = FORMAT_VERSION

    def holds_objects(self) -> bool:
        """Whether any object or chunk list is stored here (one or two listings)."""
        for folder in ("objects", CHUNK_LISTS):
            base = self._path(folder)
            with backend_errors(f"cannot list {base!r}"):
                try:
                    names = self.fs.ls(base, detail=False)
                except FileNotFoundError:
                    continue
            if any(PREFIX_RE.match(str(n).rstrip("/").rsplit("/", 1)[-1]) for n in names):
                return True
        return False

    def has(self, digest: str, size: int | None = None) -> bool:
        """Whether the object is stored (with ``size`` bytes, when given)."""
        found = self._size_or_none(digest)
        return found is not None and (size is None or found == size)

    def has_many(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` present in the location, whatever their size."""
        return set(self.sizes(digests))

    def present(self, sizes: Mapping[str, int]) -> set[str]:
        """The digests of ``sizes`` stored with exactly that many bytes: what a writer may
        rely on instead of storing them again (a short or overlong object is not)."""
        found = self.sizes(sizes)
        return {d for d, size in found.items() if sizes[d] == size}

    def _list_prefix(
        self, prefix: str, folder: str = "objects", skip: Container[str] = frozenset()
    ) -> list[StoredObject]:
        """The objects under one prefix folder, but those in ``skip``."""
        path = self._path(f"{folder}/{prefix}")
        with backend_errors(f"cannot list {path!r}"):
            try:
                entries = self.fs.ls(path, detail=True, refresh=True)
            except FileNotFoundError:
                return []
        found = []
        for entry in entries:
            rest = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") == "directory" or not OBJECT_NAME_RE.match(rest):
                continue
            if prefix + rest not in skip:
                found.append(StoredObject(prefix + rest, int(entry["size"]), _modified(entry)))
        return found

    def _prefixes(self, folder: str) -> list[str]:
        """The two-hex prefix folders under ``folder``, sorted."""
        base = self._path(folder)
        with backend_errors(f"cannot list {base!r}"):
            try:
                names = self.fs.ls(base, detail=False, refresh=True)
            except FileNotFoundError:
                return []
        found = (str(name).rstrip("/").rsplit("/", 1)[-1] for name in names)
        return sorted(prefix for prefix in found if PREFIX_RE.match(prefix))

    def size_of(self, digest: str) -> int:
        size = self._size_or_none(digest)
        if size is None:
            raise missing(self.url, digest, f"object {digest}")
        return size

    def iter_digests(self) -> Iterator[str]:
        """Every digest stored; files that do not look like objects are ignored."""
        for stored in self.iter_objects():
            yield stored.digest

    def iter_objects(
        self, folder: str = "objects", *, skip: Container[str] = frozenset()
    ) -> Iterator[StoredObject]:
        """Every object stored, with its size and age, one prefix folder at a time (in no
        particular order within it); those in ``skip`` are left out, and where that saves
        work (a ``stat`` per local file) never looked at: gc skips the objects it keeps."""
        for prefix in self._prefixes(folder):
            yield from self._list_prefix(prefix, folder, skip)

    def chunk_list_path(self, digest: str) -> str:
        return self._path(f"{CHUNK_LISTS}/{digest[:2]}/{digest[2:]}")

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
        for stored in self.iter_objects(CHUNK_LISTS):
            yield stored.digest

    def delete_chunk_list(self, digest: str) -> None:
        self._remove(self.chunk_list_path(digest), f"the chunk list of {digest}")

    def delete(self, digest: str) -> None:
        self._remove(self.path_of(digest), f"object {digest}")

    def _remove(self, path: str, what: str) -> None:
        with backend_errors(f"cannot delete {what}"), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def delete_many(self, digests: Iterable[str]) -> None:
        """Remove many objects (those missing already are fine)."""
        self._remove_many("objects", digests)

    def delete_chunk_lists(self, digests: Iterable[str]) -> None:
        """Remove the chunk lists of many files (those missing already are fine)."""
        self._remove_many(CHUNK_LISTS, digests)

    def _remove_many(self, folder: str, digests: Iterable[str]) -> None:
        """The filesystem's own removal of many paths, a batch at a time (an object store
        removes up to 1,000 keys a request); where a missing path fails a batch, its paths
        are removed one by one."""
        remaining = iter(digests)
        while batch := [
            self._path(f"{folder}/{d[:2]}/{d[2:]}") for d in islice(remaining, DELETE_BATCH)
        ]:
            with backend_errors(f"cannot delete {folder} in {self.url!r}"):
                try:
                    self.fs.rm(batch)
                except FileNotFoundError:
                    for path in batch:
                        with contextlib.suppress(FileNotFoundError):
                            self.fs.rm_file(path)

    def _open_raw(self, digest: str, name: str) -> BinaryIO:
        with backend_errors(f"cannot read {name}"):
            try:
                return self.fs.open(self.path_of(digest), "rb")  # type: ignore[no-any-return]
            except FileNotFoundError as exc:
                raise missing(self.url, digest, name) from exc

    def open(self, digest: str, label: str | None = None) -> BinaryIO:
        """A seekable stream of the object's bytes, all checked before the first is handed
        over (`IntegrityError` when they are corrupted)."""
        name = label or f"object {digest}"
        raw = self._open_raw(digest, name)
        with backend_errors(f"cannot read {name}"):
            return verified_copy(raw, digest, name)

    def stream(self, digest: str, label: str | None = None) -> io.BufferedReader:
        """The object's bytes as they arrive, checked when the stream reaches its end: for
        callers that keep nothing until then (a temporary file renamed afterwards)."""
        name = label or f"object {digest}"
        return checked_at_end(self._open_raw(digest, name), digest, name)

    def read_bytes(self, digest: str, label: str | None = None) -> bytes:
        """A (small) object's bytes, checked before they are returned: read whole and
        hashed once (a chunk of a large file is read this way, so this is the speed of
        reading one)."""
        name = label or f"object {digest}"
        with backend_errors(f"cannot read {name}"):
            data = self._read_whole(digest, name)
        actual = hash_bytes(data)
        if actual != digest:
            raise corrupted(name, actual, digest)
        return data

    def will_need(self, digests: Sequence[str]) -> None:  # noqa: B027 - a hint, optional
        """A hint that these objects are about to be read (a local disk starts reading
        them); nothing by default."""

    def read_into(self, digest: str, view: memoryview, label: str | None = None) -> int:
        """Put an object's stored bytes, unchecked, into ``view`` (at most its length);
        how many. The caller checks them before handing any over (a chunked reader reads
        whole chunks into its caller's buffer this way)."""
        name = label or f"object {digest}"
        with backend_errors(f"cannot read {name}"):
            data = self._read_whole(digest, name)
        n = min(len(data), len(view))
        view[:n] = data[:n]
        return n

    def _read_whole(self, digest: str, name: str) -> bytes:
        """An object's stored bytes, unchecked (`read_bytes` checks them)."""
        with self._open_raw(digest, name) as raw:
            return bytes(raw.read())

    def get_file(
        self,
        digest: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
        label: str | None = None,
    ) -> None:
        """Copy an object to a local file, atomically, after checking its digest."""
        with self.stream(digest, label) as src:
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

    # -- what each kind of location does its own way ------------------------------------

    @abstractmethod
    def _create_once(self, path: str, body: bytes) -> None:
        """Create a small file unless it exists (concurrent creators agree on the first)."""

    @abstractmethod
    def _rewrite_format(self, version: int, store_id: str | None) -> None:
        """Replace the format file, atomically."""

    @abstractmethod
    def _size_or_none(self, digest: str) -> int | None:
        """One object's stored size, or None when it is missing."""

    @abstractmethod
    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """The stored size of each of ``digests`` that is present."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (small blobs such as manifests) and return its digest."""

    @abstractmethod
    def put_chunk_list(self, digest: str, data: bytes, *, replace: bool = False) -> None:
        """Store how the file with ``digest`` is made of chunks (written once, atomically;
        an existing list of the same length is kept unless ``replace``, for repairs)."""

    @abstractmethod
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

    @abstractmethod
    def put_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
    ) -> None:
        """Store a stream's bytes under ``digest``, hashing them on the way; nothing becomes
        visible under the digest unless they match."""

    @abstractmethod
    def put_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        """Store several missing files."""

    @abstractmethod
    def actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
        """Re-hash many stored objects: each one's actual digest, or None when missing."""

    @abstractmethod
    def flush(self) -> None:
        """Make the objects written so far durable before a commit makes them reachable."""

    def clean_tmp(self, older_than: float) -> list[str]:
        """Remove in-flight files left by crashed writers (none where there are none)."""
        return []

    def open_stored(self, digest: str) -> BinaryIO:
        """An object's stored bytes as a stream, unchecked: for handing them on to someone
        who checks them (a server's client)."""
        return self._open_raw(digest, f"object {digest}")

    @property
    def can_presign(self) -> bool:
        """Whether `presigned_url` hands out URLs (an object store), or None."""
        return False

    def presigned_url(self, digest: str, seconds: int) -> str | None:
        """A URL that reads one object for ``seconds``, without credentials (None where
        the location has no such URLs: a server streams those bytes itself)."""
        return None

    def staged_uploads(self, digests: Sequence[str], seconds: int) -> dict[str, tuple[str, str]]:
        """For each of ``digests``, a URL that takes one upload for ``seconds`` into a
        staging place (never the object's own key), and the staging id to `publish_many`
        it with; empty where the location has no such URLs."""
        return {}

    def publish_many(self, staged: dict[str, str]) -> None:
        """Check each staged upload (digest → staging id) hashes to its digest and make it
        the object; either way the staged copies go."""
        raise StoreError(f"{self.url!r} takes no staged uploads")

    def local_object(self, digest: str, label: str | None = None) -> str:
        """The local file holding an object (only where ``is_local``)."""
        raise StoreError(f"{self.url!r} holds no local files")
