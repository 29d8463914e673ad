"""Write-once, content-addressed objects on one fsspec filesystem: what every object
location does, whatever holds it.

Layout under the location's root::

    forebear.json                  format version, hash algorithm and store id, checked on open
    objects/<2 hex>/<30 hex>       one immutable blob per xxh3-128 digest
    chunklists/<2 hex>/<30 hex>    how the file with that digest is made of chunk objects
    packs/<2 hex>/<30 hex>[.idx]   (format 3) many small objects in one file, and its index
    tmp/                           in-flight local writes, renamed into objects/ or packs/

An object gets its final name only once every byte was written and the written bytes hash
to that name (see `LocalLocation` and `RemoteLocation` for how). An object that a writer
relies on for deduplication must at least have the right size. Reads check every byte
before handing it over (see `readers`). This package knows nothing of artifacts, versions
or runs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from abc import abstractmethod
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, BinaryIO

from ..chunking import ChunkList
from ..destination import save_stream
from ..errors import StoreError
from ..hashing import Progress, hash_bytes, hash_stream
from ..readers import checked_at_end, corrupted, verified_copy
from .copying import Joined, copy_hashing, read_file_head, read_up_to, write_all, zero_rest
from .formatfile import (
    CHUNKED_FORMAT,
    DIGEST_RE,
    FORMAT_FILE,
    FORMAT_VERSION,
    NEW_STORE_FORMAT,
    PACKED_FORMAT,
    FormatFile,
    FormatInfo,
    backend_errors,
    check_unchanged,
    found_after_upgrade,
    let_go,
    missing,
)  # fmt: skip
from .listing import StoredObject, modified_time
from .packs import PACKS, PackIndex, Packs, PackSlot, runs_in_packs

if TYPE_CHECKING:
    import fsspec

__all__ = [  # what the location modules and the package take from here
    "CHUNKED_FORMAT", "DIGEST_RE", "FORMAT_FILE", "FORMAT_VERSION", "NEW_STORE_FORMAT",
    "PACKED_FORMAT", "FormatInfo", "backend_errors", "check_unchanged", "copy_hashing",
    "missing", "write_all",
]  # fmt: skip
SMALL_BATCH = 16  # up to this many objects, check each; beyond, list their prefixes
TRANSFER_WORKERS = 8  # concurrent requests to a remote location
PACKED_READERS = 4  # concurrent ranged reads of packs (each up to 4 MiB) from a remote one
DELETE_BATCH = 10_000  # paths handed to the filesystem's bulk removal at once
CHUNK_LISTS = "chunklists"
OBJECT_NAME_RE = re.compile(r"^[0-9a-f]{30}$")
OBJECT_NAMES_RE = re.compile(r"[0-9a-f]{30}(?:\n[0-9a-f]{30})*")  # names joined by newlines
PREFIX_RE = re.compile(r"^[0-9a-f]{2}$")
Namer = Callable[[int], str]  # the name of the i-th of some objects, for an error


def object_key(digest: str) -> str:
    """Relative key of an object: ``objects/<first 2 hex>/<remaining 30 hex>``."""
    return f"objects/{digest[:2]}/{digest[2:]}"


class ObjectLocation(FormatFile):
    """The object half of a store: blobs named by digest on an fsspec filesystem.

    Made by `open_location`, which picks `LocalLocation` for a local folder and
    `RemoteLocation` for any other filesystem. Capabilities, as flags rather than type
    checks: ``is_local`` (objects are files on this machine: downloads may link or clone
    them, and writes can be made durable with one sync).

    In format 3 the store attaches a pack index (`attach_packs`): objects a writer stores
    below a size go into packs, and every read, size and presence check looks there first,
    then among the loose objects (which a format 3 store keeps reading).
    """

    is_local = False

    def __init__(self, url: str, fs: fsspec.AbstractFileSystem | None, root: str) -> None:
        self.url = url
        self.fs = fs
        self.root: str = root.rstrip("/") if root not in ("/", "") else root
        self.format_version = NEW_STORE_FORMAT
        self.store_id: str | None = None
        self.packs: Packs | None = None

    def attach_packs(self, index: PackIndex, **options: int) -> Packs:
        """Keep small objects in packs from now on, found through ``index``."""
        self.packs = Packs(self, index, **options)
        return self.packs

    def packed(self, digests: Iterable[str]) -> dict[str, PackSlot]:
        """Where each of ``digests`` that is packed is (empty without packs)."""
        return self.packs.locate(digests) if self.packs is not None else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def path_of(self, digest: str) -> str:
        return self._path(object_key(digest))

    def holds_objects(self) -> bool:
        """Whether any object, chunk list or pack is stored here (a listing or three)."""
        return any(self._prefixes(folder) for folder in ("objects", CHUNK_LISTS, PACKS))

    def has(self, digest: str, size: int | None = None) -> bool:
        """Whether the object is stored (with ``size`` bytes, when given)."""
        found = self._stored_size(digest)
        return found is not None and (size is None or found == size)

    def _packed_bytes(self, digest: str, name: str) -> bytes | None:
        """A packed object's stored bytes, unchecked; None when it is not packed."""
        slot = self.packed([digest]).get(digest)
        if slot is None or self.packs is None:
            return None
        return self.packs.read_stored(digest, slot, name)

    def _stored_size(self, digest: str) -> int | None:
        slot = self.packed([digest]).get(digest)
        return slot.length if slot is not None else self._size_or_none(digest)

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """The stored size of each of ``digests`` that is present, packed or loose, as the
        index says now: the slots a long-lived location remembers for reading may name
        packs a gc elsewhere has deleted since (a read finds that out; what is present,
        which a writer relies on instead of storing, must not be taken from them)."""
        wanted = set(digests)
        located = self.packs.locate(wanted, fresh=True) if self.packs is not None else {}
        found = {digest: slot.length for digest, slot in located.items()}
        if len(found) < len(wanted):
            found.update(self._loose_sizes(wanted - found.keys()))
        return found

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
            except FileNotFoundError as exc:
                let_go(exc)
                return []
        found = []
        for entry in entries:
            rest = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") == "directory" or not OBJECT_NAME_RE.fullmatch(rest):
                continue
            if prefix + rest not in skip:
                found.append(StoredObject(prefix + rest, int(entry["size"]), modified_time(entry)))
        return found

    def _prefixes(self, folder: str) -> list[str]:
        """The two-hex prefix folders under ``folder``, sorted."""
        base = self._path(folder)
        with backend_errors(f"cannot list {base!r}"):
            try:
                names = self.fs.ls(base, detail=False, refresh=True)
            except FileNotFoundError as exc:
                let_go(exc)
                return []
        found = (str(name).rstrip("/").rsplit("/", 1)[-1] for name in names)
        return sorted(prefix for prefix in found if PREFIX_RE.fullmatch(prefix))

    @found_after_upgrade
    def size_of(self, digest: str) -> int:
        size = self._stored_size(digest)
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
        if (packed := self._packed_bytes(digest, name)) is not None:
            return io.BytesIO(packed)
        with backend_errors(f"cannot read {name}"):
            try:
                return self.fs.open(self.path_of(digest), "rb")  # type: ignore[no-any-return]
            except FileNotFoundError as exc:
                raise missing(self.url, digest, name) from exc

    @found_after_upgrade
    def open(self, digest: str, label: str | None = None) -> BinaryIO:
        """A seekable stream of the object's bytes, all checked before the first is handed
        over (`IntegrityError` when they are corrupted)."""
        name = label or f"object {digest}"
        raw = self._open_raw(digest, name)
        with backend_errors(f"cannot read {name}"):
            return verified_copy(raw, digest, name)

    @found_after_upgrade
    def stream(self, digest: str, label: str | None = None) -> io.BufferedReader:
        """The object's bytes as they arrive, checked when the stream reaches its end: for
        callers that keep nothing until then (a temporary file renamed afterwards)."""
        name = label or f"object {digest}"
        return checked_at_end(self._open_raw(digest, name), digest, name)

    @found_after_upgrade
    def read_bytes(self, digest: str, label: str | None = None) -> bytes:
        """A (small) object's bytes, checked before they are returned: read whole and
        hashed once (a chunk of a large file is read this way, so this is the speed of
        reading one)."""
        name = label or f"object {digest}"
        data = self._stored_bytes(digest, name)
        actual = hash_bytes(data)
        if actual != digest:
            raise corrupted(name, actual, digest)
        return data

    def will_need(self, digests: Sequence[str]) -> None:
        """A hint that these objects are about to be read (a local disk starts reading
        them); where they are packed, their places are looked up at once."""
        self.packed(digests)

    @found_after_upgrade
    def read_into(
        self, digests: Sequence[str], sizes: Sequence[int], view: memoryview, name: Namer
    ) -> None:
        """Put objects' stored bytes, unchecked, end to end into ``view``: ``sizes[i]``
        bytes for the i-th (what the caller expects it to hold; ``name(i)`` names it in an
        error; where it holds fewer, the rest of its place is zeroed). The caller checks
        each before handing any over: a chunked reader reads whole chunks into its caller's
        buffer this way. Packed neighbours are read in one request, straight in."""
        slots = self.packed(digests)
        offset = 0
        for start, stop in runs_in_packs(digests, sizes, slots):
            length = sum(sizes[start:stop])
            with view[offset : offset + length] as part:
                if self.packs is not None and digests[start] in slots:
                    run = digests[start:stop], sizes[start:stop]
                    self.packs.read_run_into(*run, slots, part, name, start)
                else:
                    self._read_loose_into(digests[start], part, functools.partial(name, start))
            offset += length

    def _read_loose_into(self, digest: str, view: memoryview, name: Callable[[], str]) -> None:
        """A loose object's stored bytes into ``view`` (``name()`` names it in an error)."""
        with backend_errors(f"cannot read {name()}"):
            data = self._read_whole(digest, name())
        view[: min(len(data), len(view))] = data[: len(view)]
        zero_rest(view, len(data))

    def _stored_bytes(self, digest: str, name: str) -> bytes:
        """An object's stored bytes, packed or loose, unchecked."""
        if (packed := self._packed_bytes(digest, name)) is not None:
            return packed
        with backend_errors(f"cannot read {name}"):
            return self._read_whole(digest, name)

    def _read_whole(self, digest: str, name: str) -> bytes:
        """A loose object's stored bytes, unchecked (`read_bytes` checks them)."""
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
        if (packed := self._packed_bytes(digest, f"object {digest}")) is not None:
            return packed
        return self._read_or_none(self.path_of(digest), f"object {digest}")

    def actual_digest(self, digest: str) -> str | None:
        """Re-hash a stored object: its actual digest, or None when it is missing."""
        if (packed := self._packed_bytes(digest, f"object {digest}")) is not None:
            return hash_bytes(packed)
        with backend_errors(f"cannot read object {digest}"):
            try:
                with self.fs.open(self.path_of(digest), "rb") as f:
                    return hash_stream(f)[0]
            except FileNotFoundError as exc:
                let_go(exc)
                return None

    # -- writes: small objects into the current pack when there are packs ---------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (small blobs such as manifests) and return its digest."""
        if self.packs is None or not self.packs.takes(len(data)):
            return self._put_loose_bytes(data)
        digest = hash_bytes(data)
        if not self.has(digest, len(data)):
            self.packs.add(digest, data, "a blob")
        return digest

    def put_file(
        self,
        local_path: str | os.PathLike[str],
        digest: str,
        progress: Progress | None = None,
        *,
        known_missing: bool = False,
        size: int | None = None,
    ) -> bool:
        """Store a local file under its known ``digest``; return False if already stored.
        A file that changed since it was hashed is refused (see `put_stream`). ``size``: its
        size when it was hashed, if known (a file that differs fails its digest check)."""
        source = os.fspath(local_path)
        with backend_errors(f"cannot store {source!r}"):
            size = os.path.getsize(source) if size is None else size
            if self.packs is None or not self.packs.takes(size):
                return self._put_loose_file(source, digest, progress, known_missing=known_missing)
            if not known_missing and self.has(digest, size):
                return False
            # a byte more than its size shows a file that grew (asking for the whole
            # threshold would allocate it for every small file)
            data = read_file_head(source, min(size + 1, self.packs.packed_below))
        self.packs.add(digest, data, source)
        if progress is not None:
            progress(len(data))
        return True

    def put_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
        pack: bool = True,
    ) -> None:
        """Store a stream's bytes under ``digest``, hashing them on the way; nothing becomes
        visible under the digest unless they match. ``pack=False`` stores it loose whatever
        its size: for bytes that must be visible before any flush (a server's uploads)."""
        if self.packs is None or not pack:
            return self._put_loose_stream(src, digest, progress, source=source)
        head = read_up_to(src, self.packs.packed_below)
        if len(head) < self.packs.packed_below:  # all of it: small enough for a pack
            self.packs.add(digest, head, source)
            if progress is not None:
                progress(len(head))
            return None
        rest = Joined(head, src)
        return self._put_loose_stream(rest, digest, progress, source=source)  # type: ignore[arg-type]

    def put_files(
        self,
        items: Sequence[tuple[str | os.PathLike[str], str]],
        progress: Progress | None = None,
        sizes: Mapping[str, int] | None = None,
    ) -> None:
        """Store several missing files (the small ones into packs, one after the other);
        ``sizes``: each digest's size when it was hashed, where known."""
        if self.packs is None:
            return self._put_loose_files(items, progress)
        takes = self.packs.takes
        sized = [(p, d, (sizes or {}).get(d) or os.path.getsize(p)) for p, d in items]
        self.packs.add_files([(os.fspath(p), d, n) for p, d, n in sized if takes(n)], progress)
        return self._put_loose_files([(p, d) for p, d, n in sized if not takes(n)], progress)

    def put_chunked_file(
        self, local_path: str, chunks: ChunkList, missing: set[str], progress: Progress
    ) -> bool:
        """Store a cut file's ``missing`` chunks in one stream, where that proves its chunk
        list as it goes (a server); False: store them one by one instead."""
        return False

    def flush(self) -> None:
        """Make the objects written so far durable before a commit makes them reachable:
        the pack being filled is sealed, written and indexed first."""
        if self.packs is not None:
            self.packs.flush()
        self._flush_loose()

    def read_together(
        self, digests: Iterable[str], labels: Mapping[str, str]
    ) -> Iterator[tuple[str, bytes | memoryview]]:
        """Those of ``digests`` read with others in few requests (packed ones, with their
        neighbours), each checked; the others are left out, to read one at a time."""
        if self.packs is None or not (slots := self.packed(digests)):
            return iter(())
        return self.packs.read_checked(slots, labels, 1 if self.is_local else PACKED_READERS)

    def actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
        """Re-hash many stored objects: each one's actual digest, or None when missing
        (packed ones read with their neighbours)."""
        wanted = set(digests)
        found: dict[str, str | None] = {}
        if self.packs is not None and (slots := self.packed(wanted)):
            with backend_errors("cannot read packed objects"):
                for digest, data in self.packs.read_many(slots):
                    found[digest] = None if data is None else hash_bytes(data)
        found.update(self._loose_actual_digests(wanted - found.keys()))
        return found

    # -- what each kind of location does its own way ------------------------------------

    @abstractmethod
    def _size_or_none(self, digest: str) -> int | None:
        """One loose object's stored size, or None when it is missing."""

    @abstractmethod
    def _loose_sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """The stored size of each of ``digests`` present as a loose object."""

    @abstractmethod
    def _put_loose_bytes(self, data: bytes) -> str:
        """Store ``data`` as a loose object and return its digest."""

    @abstractmethod
    def put_chunk_list(self, digest: str, data: bytes, *, replace: bool = False) -> None:
        """Store how the file with ``digest`` is made of chunks (written once, atomically;
        an existing list of the same length is kept unless ``replace``, for repairs)."""

    @abstractmethod
    def _put_loose_file(
        self, local_path: str | os.PathLike[str], digest: str, progress: Progress | None = None,
        *, known_missing: bool = False,
    ) -> bool:  # fmt: skip
        """`put_file`, as a loose object."""

    @abstractmethod
    def _put_loose_stream(
        self, src: BinaryIO, digest: str, progress: Progress | None = None, *,
        source: str = "a stream",
    ) -> None:  # fmt: skip
        """`put_stream`, as a loose object."""

    @abstractmethod
    def _put_loose_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        """Store several missing files as loose objects."""

    @abstractmethod
    def _loose_actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
        """Re-hash many loose objects: each one's actual digest, or None when missing."""

    @abstractmethod
    def _flush_loose(self) -> None:
        """Make the loose objects written so far durable."""

    # -- pack files: what `Packs` writes and reads through ---------------------------------

    def store_file(self, local_path: str, path: str) -> None:
        """Publish a finished local file at ``path`` (a pack), whole or not at all."""
        self.fs.put_file(local_path, path)

    def store_small(self, path: str, data: bytes) -> None:
        """Publish a small file at ``path`` (a pack's index copy), whole or not at all."""
        self.fs.pipe_file(path, data)

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of the file at ``path``."""
        return bytes(self.fs.cat_file(path, start=offset, end=offset + length))

    def read_range_into(self, path: str, offset: int, view: memoryview) -> None:
        """The bytes at ``offset`` of the file at ``path`` into ``view`` (as many as there
        are: the rest is zeroed)."""
        data = self.read_range(path, offset, len(view))
        view[: len(data)] = data
        zero_rest(view, len(data))

    def read_small(self, path: str) -> bytes | None:
        return self._read_or_none(path, path)

    def remove_files(self, paths: Sequence[str]) -> None:
        """Remove files by path (those missing already are fine)."""
        with backend_errors(f"cannot delete files in {self.url!r}"):
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)

    def iter_packs(self) -> Iterator[StoredObject]:
        """Every pack file stored (their index copies are not listed)."""
        return self.iter_objects(PACKS)

    def clean_tmp(self, older_than: float) -> list[str]:
        """Remove in-flight files left by crashed writers (none where there are none)."""
        return []

    @found_after_upgrade
    def open_stored(self, digest: str) -> BinaryIO:
        """An object's stored bytes, unchecked, for someone who checks them (a client)."""
        return self._open_raw(digest, f"object {digest}")

    @property
    def can_presign(self) -> bool:
        """Whether `presigned_url` hands out URLs (an object store), or None."""
        return False

    def presigned_url(self, digest: str, seconds: int) -> tuple[str, str | None] | None:
        """A URL reading one object for ``seconds`` without credentials, and the ``Range``
        header it was signed with, which the reader must send (None: the whole key); None
        where there is no such URL."""
        return None

    def staged_uploads(self, digests: Sequence[str], seconds: int) -> dict[str, tuple[str, str]]:
        """For each of ``digests``, a URL taking one upload for ``seconds`` into a staging
        place (never an object's own key) and its staging id; empty where there are none."""
        return {}

    def publish_many(self, staged: dict[str, str]) -> None:
        """Check staged uploads (digest → staging id) against their digests; publish them."""
        raise StoreError(f"{self.url!r} takes no staged uploads")

    def read_staged(self, staging_id: str, key: str, limit: int) -> bytes:
        """One staged upload's bytes (at most ``limit``), its staged copy removed."""
        raise StoreError(f"{self.url!r} takes no staged uploads")

    def local_object(self, digest: str, label: str | None = None) -> str:
        """The local file holding an object (only where ``is_local``)."""
        raise StoreError(f"{self.url!r} holds no local files")
