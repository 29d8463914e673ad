"""The format file, ``forebear.json``: which storage format an object location is in,
its hash, and the id of the store it belongs to. Read on every open (and again when a read
finds no object in a store opened before format 3: another process may have upgraded it);
a format this code cannot read is refused before anything else is touched. Also where
backend failures turn into forebear errors, once, at the storage edge."""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from ..errors import IntegrityError, ObjectNotFound, StoreError, StoreVersionError
from ..hashing import HASH_ALGORITHM

if TYPE_CHECKING:
    import fsspec

FORMAT_FILE = "forebear.json"
FORMAT_VERSION = 3  # the newest format this code reads and writes
CHUNKED_FORMAT = 2  # files may be stored as chunks (format 1 stores are read as they are)
PACKED_FORMAT = 3  # small objects are kept in packs (a new store, or one upgraded)
NEW_STORE_FORMAT = 3  # what a new store is created as, unless asked for another
STORE_FORMATS = (CHUNKED_FORMAT, PACKED_FORMAT)  # what a new store may be asked to be
DIGEST_RE = re.compile(r"^[0-9a-f]{32}$")
_UPGRADE_SEEN = threading.Lock()  # one thread at a time finds out the store has packs now
Read = TypeVar("Read", bound=Callable[..., Any])


class FormatInfo(NamedTuple):
    """What ``forebear.json`` says: the format version and the id of the store it belongs
    to (None in files written before stores had ids)."""

    format_version: int
    store_id: str | None


