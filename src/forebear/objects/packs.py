"""Packs: many small objects in one immutable file, so that a store of many small files
costs a few large writes and reads instead of one request or one file per object (format 3
of the storage format).

A pack is the concatenation of whole objects' bytes, stored at ``packs/<2 hex>/<30 hex>``
under the xxh3-128 digest of its own bytes. Beside it, ``<the same name>.idx`` lists each
object's digest, offset and length as canonical JSON: the location alone can rebuild the
catalog's index from these. A pack is written once, completely, before its name exists, and
never modified; every object read out of one is checked against its own digest (a pack is
never trusted as a whole).

Where an object is (`PackSlot`) is the catalog's to say: `PackIndex` is what it must
answer. `PackWriter` fills one pack in a local temporary file; `Packs` writes, reads and
lists the pack files of one location and keeps the writer of the objects being stored.
This module knows nothing of artifacts, versions or runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..chunking import ChunkRange
from ..direct import BlockFile
from ..errors import IntegrityError, ObjectNotFound, StoreError
from ..hashing import READ_FLAGS, Progress, hash_bytes, new_hasher
from ..processes import thread_pool
from ..readers import corrupted
from .copying import read_descriptor, read_up_to, zero_rest
from .formatfile import backend_errors, check_unchanged, missing

if TYPE_CHECKING:
    from .base import ObjectLocation

PACKS = "packs"
INDEX_SUFFIX = ".idx"
PACK_VERSION = 1
PACK_TARGET = 32 << 20  # a pack is sealed once it holds this many bytes
PACKED_BELOW = 8 << 20  # objects smaller than this are packed (every chunk, by default)
COALESCE_GAP = 1 << 20  # neighbours this close are read in one request
COALESCE_MAX = 4 << 20  # but no request reads more than this
PACK_DIGEST_RE = re.compile(r"[0-9a-f]{32}")
REMEMBERED_SLOTS = 20_000  # slots kept between lookups (a batch of reads asks for its own)
# Packs written but not yet recorded in the index wait to be recorded together, on
# `Packs.flush` or once they hold this many objects. Each transaction that records rows in
# random digest order rewrites most pages of the index (in SQLite, through the WAL), so
# fewer, larger ones cost less: a first log of 1,000,000 small files recorded 31 packs in
# 10.3 s one at a time.
UNRECORDED_OBJECTS = 200_000
# Local files packed under one hold of the writer's lock (other threads wait no longer).
FILES_AT_ONCE = 256
# ...or once the first of them has waited this long (checked as objects keep coming): gc
# removes a pack no writer recorded once it is an hour old (`STRAY_SECONDS` in gc).
UNRECORDED_SECONDS = 60.0


Recorder = Callable[[str, int, Mapping[str, tuple[int, int]]], None]  # pack, size, slots


class PackSlot(NamedTuple):
    """Where one object's bytes are: ``length`` bytes at ``offset`` in the pack named
    ``pack``."""

    pack: str
    offset: int
    length: int


class PackIndex(ABC):
    """Where packed objects are (the catalog's ``packed_objects`` table)."""

    @abstractmethod
    def locate(self, digests: Collection[str]) -> dict[str, PackSlot]:
        """The slot of each of ``digests`` that is packed (any one, if several)."""

    @abstractmethod
    def record(self, pack: str, size: int, slots: Mapping[str, tuple[int, int]]) -> None:
        """Remember a pack written whole: its size and each object's (offset, length)."""

    def record_many(self, packs: Sequence[WrittenPack]) -> None:
        """Remember several packs written whole (in one transaction, where it can)."""
        for pack in packs:
            self.record(pack.digest, pack.size, pack.slots)


class WrittenPack(NamedTuple):
    """A pack written whole, to record: its digest, size and each object's slot (and when
    it was written, by `time.monotonic`)."""

    digest: str
    size: int
    slots: Mapping[str, tuple[int, int]]
    written_at: float = 0.0


def byte_range(offset: int, length: int) -> str:
    """An HTTP ``Range`` of ``length`` bytes (at least one) from ``offset``."""
    return f"bytes={offset}-{offset + length - 1}"


def pack_key(pack: str) -> str:
    return f"{PACKS}/{pack[:2]}/{pack[2:]}"


def encode_index(pack: str, size: int, slots: Mapping[str, tuple[int, int]]) -> bytes:
    """A pack's index, canonical JSON: objects in offset order as [digest, offset, length]."""
    rows = [[d, o, n] for d, (o, n) in sorted(slots.items(), key=lambda item: item[1])]
    body = {"objects": rows, "pack": pack, "pack_version": PACK_VERSION, "size": size}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode_index(data: bytes, pack: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """The size and slots an index file says its pack ``pack`` holds; `StoreError` when it
    is not one, or not that pack's."""
    try:
        body = json.loads(data)
        if body["pack"] != pack or body["pack_version"] != PACK_VERSION:
            raise ValueError(f"it describes pack {body['pack']!r}")
        size = int(body["size"])
        slots = {str(d): (int(o), int(n)) for d, o, n in body["objects"]}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise StoreError(f"the index of pack {pack} is not readable ({exc})") from exc
    for offset, length in slots.values():
        if not possible_slot(offset, length, size):
            raise StoreError(f"the index of pack {pack} points outside it")
    return size, slots


class SealedPack(NamedTuple):
    path: str  # the finished local temporary file
    digest: str
    size: int
    slots: dict[str, tuple[int, int]]


def runs_in_packs(
    digests: Sequence[str], sizes: Sequence[int], slots: Mapping[str, PackSlot]
) -> Iterator[tuple[int, int]]:
    """Objects to read end to end (each of its expected size) cut into runs, as (start,
    stop) indexes: packed neighbours that lie end to end in one pack, each of its expected
    size, form one run (one read fills them all); any other object is a run alone."""
    start = 0
    while start < len(digests):
        stop = start + 1
        slot = slots.get(digests[start])
        if slot is not None and slot.length == sizes[start]:
            while stop < len(digests):
                following = slots.get(digests[stop])
                if following is None or following != (
                    slot.pack,
                    slot.offset + slot.length,
                    sizes[stop],
                ):
                    break
                slot = following
                stop += 1
        yield start, stop
        start = stop


class PackWriter:
    """One pack being filled: objects appended to a temporary file in ``folder``, each
    checked against its digest before it is, and the pack's own digest computed as it
    grows. Not thread-safe on its own: `Packs` serialises the calls.

    ``durable``: the file is synced when sealed, for a pack renamed into place on this
    machine, and written around the page cache where the filesystem allows it (see
    `forebear.direct`); one that is uploaded (to S3, or a bundle to a server) is
    read back at once, so it stays in the cache and is not synced."""

    def __init__(self, folder: str, *, durable: bool = True) -> None:
        self.durable = durable
        os.makedirs(folder, exist_ok=True)
        import tempfile  # a store that writes no pack does without it

        descriptor, self.path = tempfile.mkstemp(prefix=f"{os.getpid()}-", dir=folder)
        self.file = BlockFile(descriptor, direct=durable)
        self.hasher = new_hasher()
        self.size = 0
        self.slots: dict[str, tuple[int, int]] = {}

    def add(self, digest: str, data: bytes | memoryview, source: str) -> None:
        if digest in self.slots:
            return
        actual = hash_bytes(data)
        if actual != digest:  # the source changed since it was hashed: store nothing of it
            check_unchanged(source, digest, actual)
        self.file.write(data)
        self.hasher.update(data)
        self.slots[digest] = (self.size, len(data))
        self.size += len(data)

    def add_file(
        self, digest: str, fd: int, size: int, source: str, offset: int | None = None
    ) -> None:
        """`add` for a local file of ``size`` bytes open as ``fd`` (or its ``size`` bytes
        at ``offset``: a chunk), read straight into the pack's block (one copy fewer: what
        counts when packing many small files or chunks) and checked there before it is
        kept."""
        if digest in self.slots:
            return

        def accept(data: memoryview) -> None:
            actual = hash_bytes(data)
            if actual != digest:  # changed (or grew: a byte more was asked for)
                check_unchanged(source, digest, actual)
            self.hasher.update(data)

        count = self.file.read_in(fd, size, accept, offset)
        if count is None:  # the block is nearly full: through a buffer of its own
            data = (
                read_descriptor(fd, size + 1)
                if offset is None
                else read_up_to(ChunkRange(fd, offset, size), size)  # type: ignore[arg-type]
            )
            self.add(digest, data, source)
            return
        self.slots[digest] = (self.size, count)
        self.size += count

    def seal(self) -> SealedPack:
        """Finish the file (flushed, and synced when ``durable``: a pack's index is
        recorded only once its bytes are on disk)."""
        self.file.finish(sync=self.durable)
        self.file.close()
        return SealedPack(self.path, self.hasher.hexdigest(), self.size, self.slots)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Packs:
    """The pack files of one object location, and the pack being filled by this process.

    ``index`` answers where objects are; objects below ``packed_below`` bytes that a writer
    stores go into the current pack, which is sealed, written and recorded once it holds
    ``target`` bytes, and at the latest on `flush` (before the commit that relies on it)."""

    def __init__(
        self,
        location: ObjectLocation,
        index: PackIndex,
        *,
        target: int = PACK_TARGET,
        packed_below: int = PACKED_BELOW,
    ) -> None:
        self.location = location
        self.index = index
        self.target = target
        self.packed_below = packed_below
        self.writer: PackWriter | None = None
        self.lock = threading.Lock()
        self.known: dict[str, PackSlot] = {}  # slots looked up lately (reads come in runs)
        self.unrecorded: list[WrittenPack] = []  # written whole, in the index on `flush`
        self.unrecorded_objects = 0

    # -- paths ---------------------------------------------------------------------------

    def path(self, pack: str, suffix: str = "") -> str:
        """Where pack ``pack`` is; a name that is not a digest (a tampered catalog) is
        refused, so no path outside ``packs/`` is ever read."""
        if not PACK_DIGEST_RE.fullmatch(pack):
            raise StoreError(f"the catalog names a pack {pack!r:.40}, which is not a digest")
        root = self.location.root
        key = pack_key(pack) + suffix
        return f"{root}/{key}" if root else key

    def new_writer(self) -> PackWriter:
        """A pack to fill: on this filesystem and synced when the location is local (it is
        renamed into place), else in the temporary folder, uploaded once sealed."""
        if self.location.is_local:
            return PackWriter(f"{self.location.root}/tmp")
        import tempfile

        return PackWriter(tempfile.gettempdir(), durable=False)

    # -- writing -------------------------------------------------------------------------

    def takes(self, size: int) -> bool:
        return size < self.packed_below

    def add(self, digest: str, data: bytes, source: str) -> None:
        """Put one object into the current pack (sealing it when full)."""
        with self.lock, backend_errors(f"cannot store {source!r}"):
            self._into_writer(lambda writer: writer.add(digest, data, source))

    def _into_writer(self, put: Callable[[PackWriter], None]) -> None:
        """``put`` something into the current pack, the lock held, sealing it when full."""
        if self.writer is None:
            self.writer = self.new_writer()
        try:
            put(self.writer)
        except IntegrityError:  # the source changed: nothing of it was written
            raise
        except BaseException:  # a failed write (a full disk): the pack cannot be trusted
            self.writer.discard()
            self.writer = None
            raise
        if self.writer.size >= self.target:
            self.seal_current()
        elif self.unrecorded and self.overdue():
            self.record_written()

    def add_files(
        self, files: Sequence[tuple[str, str, int]], progress: Progress | None = None
    ) -> None:
        """Put local files, each (path, digest, size when hashed), into the current pack
        one after the other, each read straight into it (see `PackWriter.add_file`)."""
        for start in range(0, len(files), FILES_AT_ONCE):
            with self.lock:
                for path, digest, size in files[start : start + FILES_AT_ONCE]:
                    with backend_errors(f"cannot store {path!r}"):
                        self._add_file(path, digest, size)
                    if progress is not None:
                        progress(size)

    def add_chunk(self, fd: int, offset: int, size: int, digest: str, source: str) -> None:
        """Put the ``size`` bytes at ``offset`` of the open file ``fd`` into the current
        pack, read straight into it and checked there (see `PackWriter.add_file`)."""
        with self.lock, backend_errors(f"cannot store {source!r}"):
            self._into_writer(lambda writer: writer.add_file(digest, fd, size, source, offset))

    def _add_file(self, path: str, digest: str, size: int) -> None:
        """One file into the current pack, the lock held (see `add`)."""
        fd = os.open(path, READ_FLAGS)
        try:
            self._into_writer(lambda writer: writer.add_file(digest, fd, size, path))
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Seal and write the current pack, if any, and record every pack written."""
        with self.lock, backend_errors("cannot write a pack"):
            if self.writer is not None:
                self.seal_current()
            self.record_written()

    def overdue(self) -> bool:
        """Whether the packs waiting to be recorded must be recorded now."""
        return (
            self.unrecorded_objects >= UNRECORDED_OBJECTS
            or time.monotonic() - self.unrecorded[0].written_at >= UNRECORDED_SECONDS
        )

    def record_written(self) -> None:
        """Record the packs written and not yet in the index, in one go."""
        if self.unrecorded:
            self.index.record_many(self.unrecorded)
            self.unrecorded = []  # a new list: lookups may be going through the old one
            self.unrecorded_objects = 0

    def seal_current(self) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            sealed = writer.seal()
            self.publish(sealed)
        finally:
            writer.discard()

    def publish(self, sealed: SealedPack, record: Recorder | None = None) -> None:
        """Write the pack, then its index copy, then record it: with ``record`` at once,
        inside a caller's transaction, else with the packs written after it (`flush`
        records them all before a commit relies on them, and this process finds their
        objects meanwhile). An index row never names a pack that is not whole."""
        with backend_errors(f"cannot write pack {sealed.digest}"):
            self.location.store_file(sealed.path, self.path(sealed.digest))
        self.write_index(sealed.digest, sealed.size, sealed.slots)
        if record is not None:
            record(sealed.digest, sealed.size, sealed.slots)
        else:
            written = WrittenPack(sealed.digest, sealed.size, sealed.slots, time.monotonic())
            self.unrecorded.append(written)
            self.unrecorded_objects += len(sealed.slots)
            if self.overdue():
                self.record_written()
        if len(sealed.slots) > REMEMBERED_SLOTS:  # more than are kept: looked up when read
            self.known.clear()  # and no older place of theirs is remembered either
        else:
            self.remember(
                {d: PackSlot(sealed.digest, offset, n) for d, (offset, n) in sealed.slots.items()}
            )  # the newest place of each

    def adopt(self, sealed: SealedPack) -> None:
        """Publish a pack written elsewhere (a hashing worker's staging file, synced, in
        this location's temporary folder): the file is renamed into place, not copied."""
        with self.lock:
            self.publish(sealed)

    def remember(self, slots: Mapping[str, PackSlot]) -> None:
        """Keep these places (at most `REMEMBERED_SLOTS`: memory stays flat)."""
        if len(self.known) + len(slots) > REMEMBERED_SLOTS:
            self.known.clear()
        if len(slots) <= REMEMBERED_SLOTS:
            self.known.update(slots)

    # -- reading -------------------------------------------------------------------------

    def locate(self, digests: Iterable[str], *, fresh: bool = False) -> dict[str, PackSlot]:
        """Where each of ``digests`` that is packed is: from the slots looked up lately
        unless ``fresh``, else from the index (and remembered, a bounded number)."""
        wanted = set(digests)
        known = self.known  # other threads may clear it meanwhile: one lookup per digest
        found = {} if fresh else {d: s for d in wanted if (s := known.get(d)) is not None}
        missing = wanted - found.keys()
        for pack in self.unrecorded if missing else ():
            # one set intersection a pack, in C: a log of a large file asks about each new
            # chunk, and one lookup a chunk and pack took 0.2 s of the first log of a 2 GiB
            # file (64 packs written, not yet recorded)
            for digest in pack.slots.keys() & missing:
                found[digest] = PackSlot(pack.digest, *pack.slots[digest])
                missing.discard(digest)
        if missing:
            looked_up = self.index.locate(missing)
            for digest, place in looked_up.items():
                _check_slot(digest, place)
            self.remember(looked_up)
            found.update(looked_up)
        return found

    def read_stored(self, digest: str, slot: PackSlot, label: str) -> bytes:
        """One packed object's stored bytes, unchecked (the caller checks them). A pack
        that is gone was repacked meanwhile: the object is looked up again, once."""
        with backend_errors(f"cannot read {label}"):
            try:
                return self.location.read_range(self.path(slot.pack), slot.offset, slot.length)
            except FileNotFoundError:
                self.known.pop(digest, None)
                moved = self.locate([digest], fresh=True).get(digest)
                if moved is None or moved == slot:
                    raise missing(self.location.url, digest, label) from None
                return self.location.read_range(self.path(moved.pack), moved.offset, moved.length)

    def read_run_into(
        self,
        digests: Sequence[str],
        sizes: Sequence[int],
        slots: Mapping[str, PackSlot],
        view: memoryview,
        name: Callable[[int], str],
        first: int = 0,
    ) -> None:
        """Packed neighbours' stored bytes, unchecked, end to end into ``view`` in one read
        (see `runs_in_packs`; ``name(first + i)`` names the i-th in an error). A pack that
        is gone was repacked meanwhile: the run is then looked up again at once and each
        object read alone, as is an object whose length is not its size."""
        slot = slots[digests[0]]
        if len(digests) > 1 or slot.length == sizes[0]:
            with backend_errors(f"cannot read {name(first)}"):
                try:
                    self.location.read_range_into(self.path(slot.pack), slot.offset, view)
                    return
                except FileNotFoundError:
                    for digest in digests:
                        self.known.pop(digest, None)
                    slots = {**slots, **self.locate(digests, fresh=True)}
        offset = 0
        for index, (digest, size) in enumerate(zip(digests, sizes, strict=True)):
            data = self.read_stored(digest, slots[digest], name(first + index))
            with view[offset : offset + size] as place:
                place[: min(len(data), size)] = data[:size]
                zero_rest(place, len(data))
            offset += size

    def read_checked(
        self, slots: Mapping[str, PackSlot], labels: Mapping[str, str], workers: int
    ) -> Iterator[tuple[str, bytes | memoryview]]:
        """Packed objects' bytes, each checked against its digest (see `read_many`)."""
        with backend_errors("cannot read packed objects"):
            for digest, data in self.read_many(slots, workers):
                name = labels.get(digest) or f"object {digest}"
                if data is None:
                    raise missing(self.location.url, digest, name)
                if (actual := hash_bytes(data)) != digest:
                    raise corrupted(name, actual, digest)
                yield digest, data

    def read_many(
        self, slots: Mapping[str, PackSlot], workers: int = 1
    ) -> Iterator[tuple[str, bytes | memoryview | None]]:
        """Many packed objects' stored bytes, unchecked, neighbours in one request each
        (``workers`` requests at a time): (digest, bytes) in pack and offset order; None
        for an object that is missing."""
        groups = list(coalesce(slots))
        with thread_pool(max(1, workers)) as pool:
            for start in range(0, len(groups), max(1, workers)):  # a bounded window in flight
                window = groups[start : start + max(1, workers)]
                for found in pool.map(self._read_group, window):
                    yield from found

    def _read_group(
        self, group: tuple[str, int, int, list[tuple[str, PackSlot]]]
    ) -> list[tuple[str, bytes | memoryview | None]]:
        pack, start, end, members = group
        try:
            data = self.location.read_range(self.path(pack), start, end - start)
        except FileNotFoundError:  # repacked meanwhile (or lost): one at a time
            found: list[tuple[str, bytes | memoryview | None]] = []
            for digest, slot in members:
                try:
                    found.append((digest, self.read_stored(digest, slot, f"object {digest}")))
                except ObjectNotFound:
                    found.append((digest, None))
            return found
        view = memoryview(data)  # slices, not copies: a window of groups in flight costs half
        return [
            (digest, view[slot.offset - start : slot.offset - start + slot.length])
            for digest, slot in members
        ]

    def write_index(self, pack: str, size: int, slots: Mapping[str, tuple[int, int]]) -> None:
        """Publish the index copy of a pack written (or replace a damaged one)."""
        with backend_errors(f"cannot write the index of pack {pack}"):
            self.location.store_small(
                self.path(pack, INDEX_SUFFIX), encode_index(pack, size, slots)
            )

    def read_index(self, pack: str) -> tuple[int, dict[str, tuple[int, int]]]:
        data = self.location.read_small(self.path(pack, INDEX_SUFFIX))
        if data is None:
            raise StoreError(f"pack {pack} has no index file beside it")
        return decode_index(data, pack)


def possible_slot(offset: object, length: object, within: int | None = None) -> bool:
    """Whether a writer could have recorded this place (a damaged or forged index row or
    copy may say anything), inside a pack of ``within`` bytes when that is known."""
    if type(offset) is not int or type(length) is not int or min(offset, length) < 0:
        return False
    return within is None or offset + length <= within


def _check_slot(digest: str, slot: PackSlot) -> None:
    """Refuse an impossible place before it is used to read."""
    offset, length = slot.offset, slot.length
    if not possible_slot(offset, length):
        raise StoreError(
            f"the pack index places object {digest} at offset {offset!r}, length "
            f"{length!r} of pack {slot.pack}: the index is damaged; 'forebear "
            "rebuild-index' rebuilds it from the packs"
        )


def coalesce(
    slots: Mapping[str, PackSlot],
) -> Iterator[tuple[str, int, int, list[tuple[str, PackSlot]]]]:
    """Group slots into ranged reads: (pack, start, end, members), neighbours in one pack
    merged when the gap between them is small and the read stays bounded."""
    ordered = sorted(slots.items(), key=lambda item: (item[1].pack, item[1].offset))
    group: list[tuple[str, PackSlot]] = []
    pack, start, end = "", 0, 0
    for digest, slot in ordered:
        stop = slot.offset + slot.length
        if (
            group
            and slot.pack == pack
            and slot.offset - end <= COALESCE_GAP
            and stop - start <= COALESCE_MAX
        ):
            group.append((digest, slot))
            end = max(end, stop)
            continue
        if group:
            yield pack, start, end, group
        group, pack, start, end = [(digest, slot)], slot.pack, slot.offset, stop
    if group:
        yield pack, start, end, group
