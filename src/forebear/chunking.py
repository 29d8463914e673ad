"""Content-defined chunking (FastCDC 2020) of large files.

Chunk boundaries depend on the bytes around them, not on their offsets, so appending rows or
editing a block of a large file changes only the chunks that hold the change: the rest are
the chunks of the earlier version, already stored. A chunked file keeps its whole-file digest
(its identity); its `ChunkList` says which chunks, end to end, make it up.

This module knows nothing of stores, versions or runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from threading import Lock
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import IntegrityError, InvalidInput
from .hashing import HASH_ALGORITHM, hash_bytes, new_hasher, read_buffer
from .processes import PerProcess, thread_pool
from .readers import corrupted

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
ALGORITHM = "fastcdc-2020"
MIN_THRESHOLD = 64 << 10  # files below this size are never chunked, whatever the settings
ROUND = 8 << 20  # bytes of whole chunks read and checked at once (halves on two cores)
LANE_MINIMUM = 2 << 20  # rounds at least this large are read and checked on two cores
FILL_GROUP = 1 << 20  # bytes of chunks read at once, then checked while in the processor's cache
_PACKED = 20  # bytes per chunk in the packed form: a 16-byte digest, a 4-byte size


@dataclass(frozen=True)
class Chunking:
    """How large files are cut: files of at least ``threshold`` bytes, into chunks of
    ``avg_size`` bytes on average, never shorter than ``min_size`` (except the last) or
    longer than ``max_size``."""

    threshold: int
    avg_size: int
    min_size: int
    max_size: int
    algorithm: str = ALGORITHM

    @classmethod
    def around(cls, avg_size: int, threshold: int) -> Chunking:
        """The usual shape: a minimum of a quarter of the average, a maximum of four times."""
        return cls(threshold, avg_size, avg_size // 4, avg_size * 4)

    def __post_init__(self) -> None:
        if self.algorithm != ALGORITHM:
            raise InvalidInput(f"unknown chunking algorithm {self.algorithm!r}")
        in_range = (
            64 <= self.min_size <= 1 << 20
            and 256 <= self.avg_size <= 4 << 20
            and 1024 <= self.max_size <= 16 << 20
        )
        if not (in_range and self.min_size <= self.avg_size <= self.max_size):
            raise InvalidInput(
                f"invalid chunk sizes (min {self.min_size}, average {self.avg_size}, max "
                f"{self.max_size}): they must grow in that order, with the minimum from 64 "
                "bytes to 1 MiB, the average from 256 bytes to 4 MiB and the maximum from "
                "1 KiB to 16 MiB"
            )
        if self.threshold < max(self.max_size, MIN_THRESHOLD):
            raise InvalidInput(
                f"the chunking threshold ({self.threshold} bytes) must be at least the "
                f"largest chunk ({self.max_size} bytes) and at least {MIN_THRESHOLD} bytes"
            )

    def applies_to(self, size: int) -> bool:
        return size >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "threshold": self.threshold,
            "avg_size": self.avg_size,
            "min_size": self.min_size,
            "max_size": self.max_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunking:
        return cls(
            int(data["threshold"]),
            int(data["avg_size"]),
            int(data["min_size"]),
            int(data["max_size"]),
            str(data["algorithm"]),
        )


# Chosen from benchmarks/chunk_params.py on a 512 MiB table (docs/speed.md, "Chunking"):
# with a 512 KiB average, 1 % of rows appended stores 1.1 % of the file again and 1 % edited
# in one block 1.3 %, within 0.3 points of a 64 KiB average, in 8 times fewer objects (about
# 3,300 for 2 GiB: each is a file or a request). Below 8 MiB a file has too few chunks for a
# small edit to spare most of them, and stays one object.
DEFAULT_CHUNKING = Chunking.around(avg_size=512 << 10, threshold=8 << 20)
# In a store with packs (format 3) a chunk is a range of a pack, not a file or a request, so
# the count no longer costs: a 64 KiB average stores 1.3 % of a 44 MB table again for
# 1 % of its rows edited in one block (512 KiB: 3.8 %), and files from 1 MiB are cut.
PACKED_CHUNKING = Chunking.around(avg_size=64 << 10, threshold=1 << 20)


@dataclass(frozen=True)
class ChunkList:
    """The ordered chunks whose bytes, end to end, are the file with ``digest``."""

    digest: str
    size: int
    digests: tuple[str, ...]
    sizes: tuple[int, ...]
    chunking: Chunking

    def __post_init__(self) -> None:
        if len(self.digests) != len(self.sizes) or sum(self.sizes) != self.size:
            raise IntegrityError(
                f"the chunk list of {self.digest} is inconsistent: {len(self.digests)} "
                f"chunks of {sum(self.sizes)} bytes for a file of {self.size} bytes"
            )

    def __len__(self) -> int:
        return len(self.digests)

    @cached_property
    def offsets(self) -> list[int]:
        """Where each chunk starts in the file."""
        starts, position = [], 0
        for size in self.sizes:
            starts.append(position)
            position += size
        return starts

    def index_at(self, position: int) -> int:
        """The chunk holding byte ``position``."""
        return bisect_right(self.offsets, position) - 1

    def describe(self, index: int) -> str:
        """How errors name one chunk: its place, byte range and object."""
        return describe_chunk(
            index, self.offsets[index], self.sizes[index], self.digests[index], len(self)
        )

    @cached_property
    def key(self) -> str:
        """A digest of the whole list (the file's digest, every chunk's digest and size):
        what a record that this list makes its file is kept under, so that a list changed
        in any way is checked again. BLAKE2b, not xxh3: no one can make another list with
        the key of one already checked."""
        return hashlib.blake2b(self.digest.encode() + self.pack(), digest_size=16).hexdigest()

    def unique(self) -> dict[str, int]:
        """Each distinct chunk's digest and size (a chunk can repeat within a file)."""
        return dict(zip(self.digests, self.sizes, strict=True))

    # -- forms ------------------------------------------------------------------------

    def pack(self) -> bytes:
        """The compact form kept in the catalog: 16 digest bytes and 4 size bytes a chunk."""
        return b"".join(
            bytes.fromhex(d) + s.to_bytes(4, "big")
            for d, s in zip(self.digests, self.sizes, strict=True)
        )

    @classmethod
    def unpack(cls, digest: str, size: int, chunking: Chunking, packed: bytes) -> ChunkList:
        whole = len(packed) - len(packed) % _PACKED
        text = packed[:whole].hex()  # one conversion, then slices of it (a file has thousands)
        step = 2 * _PACKED
        digests = tuple(text[start : start + 32] for start in range(0, len(text), step))
        sizes = tuple(n for (n,) in struct.iter_unpack(">16xI", packed[:whole]))
        return cls(digest, size, digests, sizes, chunking)

    def to_bytes(self) -> bytes:
        """The canonical JSON stored in the object location beside the objects."""
        document = {
            "chunking": self.chunking.to_dict(),
            "chunks": [[d, s] for d, s in zip(self.digests, self.sizes, strict=True)],
            "digest": self.digest,
            "hash": HASH_ALGORITHM,
            "size": self.size,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ChunkList:
        try:
            document = json.loads(raw)
            return cls(
                str(document["digest"]),
                int(document["size"]),
                tuple(str(d) for d, _ in document["chunks"]),
                tuple(int(s) for _, s in document["chunks"]),
                Chunking.from_dict(document["chunking"]),
            )
        except (ValueError, KeyError, TypeError, InvalidInput, RecursionError) as exc:
            raise IntegrityError(f"unreadable chunk list: {exc}") from exc


def describe_chunk(index: int, start: int, size: int, digest: str, count: int | None) -> str:
    """How errors name one chunk of a file: its place (among ``count``, when known), byte
    range and object."""
    among = f" of {count}" if count is not None else ""
    return f"chunk {index + 1}{among} (bytes {start:,}-{start + size - 1:,}, object {digest})"


def cutter(chunking: Chunking) -> Any:
    """A FastCDC cutter with these settings (`cut_stream` / `cut_buf` yield the chunks)."""
    from pyfastcdc.cy import FastCDC  # 25 ms of imports: only when a large file is cut

    return FastCDC(chunking.avg_size, min_size=chunking.min_size, max_size=chunking.max_size)


def cut_bytes(data: bytes, chunking: Chunking) -> list[tuple[int, int]]:
    """The (offset, length) of each chunk of ``data``: what `forebear.cutting.FileCut` finds
    in a file."""
    return [(c.offset, c.length) for c in cutter(chunking).cut_buf(data)]


class ChunkRange:
    """A read-only stream of ``length`` bytes of an open file from ``offset``, read with
    ``pread`` so threads can share one descriptor."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd = fd
        self._position = offset
        self._left = length

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        data = os.pread(self._fd, wanted, self._position) if wanted else b""
        self._position += len(data)
        self._left -= len(data)
        return data


def in_order(fetch: Callable[[int], T], count: int, workers: int) -> Iterator[T]:
    """``fetch(0)`` to ``fetch(count - 1)``, in order, with up to ``workers`` fetches running
    ahead of the one handed over (so at most that many results are held at once)."""
    if workers <= 1:
        yield from (fetch(index) for index in range(count))
        return
    with thread_pool(workers) as pool:
        window: deque[Future[T]] = deque()
        try:
            for index in range(count):
                window.append(pool.submit(fetch, index))
                if len(window) > workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()


class ChunkedReader(io.RawIOBase):
    """A seekable stream over a chunked file that fetches only the chunks a read needs.

    ``fetch(index)`` returns one chunk's bytes, already checked against its digest. Read
    from the start to the end without seeking, the bytes are also checked against the
    whole-file digest, and the read that hands over the last byte raises `IntegrityError`
    if they do not match. Once reading has gone through two chunks in a row, the next
    ``ahead`` chunks are fetched in the background (for object stores, where each fetch is a
    request), by ``fetch_ahead`` when given (which may fetch its neighbours with each); a
    read of a byte range fetches only the chunks that hold it.

    With ``fill(index, count, view)`` (for local locations: the stored bytes of ``count``
    chunks from ``index`` on read end to end straight into ``view``, unchecked), a read
    whose buffer holds whole chunks gets them without a copy, each checked in place before
    the read returns; ``hint(indexes)`` tells the location which chunks come next, so that
    it can start reading them. Reads larger than ``buffer_size`` (the buffer of a reader
    wrapped around this one, filled a chunk at a time so that a small read fetches only
    its chunks) take this way, and so does every read of a reader going from the start
    to the end.

    Where ``whole_known()`` is true (the list was seen to make its file before: see
    `forebear.statcache.StatCache.makes_whole`; asked once, when a read from the start
    begins, so a read of a byte range never asks) every chunk is still checked, but the
    whole-file digest is not computed again; otherwise ``on_whole()`` is called once a read
    from the start to the end found the chunks make the file.
    """

    def __init__(
        self,
        chunks: ChunkList,
        fetch: Callable[[int], bytes],
        label: str,
        ahead: int = 0,
        fill: Callable[[int, int, memoryview], None] | None = None,
        hint: Callable[[list[int]], None] | None = None,
        buffer_size: int = 0,
        whole_known: Callable[[], bool] | None = None,
        on_whole: Callable[[], None] | None = None,
        fetch_ahead: Callable[[int], bytes] | None = None,
    ) -> None:
        super().__init__()
        self._ask_whole_known = whole_known
        self._whole_known: bool | None = None  # not asked yet
        self._on_whole = on_whole
        self._chunks = chunks
        self._fetch = fetch
        self._fetch_ahead = fetch_ahead or fetch
        self._fill = fill
        self._hint = hint
        self._buffer_size = buffer_size
        self._hinted = 0  # chunks before this one were announced to the location
        self._label = label
        self._position = 0
        self._current: tuple[int, bytes | memoryview] | None = None
        self._scratch: memoryview | None = None  # a local chunk a read ends inside
        self._hasher = new_hasher()
        self._hashed = 0  # bytes hashed in order from the start
        self._broken: IntegrityError | None = None  # the chunks do not make the file
        self._ahead = ahead
        self._pool = PerProcess(lambda: thread_pool(ahead)) if ahead else None
        self._coming: dict[int, Future[bytes]] = {}
        self._streak = 0  # chunks entered one after the other
        self._fill_lanes = PerProcess(lambda: thread_pool(1)) if fill else None  # 2nd core

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._chunks.size}
        position = base[whence] + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        if position == 0:
            self._hasher = new_hasher()
            self._hashed = 0
        return position

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` as far as the file goes. A buffer no larger than the reader
        wrapped around this one gets one step (the rest of a chunk, or whole chunks), so
        that a small read fetches only its chunks; a larger one (the caller's own, as in
        ``read(8 << 20)``) is filled to its end, whole chunks straight in and the chunk
        across its end through a copy, so that the wrapping reader never copies the bytes
        once more through its buffer."""
        if self._broken is not None:
            raise self._broken
        view = memoryview(buffer).cast("B")
        if len(view) <= self._buffer_size:
            return self._read_step(view)
        filled = 0
        while filled < len(view):
            try:
                with view[filled:] as rest:
                    step = self._read_step(rest)
            except Exception:
                if not filled:
                    raise
                break  # what is filled is checked: handed over; the next read raises again
            if not step:
                break
            filled += step
        return filled

    def _read_step(self, view: memoryview) -> int:
        if self._position >= self._chunks.size or not len(view):
            return 0
        index = self._chunks.index_at(self._position)
        starts_chunk = self._chunks.offsets[index] == self._position
        reading_through = self._hashed == self._position  # front to back, so far
        if (
            self._fill is not None
            and starts_chunk
            and (len(view) > self._buffer_size or reading_through)
            and len(view) >= self._chunks.sizes[index]
        ):
            return self._read_whole_chunks(view, index)
        data = self._chunk(index)
        start = self._position - self._chunks.offsets[index]
        n = min(len(view), len(data) - start)
        view[:n] = memoryview(data)[start : start + n]  # no intermediate copy
        if self._hashed == self._position:
            with view[:n] as checked:
                self._carry(checked)
        self._position += n
        return n

    def _read_whole_chunks(self, view: memoryview, index: int) -> int:
        """Read as many whole chunks as ``view`` holds straight into it, each checked, and
        hand none over unless all are; the chunks after them are announced to the
        location first (``hint``), a few reads' worth at once, so a disk reads them while
        these are checked.

        The chunks are read and checked a round of about ``ROUND`` bytes at a time (see
        `_fill_round`), each hashed while its bytes are still in the processor's cache."""
        count = 0
        room = len(view)
        while index + count < len(self._chunks) and self._chunks.sizes[index + count] <= room:
            room -= self._chunks.sizes[index + count]
            count += 1
        if self._hint is not None and index + 2 * count > self._hinted:
            ahead = range(max(index, self._hinted), min(index + 8 * count + 8, len(self._chunks)))
            self._hint(list(ahead))
            self._hinted = ahead.stop
        filled = 0
        while count:
            size, taken = 0, 0
            while taken < count and (not taken or size < ROUND):
                size += self._chunks.sizes[index + taken]
                taken += 1
            with view[filled : filled + size] as span:
                self._fill_round(index, taken, span)
            filled += size
            index += taken
            count -= taken
        self._position += filled
        return filled

    def _fill_round(self, index: int, count: int, span: memoryview) -> None:
        """Read and check ``count`` chunks from ``index`` on into ``span``, and carry the
        whole-file digest over them. A large round runs on two cores at once: this thread
        and a second one take its groups of chunks in turn, each as soon as it is free
        (reading and hashing release the interpreter), so neither waits on the other for
        more than a group; the digest is carried over the round once all of it is checked
        (the first failure in the file wins, whichever lane found it)."""
        if self._fill_lanes is None or len(span) < LANE_MINIMUM or count < 2:
            self._fill_checked(index, count, span, carry=True)
            return
        todo = self._groups(index, count)  # one walk, shared by both lanes under a lock
        claim = Lock()
        failures: list[tuple[int, Exception]] = []

        def take_groups() -> None:
            while not failures:
                with claim:
                    claimed = next(todo, None)
                if claimed is None:
                    return
                first, number, offset, size = claimed
                try:
                    with span[offset : offset + size] as group:
                        self._fill_checked(first, number, group)
                except Exception as exc:  # noqa: BLE001 - handed over below, the earliest
                    failures.append((first, exc))

        later = self._fill_lanes.get().submit(take_groups)
        try:
            take_groups()
        finally:
            later.exception()  # waits for it (it writes into the buffer), raising nothing
        later.result()
        if failures:
            raise min(failures, key=itemgetter(0))[1]
        self._carry_whole_digest(index, span)

    def _groups(self, index: int, count: int) -> Iterator[tuple[int, int, int, int]]:
        """The first chunk, the number of chunks, the offset (from chunk ``index``) and the
        bytes of each group that ``count`` chunks from ``index`` on are read in: one chunk,
        or neighbours up to ``FILL_GROUP`` bytes (packed ones come in one read)."""
        end, offset = index + count, 0
        while index < end:
            stop, size = index + 1, self._chunks.sizes[index]
            while stop < end and size + self._chunks.sizes[stop] <= FILL_GROUP:
                size += self._chunks.sizes[stop]
                stop += 1
            yield index, stop - index, offset, size
            index, offset = stop, offset + size

    def _fill_checked(
        self, index: int, count: int, span: memoryview, *, carry: bool = False
    ) -> None:
        """Read ``count`` chunks from ``index`` on straight into ``span``, and check each;
        with ``carry``, the whole-file digest is carried over each chunk once it is
        checked. Chunks are read a group at a time (see `_groups`), so that each is hashed
        while its bytes are still in the processor's cache."""
        assert self._fill is not None
        sizes, digests = self._chunks.sizes, self._chunks.digests
        for first, number, offset, size in self._groups(index, count):
            with span[offset : offset + size] as group:
                self._fill(first, number, group)
            for at in range(first, first + number):
                with span[offset : offset + sizes[at]] as part:
                    if (actual := hash_bytes(part)) != digests[at]:
                        label = f"{self._label}: {self._chunks.describe(at)}"
                        raise corrupted(label, actual, digests[at])
                    if carry:
                        self._carry_whole_digest(at, part)
                offset += sizes[at]

    def _carry_whole_digest(self, index: int, span: memoryview) -> None:
        """Carry the whole-file digest over checked chunks from chunk ``index`` on, laid
        end to end in ``span``, while it has seen every byte before them (a read after a
        seek leaves it behind for good)."""
        if self._hashed == self._chunks.offsets[index]:
            self._carry(span)

    def _carry(self, span: memoryview) -> None:
        """Carry the whole-file digest over checked bytes that follow all it has seen;
        where the list is known to make the file, only count them."""
        if self._whole_known is None:  # the first bytes from the start
            asked = self._ask_whole_known
            self._whole_known = asked is not None and asked()
        if not self._whole_known:
            self._hasher.update(span)
        self._hashed += len(span)
        if self._hashed == self._chunks.size:
            self._check_whole()

    def _check_whole(self) -> None:
        """Raise when the chunks, each as stored, do not make the file; and on every read
        after, so that a caller who tries again gets no byte of it. A list known to make
        its file (``whole_known()``) is not hashed again; one found to make it is reported
        (``on_whole``)."""
        if self._whole_known:
            return
        actual = self._hasher.hexdigest()
        if actual == self._chunks.digest:
            self._whole_known = True  # read again from the start: not hashed again
            if self._on_whole is not None:
                self._on_whole()
        else:
            self._broken = IntegrityError(
                f"{self._label}: its {len(self._chunks)} chunks put together hash to "
                f"{actual}, expected {self._chunks.digest}; the data is corrupted "
                "(run 'forebear verify')"
            )
            raise self._broken

    def _fetch_one(self, index: int) -> bytes | memoryview:
        """One chunk's bytes, checked; from a local location, read into one buffer the
        reader keeps (no new memory for each chunk a read crosses into)."""
        if self._fill is None:
            return self._fetch(index)
        if self._scratch is None:
            self._scratch = read_buffer(max(self._chunks.sizes))
        with self._scratch[: self._chunks.sizes[index]] as place:
            self._fill_checked(index, 1, place)
        return self._scratch[: self._chunks.sizes[index]]

    def _chunk(self, index: int) -> bytes | memoryview:
        if self._current is not None and self._current[0] == index:
            return self._current[1]
        if self._pool is not None and self._pool.inherited():
            self._coming.clear()  # fetches started before a fork: never finished here
        coming = self._coming.pop(index, None)
        for stale in [i for i in self._coming if i < index]:
            self._coming.pop(stale).cancel()
        data = coming.result() if coming is not None else self._fetch_one(index)
        following_on = self._current is not None and self._current[0] == index - 1
        self._streak = self._streak + 1 if following_on else 0
        self._current = (index, data)
        if self._pool is not None and self._streak >= 2:
            for following in range(index + 1, min(index + 1 + self._ahead, len(self._chunks))):
                if following not in self._coming:
                    fetch = self._fetch_ahead
                    self._coming[following] = self._pool.get().submit(fetch, following)
        return data

    def close(self) -> None:
        for future in self._coming.values():
            future.cancel()
        for threads in (self._pool, self._fill_lanes):
            if threads is not None and (pool := threads.made_here()) is not None:
                pool.shutdown(wait=True)
        self._pool = self._fill_lanes = None
        self._coming.clear()
        self._current = None
        super().close()
