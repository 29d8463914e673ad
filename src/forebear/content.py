"""Reading what versions hold: their entries from the catalog, a page at a time, and their
bytes from the object location (or a reference's own location), never a byte unchecked."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from .backend import Backend
from .chunking import MIN_THRESHOLD, ChunkedReader, ChunkList
from .errors import IntegrityError, ObjectNotFound, Problem
from .hashing import BLOCK_SIZE
from .manifest import Manifest, ManifestEntry
from .objects import TRANSFER_WORKERS
from .processes import PerProcess
from .readers import checked_at_end, verified_copy
from .references import check_reference, open_reference

if TYPE_CHECKING:
    from .objects import ObjectLocation


class ContentReader:
    """Entries and bytes of committed versions, through one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.objects = backend.objects
        self.cache = backend.cache

    # -- entries ---------------------------------------------------------------------

    def manifest(self, version_id: int) -> Manifest:
        """Every entry, read page by page (a server's own pages, which reach the catalog
        through what guards it, are answered a page at a time, as its clients are)."""
        return Manifest(tuple(self.iter_entries(version_id)))

    def entry(self, version_id: int, path: str) -> ManifestEntry | None:
        """The entry at ``path`` (a normalised entry path), found without reading the
        others; None when there is none."""
        return self.backend.entries_at(version_id, [path]).get(path)

    def entries(self, version_id: int, start: int, limit: int | None) -> list[ManifestEntry]:
        return self.backend.entries(version_id, start, limit)

    def entry_pages(self, version_id: int) -> Iterator[list[ManifestEntry]]:
        return self.backend.entry_pages(version_id)

    def iter_entries(self, version_id: int) -> Iterator[ManifestEntry]:
        for page in self.backend.entry_pages(version_id):
            yield from page

    def chunk_lists(self, entries: Iterable[ManifestEntry]) -> dict[str, ChunkList]:
        """The chunk lists of the stored entries among ``entries`` that are chunked."""
        return self.backend.chunk_lists(
            e.digest
            for e in entries
            if e.uri is None and e.digest is not None and e.size >= MIN_THRESHOLD
        )

    # -- bytes -----------------------------------------------------------------------

    def open_entry(self, label: str, entry: ManifestEntry, *, to_copy: bool = False) -> BinaryIO:
        """A stream of one entry whose bytes are all checked before the first is handed
        over; with ``to_copy``, checked when it reaches its end instead (for a caller that
        keeps nothing until then, such as a download to a temporary file)."""
        if entry.uri is None:
            assert entry.digest is not None
            chunks = self.chunk_lists([entry]).get(entry.digest)
            if chunks is not None:
                return self.open_chunked(label, chunks)
            if to_copy:
                return self.objects.stream(entry.digest, label)
            return self.objects.open(entry.digest, label)
        problem = None if entry.digest is not None else check_reference(entry)
        if problem:
            raise IntegrityError(f"{label}: {problem}", [Problem(label, entry.path, problem)])
        raw = open_reference(entry)
        if entry.digest is None:
            return raw
        if to_copy:
            return checked_at_end(raw, entry.digest, label)
        return verified_copy(raw, entry.digest, label)

    def open_chunked(self, label: str, chunks: ChunkList, *, cached: bool = False) -> BinaryIO:
        """A stream of a chunked file that fetches each chunk it needs, verified (through the
        local cache with ``cached``, for downloads from remote locations)."""
        location = self.objects

        def name_of(index: int) -> str:
            return f"{label}: {chunks.describe(index)}"

        def fetch(index: int) -> bytes:
            if cached:
                return self.cache.read(location, chunks.digests[index], name_of(index))
            return location.read_bytes(chunks.digests[index], name_of(index))

        def fill(index: int, count: int, view: memoryview) -> None:
            stop = index + count
            location.read_into(
                chunks.digests[index:stop],
                chunks.sizes[index:stop],
                view,
                lambda i: name_of(index + i),
            )

        def hint(indexes: list[int]) -> None:
            location.will_need([chunks.digests[i] for i in indexes])

        # Seen before to make its file: each chunk is still checked, the file not hashed
        stat_cache = self.backend.stat_cache

        def known_whole() -> bool:
            return stat_cache.makes_whole(chunks.key)

        def seen_whole() -> None:
            stat_cache.remember_whole(chunks.key)

        direct = location.is_local and not cached  # whole chunks straight into the buffer
        reader = ChunkedReader(
            chunks,
            fetch,
            label,
            0 if direct else TRANSFER_WORKERS,  # remote: fetched ahead, on threads
            fill=fill if direct else None,
            hint=hint if direct else None,
            buffer_size=BLOCK_SIZE,
            whole_known=known_whole,
            on_whole=seen_whole,
            # a remote file read on from chunk to chunk: its neighbours come with each
            # (a read of a byte range still fetches only the chunks that hold it)
            fetch_ahead=(
                None
                if cached or location.is_local
                else GroupedReads(location, chunks, name_of).read
            ),
        )
        return io.BufferedReader(reader, BLOCK_SIZE)


