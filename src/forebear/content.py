"""Reading what versions hold: their entries from the catalog, a page at a time, and their
bytes from the object location (or a reference's own location), never a byte unchecked."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .backend import Backend
from .chunking import MIN_THRESHOLD, ChunkedReader, ChunkList
from .errors import IntegrityError, Problem
from .hashing import BLOCK_SIZE
from .manifest import Manifest, ManifestEntry
from .objects import TRANSFER_WORKERS
from .readers import checked_at_end, verified_copy
from .references import check_reference, open_reference


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

        def fetch(index: int) -> bytes:
            name = f"{label}: {chunks.describe(index)}"
            if cached:
                return self.cache.read(location, chunks.digests[index], name)
            return location.read_bytes(chunks.digests[index], name)

        def fill(index: int, count: int, view: memoryview) -> None:
            def name(i: int) -> str:
                return f"{label}: {chunks.describe(index + i)}"

            stop = index + count
            location.read_into(chunks.digests[index:stop], chunks.sizes[index:stop], view, name)

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
        )
        return io.BufferedReader(reader, BLOCK_SIZE)
