"""A chunked file received as one stream: its chunks checked and stored, and its chunk list
proven, while the bytes arrive.

A client of a server that cut a large file sends its chunk list, then the bytes of the
chunks the server lacks, in file order. Taking the chunks one by one would cost a request
each, and the server would later read every chunk back to prove that, end to end, they
hash to the file's digest (a chunk list nobody checked could make another user's file read
as other bytes). Here the proof rides along: each group of chunks that arrives is hashed
into the file's digest and checked chunk by chunk against its own, then stored while the
next group arrives; a chunk the client did not send (stored already) is read from the
location in its turn. Only once the whole file hashes to its digest is the chunk list
written: a chunk list in the location is one that was proven.

This module knows nothing of servers or users: the caller says which unsent chunks the
sender may build on, and records who sent what (``on_checked``).
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO, Literal, cast

from ..chunking import ChunkList
from ..errors import IntegrityError, InvalidInput, ObjectNotFound
from ..hashing import hash_bytes, new_hasher
from .formatfile import DIGEST_RE

if TYPE_CHECKING:
    from .base import ObjectLocation

GROUP_BYTES = 4 << 20  # chunks are taken, hashed and stored this many bytes at a time
BYTES_IN_FLIGHT = 8 << 20  # chunks being stored while more arrive (memory stays flat)
STORED_BATCH = 256  # chunks stored before ``on_stored`` is told (into packs: one sealed)
STORED_BYTES = 8 << 20  # or this many bytes: what a broken upload resumed need not send again
MAX_HEADER_BYTES = 64 << 20  # the header line: a chunk list of about a million chunks
MAX_PART_BYTES = 16 << 20  # a staged part: a few chunks, or one of the largest chunking's
IDLE_SECONDS = 1.0  # waited for the next part's name before what is stored is recorded


def encode_header(chunks: ChunkList, sent: Sequence[int]) -> bytes:
    """The first line of a file upload: the chunk list, and which chunks follow."""
    document = {"chunk_list": json.loads(chunks.to_bytes()), "sent": list(sent)}
    return json.dumps(document, separators=(",", ":")).encode()


def parse_header(line: bytes) -> tuple[ChunkList, list[int]]:
    """The chunk list and the sent chunks a header line names; `InvalidInput` saying what
    is wrong otherwise (nothing is read or stored after a bad header)."""
    try:
        document = json.loads(line)
        chunks = ChunkList.from_bytes(json.dumps(document["chunk_list"]).encode())
    except (ValueError, KeyError, TypeError, RecursionError, IntegrityError) as error:
        raise InvalidInput(
            "malformed file upload: its first line is {chunk_list, sent} as JSON "
            f"({str(error)[:200]})"
        ) from None
    names = [chunks.digest, *chunks.digests]
    if not all(isinstance(d, str) and DIGEST_RE.fullmatch(d) for d in names):
        raise InvalidInput("malformed file upload: a digest is not 32 hex digits")
    largest = chunks.chunking.max_size
    if not chunks.digests or not all(0 < size <= largest for size in chunks.sizes):
        raise InvalidInput(
            f"malformed file upload: {chunks.digest} needs at least one chunk, each of 1 to "
            f"{largest} bytes (its chunking's largest)"
        )
    return chunks, _checked_sent(chunks, document.get("sent"))


def _checked_sent(chunks: ChunkList, sent: object) -> list[int]:
    """The indices of the chunks a client says it sends, each a first occurrence, in
    order; `InvalidInput` saying what is wrong otherwise."""
    if not isinstance(sent, list) or not all(type(i) is int for i in sent):
        raise InvalidInput("malformed file upload: 'sent' is a list of chunk indices")
    if sent != sorted(set(sent)) or (sent and (sent[0] < 0 or sent[-1] >= len(chunks))):
        raise InvalidInput(
            f"malformed file upload: 'sent' must name chunks 0..{len(chunks) - 1} of "
            f"{chunks.digest} in order, each once"
        )
    first: dict[str, int] = {}
    for index, digest in enumerate(chunks.digests):
        first.setdefault(digest, index)
    repeated = [i for i in sent if first[chunks.digests[i]] != i]
    if repeated:
        raise InvalidInput(
            f"malformed file upload: chunk {repeated[0]} of {chunks.digest} repeats an earlier "
            "chunk; send each chunk's bytes at its first place only"
        )
    return sent


def unsent_digests(chunks: ChunkList, sent: Sequence[int]) -> set[str]:
    """The chunks the location must hold already: those the stream does not carry."""
    carried = {chunks.digests[i] for i in sent}
    return set(chunks.digests) - carried


def receive_file(
    location: ObjectLocation,
    chunks: ChunkList,
    sent: Sequence[int],
    read: Callable[[int], bytes],
    *,
    workers: int,
    on_stored: Callable[[list[str]], None],
    recorder: Callable[[Callable[[], None]], None] | None = None,
    on_checked: Callable[[list[str]], None] | None = None,
) -> None:
    """Take the bytes of the ``sent`` chunks of ``chunks`` from ``read`` (which returns at
    most as many bytes as asked, and fewer only at the end), check and store each, and
    write the chunk list once the whole file hashes to its digest; ``on_stored`` is told
    the chunks stored, a batch at a time, and ``on_checked`` the chunks found to hash to
    their digests before they are stored, and the file's digest once it checks out, before
    its chunk list is written (a server's receipts, which hold them off gc from then on:
    see `db.access.held_by_uploads`). ``recorder`` is handed a function that tells
    ``on_stored`` everything stored so far at once, for a reader to call before it waits
    long for more bytes (a broken upload resumed then sends none of them again). Raises
    `IntegrityError` for bytes that do not hash to their digest (a chunk's, or the file's:
    then no chunk list is written) and `InvalidInput` for a body shorter or longer than the
    chunks it must carry or an unsent chunk the location lacks. Chunks stored before a
    failure stay: each was checked."""
    carried = set(sent)
    hasher = new_hasher()
    pool = ThreadPoolExecutor(workers if location.packs is None else 1)
    stored: set[str] = set()  # sent in this stream: stored, or being stored
    in_flight: deque[tuple[str, int, Future[None]]] = deque()  # chunks being stored
    waiting = [0]  # their bytes
    done: list[str] = []  # stored, not yet told to ``on_stored``
    done_bytes = [0]
    packs = location.packs

    def settle(most: int) -> None:
        """Wait until at most ``most`` bytes are still being stored; tell ``on_stored``
        about what was, a batch at a time (or all of it, once nothing is in flight; into
        packs, whole batches only: each seals a pack, and the rest is told at the end)."""
        while in_flight and waiting[0] > most:
            digest, size, future = in_flight.popleft()
            future.result()
            waiting[0] -= size
            done.append(digest)
            done_bytes[0] += size
        batch_full = len(done) >= STORED_BATCH or done_bytes[0] >= STORED_BYTES
        if done and (batch_full or (not in_flight and packs is None)):
            tell_stored()

    def tell_stored() -> None:
        """Tell ``on_stored`` about every chunk stored and not yet told."""
        if packs is not None:  # a chunk told stored is durable: its pack sealed first
            location.flush()
        on_stored(list(done))
        done.clear()
        done_bytes[0] = 0

    def record_now() -> None:
        settle(0)
        if done:
            tell_stored()

    if recorder is not None:
        recorder(record_now)

    def put(data: memoryview, digest: str) -> None:
        location.put_stream(cast(BinaryIO, _ViewReader(data)), digest, source="a file upload")

    try:
        index = 0
        while index < len(chunks):
            stop, length = _group(chunks, index, carried)
            if index in carried:
                data = _read_exactly(read, length, chunks, index)
                hasher.update(data)
                view, offset = memoryview(data), 0
                checked: list[tuple[str, int, memoryview]] = []
                for position in range(index, stop):
                    digest, size = chunks.digests[position], chunks.sizes[position]
                    part = view[offset : offset + size]
                    offset += size
                    if hash_bytes(part) != digest:
                        raise IntegrityError(
                            f"the bytes sent for {chunks.describe(position)} of {chunks.digest} "
                            "do not hash to its digest; the file was not stored"
                        )
                    if digest not in stored:
                        stored.add(digest)
                        checked.append((digest, size, part))
                if checked and on_checked is not None:  # held before they are stored
                    on_checked([digest for digest, _, _ in checked])
                for digest, size, part in checked:
                    in_flight.append((digest, size, pool.submit(put, part, digest)))
                    waiting[0] += size
                    settle(BYTES_IN_FLIGHT)
            else:
                wanted = chunks.digests[index:stop]
                if stored.intersection(wanted):  # sent earlier in this stream: stored first
                    settle(0)
                    location.flush()
                group = bytearray(length)

                def name(offset: int, first: int = index) -> str:
                    return f"{chunks.describe(first + offset)} of {chunks.digest}"

                try:
                    with memoryview(group) as view:
                        location.read_into(wanted, chunks.sizes[index:stop], view, name)
                except ObjectNotFound as missing:
                    raise InvalidInput(f"{missing}; send its bytes") from None
                hasher.update(group)
            index = stop
        if read(1):
            raise InvalidInput(
                f"the upload of {chunks.digest} carries more bytes than the chunks it names"
            )
        settle(0)
        location.flush()
    finally:
        pool.shutdown(wait=True)
        with contextlib.suppress(Exception):  # a failure: what did get stored is recorded
            done.extend(digest for digest, _, future in in_flight if not future.exception())
            # into a pack being filled: sealed now, so that an upload cut off and resumed
            # sends only what is still missing (the chunks are kept, each checked)
            location.flush()
            if done:
                on_stored(done)
    if hasher.hexdigest() != chunks.digest:
        raise IntegrityError(
            f"the chunks sent for {chunks.digest} do not make up that file; its chunk list "
            "was not stored"
        )
    if on_checked is not None:  # the whole file, and so its list, held before it is written
        on_checked([chunks.digest])
    location.put_chunk_list(chunks.digest, chunks.to_bytes())


class StagedParts:
    """A file's sent chunks staged in parts (uploaded straight to the object store), read
    back as one stream: each part in one read, once ``next_part`` names it, the next
    fetched while this one is taken, each staged copy removed as it is read (what a
    failure leaves unread goes with the location's old staged uploads). Memory: two
    parts of at most `MAX_PART_BYTES`.

    ``next_part(seconds)`` is the next part's (staging id, key), None after the last, or
    False when none was named within ``seconds`` (None: no limit). Before it waits longer
    than `IDLE_SECONDS` for a name (the sender is slower than this reader, or gone), what
    is stored so far is recorded (`record_with`)."""

    def __init__(
        self,
        location: ObjectLocation,
        next_part: Callable[[float | None], tuple[str, str] | Literal[False] | None],
    ) -> None:
        self.location = location
        self.next_part = next_part
        self.record: Callable[[], None] = lambda: None
        self.current = memoryview(b"")
        self.fetcher = ThreadPoolExecutor(1)
        self.ahead: Future[bytes] | None = self._fetch_next()

    def record_with(self, record: Callable[[], None]) -> None:
        """What records the chunks stored so far (`receive_file`'s ``recorder``)."""
        self.record = record

    def _fetch_next(self) -> Future[bytes] | None:
        part = self.next_part(IDLE_SECONDS)
        if part is False:
            self.record()
            part = self.next_part(None)
        if not part:
            return None
        staging_id, key = part
        return self.fetcher.submit(self.location.read_staged, staging_id, key, MAX_PART_BYTES)

    def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the last part."""
        pieces, got = [], 0
        while got < size:
            if not self.current:
                if self.ahead is None:
                    break
                data = self.ahead.result()
                self.ahead = self._fetch_next()
                self.current = memoryview(data)
                continue
            piece = self.current[: size - got]
            self.current = self.current[len(piece) :]
            pieces.append(bytes(piece))
            got += len(piece)
        return b"".join(pieces)

    def close(self) -> None:
        self.fetcher.shutdown(wait=True)


class _ViewReader:
    """A chunk's bytes in the group that brought them, read without a copy of the whole."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else min(len(self.view), self.at + size)
        piece = bytes(self.view[self.at : end])
        self.at = end
        return piece


def _group(chunks: ChunkList, start: int, carried: set[int]) -> tuple[int, int]:
    """The end of the group that begins at ``start`` (all sent, or all unsent; at most
    `GROUP_BYTES` unless one chunk is larger) and its length in bytes."""
    sent = start in carried
    stop, length = start, 0
    while (
        stop < len(chunks)
        and (stop in carried) == sent
        and (stop == start or length + chunks.sizes[stop] <= GROUP_BYTES)
    ):
        length += chunks.sizes[stop]
        stop += 1
    return stop, length


def _read_exactly(read: Callable[[int], bytes], length: int, chunks: ChunkList, at: int) -> bytes:
    pieces, got = [], 0
    while got < length:
        piece = read(length - got)
        if not piece:
            raise InvalidInput(
                f"the upload of {chunks.digest} ended at {chunks.describe(at)}, before the "
                "bytes of every chunk it names; send it again"
            )
        pieces.append(piece)
        got += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