# Chunks of a remote file read together, where the location reads neighbours in one
# request: about 2 MiB of chunks of 64 KiB, one answer of a server's batch reads or one
# range of a pack. Read a chunk at a time, a 64 MiB file through a server took 4.0 s.
GROUP_CHUNKS = 32
# Groups read at once by a reader that goes on from one group to the next (one answer of
# about 8 MiB): a 256 MiB file through a server over S3 took 2.3 s a group at a time.
SPAN_GROUPS = 4
KEPT_GROUPS = 2 * SPAN_GROUPS  # groups whose chunks are held until taken


class _Groups:
    """What a `GroupedReads` holds in one process (a forked child starts afresh: a lock
    held by a thread of its parent would never be released in it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.locks: dict[int, threading.Lock] = {}  # each group's, by its first index
        self.held: OrderedDict[int, dict[int, bytes]] = OrderedDict()  # chunks not taken
        self.last = -1  # the first index of the last group read

    def lock_of(self, start: int) -> threading.Lock:
        with self.lock:
            return self.locks.setdefault(start, threading.Lock())


class GroupedReads:
    """One chunk of a remote file at a time, as a `ChunkedReader` reading on asks for the
    chunks ahead (from several threads), each chunk's whole group read together the first
    time one of it is wanted, and the groups after it too while a reader goes on from one
    group to the next. The location reads what it can together (packed chunks, a server's
    batch reads), checking each; a chunk it cannot is read alone, as is one wanted again
    after it was handed out."""

    def __init__(
        self, location: ObjectLocation, chunks: ChunkList, name_of: Callable[[int], str]
    ) -> None:
        self.location = location
        self.chunks = chunks
        self.name_of = name_of
        self._groups = PerProcess(_Groups)

    def read(self, index: int) -> bytes:
        groups = self._groups.get()
        start = index - index % GROUP_CHUNKS
        with groups.lock_of(start):
            with groups.lock:
                held = groups.held.get(start)
                reading_on = start == groups.last + GROUP_CHUNKS
            if held is None:
                held = self._read_groups(groups, start, SPAN_GROUPS if reading_on else 1)
            with groups.lock:
                data = held.pop(index, None)
        if data is not None:
            return data
        return self.location.read_bytes(self.chunks.digests[index], self.name_of(index))

    def _read_groups(self, groups: _Groups, start: int, span: int) -> dict[int, bytes]:
        """The group from ``start`` (whose lock the caller holds) and up to ``span`` - 1
        after it, those no other thread is reading and none holds already."""
        digests = self.chunks.digests
        starts, taken = [start], []
        for following in range(start + GROUP_CHUNKS, start + span * GROUP_CHUNKS, GROUP_CHUNKS):
            if following >= len(digests):
                break
            lock = groups.lock_of(following)
            if not lock.acquire(blocking=False):
                break
            taken.append(lock)
            with groups.lock:
                if following in groups.held:
                    break
            starts.append(following)
        try:
            indexes = range(start, min(starts[-1] + GROUP_CHUNKS, len(digests)))
            labels = {digests[i]: self.name_of(i) for i in indexes}
            try:
                found = {d: bytes(data) for d, data in self.location.read_together(labels, labels)}
            except (IntegrityError, ObjectNotFound):  # one chunk damaged or gone: each read
                found = {}  # alone, so that a read of the others still gives their bytes
            with groups.lock:
                for first in starts:
                    group = range(first, min(first + GROUP_CHUNKS, len(digests)))
                    groups.held[first] = {
                        i: found[digests[i]] for i in group if digests[i] in found
                    }
                groups.last = starts[-1]
                while len(groups.held) > KEPT_GROUPS:
                    groups.held.popitem(last=False)
                return groups.held[start]
        finally:
            for lock in taken:
                lock.release()