# Libraries whose exceptions mean "the backend failed" (network, auth, service errors).
_BACKEND_PACKAGES = {"botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "gcsfs", "adlfs"}


def backend_errors(what: str) -> BackendErrors:
    """Translate backend exceptions into forebear errors, once, at the storage edge:
    ``with backend_errors("cannot store x"): ...``."""
    return BackendErrors(what)


class BackendErrors:
    """`backend_errors`: a plain class rather than a generator-based context manager,
    since it wraps every object stored or read (a million small files go through it
    twice each, and a generator's setup cost five times the work it guards)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        # never swallows: a translated error is raised, anything else goes on as it is
        if isinstance(exc, Exception):
            translated = translated_error(self.what, exc)
            if translated is not None:
                raise translated from exc


def translated_error(what: str, exc: Exception) -> Exception | None:
    """The forebear error a backend exception means; None to let it through as it is."""
    if isinstance(exc, ObjectNotFound | IntegrityError | StoreError):
        return None
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFound(f"{what}: not found ({exc})")
    if isinstance(exc, PermissionError):
        return StoreError(
            f"{what}: permission denied ({exc}); check the credentials or file permissions"
        )
    if isinstance(exc, OSError):
        hint = "; free some space and try again" if exc.errno == 28 else ""  # ENOSPC
        return StoreError(f"{what}: {exc}{hint}")
    if type(exc).__module__.split(".")[0] in _BACKEND_PACKAGES:
        return StoreError(f"{what}: {exc}")
    return None


def let_go(exc: BaseException) -> None:
    """Drop the traceback of a backend error that was caught and is not raised again (an
    object or folder found absent). fsspec raises through `fsspec.asyn.sync`, whose frame
    keeps the exception it raises: a reference cycle through the traceback that holds every
    frame it passed, and their locals (a batch's sets of digests, a megabyte each), until
    the garbage collector runs, which a log holds off (a log of 20,000 files into packs on
    S3 peaked 2 MiB higher, more with more batches). Without its traceback the cycle is
    gone at once."""
    exc.__traceback__ = None


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


def parse_format(raw: bytes, path: str, url: str) -> FormatInfo:
    """What the format file ``raw`` (read from ``path`` in the location ``url``) says;
    refuses a file that is not one, or a format or hash this code cannot read."""
    try:
        info = json.loads(raw)
        version = int(info["format_version"])
        algorithm = info["hash"]
        store_id = info.get("store_id")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise StoreError(
            f"{path} is not a forebear format file; is {url!r} the right location?"
        ) from exc
    if version > FORMAT_VERSION:
        raise StoreVersionError(
            f"the store at {url!r} has format version {version}; this forebear reads "
            f"up to {FORMAT_VERSION}: upgrade forebear ('pip install -U forebear')"
        )
    if algorithm != HASH_ALGORITHM:
        raise StoreVersionError(
            f"the store at {url!r} uses hash {algorithm!r}; this forebear uses {HASH_ALGORITHM!r}"
        )
    if store_id is not None and not (isinstance(store_id, str) and DIGEST_RE.fullmatch(store_id)):
        raise StoreError(f"{path} holds an invalid store id {store_id!r}")
    return FormatInfo(version, store_id)


def found_after_upgrade(read: Read) -> Read:
    """A read of an object that is not there tried once more when another process upgraded
    the store to packs since this one opened it (and packed the object): see
    `FormatFile.packed_since_opened`."""

    @functools.wraps(read)
    def read_again_if_upgraded(self: FormatFile, *args: Any, **kwargs: Any) -> Any:
        try:
            return read(self, *args, **kwargs)
        except ObjectNotFound:
            if not self.packed_since_opened():
                raise
        return read(self, *args, **kwargs)

    return cast(Read, read_again_if_upgraded)


class FormatFile(ABC):
    """What every object location does with its format file (a mixin of `ObjectLocation`)."""

    url: str
    fs: fsspec.AbstractFileSystem
    format_version: int
    store_id: str | None
    # set by a store that opened the location before format 3: attaches packs
    on_packed: Callable[[], None] | None = None

    @abstractmethod
    def _path(self, key: str) -> str:
        """The full path of ``key`` under the location's root."""

    @abstractmethod
    def _create_once(self, path: str, body: bytes) -> None:
        """Create a small file unless it exists (concurrent creators agree on the first)."""

    @abstractmethod
    def _rewrite_format(self, version: int, store_id: str | None) -> None:
        """Replace the format file, atomically."""

    def _read_or_none(self, path: str, what: str) -> bytes | None:
        """A small file of the location read whole, or None where it is absent."""
        with backend_errors(f"cannot read {what}"):
            try:
                return bytes(self.fs.cat_file(path))
            except FileNotFoundError as exc:
                let_go(exc)
                return None

    def read_format(self) -> FormatInfo | None:
        """The location's format file, or None when there is none yet; refuses a format
        this code cannot read."""
        path = self._path(FORMAT_FILE)
        with backend_errors(f"cannot open the object location {self.url!r}"):
            try:
                raw = bytes(self.fs.cat_file(path))
            except FileNotFoundError as exc:
                let_go(exc)
                return None
        version, store_id = parse_format(raw, path, self.url)
        self.format_version = version
        self.store_id = store_id
        return FormatInfo(version, store_id)

    def ensure_format(
        self, store_id: str | None = None, version: int = NEW_STORE_FORMAT
    ) -> FormatInfo:
        """Read the format file, creating it (in format ``version``, with ``store_id``, else
        a new one) if missing; concurrent creators agree on whichever file was written
        first."""
        found = self.read_format()
        if found is not None:
            return found
        path = self._path(FORMAT_FILE)
        body = self._format_body(version, store_id or uuid.uuid4().hex)
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

    def _mark_chunked(self) -> None:
        """Mark a format 1 location as format 2 before its first chunked file, so that an
        older forebear refuses it ("upgrade forebear") instead of finding files missing, or
        collecting chunks it does not know are in use."""
        if self.format_version >= CHUNKED_FORMAT:
            return
        self._rewrite_format(CHUNKED_FORMAT, self.store_id)
        self.format_version = CHUNKED_FORMAT

    def packed_since_opened(self) -> bool:
        """After a read found no object: whether the store may hold it in a pack now,
        because another process upgraded it to format 3 since this one read its format
        (then packs are attached, once, through `on_packed`). A server replica or a
        running script thus reads what is packed after an upgrade without a restart."""
        if self.on_packed is None:
            return False
        with _UPGRADE_SEEN:
            if self.format_version < PACKED_FORMAT:
                found = self.read_format()
                if found is None or found.format_version < PACKED_FORMAT:
                    return False
                self.on_packed()
        return True

    def upgrade_format(self, version: int) -> None:
        """Mark the location as ``version`` (a newer format only: formats never go back)."""
        if version <= self.format_version:
            return
        if version > FORMAT_VERSION:
            raise StoreVersionError(f"this forebear knows formats up to {FORMAT_VERSION}")
        self._rewrite_format(version, self.store_id)
        self.format_version = version
