"""Reading what versions hold: their entries from the catalog, a page at a time, and their
bytes from the object location (or a reference's own location), never a byte unchecked."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from sqlalchemy import Engine

from .cache import LocalCache
from .chunking import MIN_THRESHOLD, ChunkedReader, ChunkList
from .db import catalog
from .db.engine import read_session
from .errors import IntegrityError, Problem
from .hashing import BLOCK_SIZE
from .manifest import Manifest, ManifestEntry
from .objects import TRANSFER_WORKERS, ObjectLocation
from .readers import checked_at_end, verified_copy
from .references import check_reference, open_reference


class ContentReader:
    """Entries and bytes of committed versions, for one catalog and object location."""

    def __init__(self, engine: Engine, objects: ObjectLocation, cache: LocalCache) -> None:
        self.engine = engine
        self.objects = objects
        self.cache = cache

    # -- entries ---------------------------------------------------------------------

    def manifest(self, version_id: int) -> Manifest:
        with read_session(self.engine) as session:
            return Manifest(tuple(catalog.list_entries(session, version_id)))

    def entries(self, version_id: int, start: int, limit: int | None) -> list[ManifestEntry]:
        with read_session(self.engine) as session:
            return catalog.list_entries(session, version_id, start, limit)

    def entry_pages(self, version_id: int) -> Iterator[list[ManifestEntry]]:
        """Pages of entries, each read in its own short transaction (keyset pagination
        needs no snapshot across pages: a committed version never changes)."""
        last: str | None = None
        while True:
            with read_session(self.engine) as session:
                page = catalog.entries_after(session, version_id, last)
            if not page:
                return
            yield page
            last = page[-1].path

    def chunk_lists(self, entries: Iterable[ManifestEntry]) -> dict[str, ChunkList]:
        """The chunk lists of the stored entries among ``entries`` that are chunked."""
        digests = [
            e.digest
            for e in entries
            if e.uri is None and e.digest is not None and e.size >= MIN_THRESHOLD
        ]
        if not digests:
            return {}
        with read_session(self.engine) as session:
            return catalog.chunk_lists_for(session, digests)

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

        ahead = 0 if location.is_local else TRANSFER_WORKERS
        return io.BufferedReader(ChunkedReader(chunks, fetch, label, ahead), BLOCK_SIZE)
