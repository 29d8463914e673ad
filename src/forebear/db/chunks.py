"""Chunk lists of files stored in chunks, their members by chunk, and which objects committed
versions need (what gc keeps, and what a writer may rely on unread)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..chunking import Chunking, ChunkList
from . import bulk
from .bulk import insert_ignoring_duplicates
from .schema import (
    ChunkListRow,
    ChunkMemberRow,
    EntryRow,
    VersionRow,
)

_LIST_BATCH = 500  # digests per IN (...) query, well under every database's parameter limit


def add_chunk_lists(session: Session, chunk_lists: Iterable[ChunkList]) -> None:
    """Record chunk lists in the transaction that commits the first entries using them. A
    file already recorded keeps its list: any of them gives the same bytes, and the one
    recorded first is the one whose chunks are known to be stored."""
    lists = iter(chunk_lists)
    while batch := list(islice(lists, _LIST_BATCH)):
        insert_ignoring_duplicates(
            session,
            ChunkListRow,
            [
                {
                    "digest": c.digest,
                    "size": c.size,
                    "chunking": c.chunking.to_dict(),
                    "chunks": c.pack(),
                }
                for c in batch
            ],
        )
        insert_ignoring_duplicates(
            session,
            ChunkMemberRow,
            [{"chunk": d, "file": c.digest} for c in batch for d in set(c.digests)],
        )


def chunk_lists_for(session: Session, digests: Iterable[str]) -> dict[str, ChunkList]:
    """The chunk lists of the files among ``digests`` that are stored in chunks."""
    found: dict[str, ChunkList] = {}
    wanted = sorted(set(digests))
    for start in range(0, len(wanted), _LIST_BATCH):
        rows = session.execute(
            select(*_CHUNK_LIST_COLUMNS).where(
                ChunkListRow.digest.in_(wanted[start : start + _LIST_BATCH])
            )
        )
        for row in rows:
            found[row[0]] = _chunk_list(row)
    return found


_CHUNK_LIST_COLUMNS = (
    ChunkListRow.digest,
    ChunkListRow.size,
    ChunkListRow.chunking,
    ChunkListRow.chunks,
)


def _chunk_list(row: Any) -> ChunkList:
    digest, size, chunking, packed = row
    return ChunkList.unpack(digest, size, Chunking.from_dict(chunking), packed)


def chunked_among(session: Session, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` are files whose chunk list is committed (so their chunks are
    stored and kept by gc): they need not be cut and stored again."""
    found: set[str] = set()
    wanted = sorted(set(digests))
    for start in range(0, len(wanted), _LIST_BATCH):
        found.update(
            session.execute(
                select(ChunkListRow.digest).where(
                    ChunkListRow.digest.in_(wanted[start : start + _LIST_BATCH])
                )
            ).scalars()
        )
    return found


def all_object_digests(session: Session, purging: Collection[int] = ()) -> set[str]:
    """Every object a version that gc has not purged needs: manifests, stored entries
    (for a chunked file, the digest its chunk list is kept under) and the chunks of
    chunked files. (Purged versions have no entries left.) With ``purging``: as if those
    versions were purged already (what a dry run of gc reports), changing nothing.

    Plain rows from the connection; the set takes each digest once (SQLite would answer
    a DISTINCT by walking the digest index and reading each entry's row, at random)."""
    versions = select(VersionRow.digest).where(VersionRow.purged_at.is_(None))
    entries = select(EntryRow.digest).where(EntryRow.uri.is_(None), EntryRow.digest.is_not(None))
    files = select(EntryRow.digest).where(EntryRow.digest == ChunkMemberRow.file)
    params: dict[str, Any] = {}
    if purging:
        versions = versions.where(VersionRow.id.not_in(bulk.id_list(session)))
        entries = entries.where(EntryRow.version_id.not_in(bulk.id_list(session)))
        files = files.where(EntryRow.version_id.not_in(bulk.id_list(session)))
        params = bulk.ids_param(session, sorted(set(purging)))
    chunks = select(ChunkMemberRow.chunk).where(files.exists())
    connection = session.connection()
    reachable: set[str] = set()
    for query in (versions, entries, chunks.distinct()):
        reachable.update(digest for (digest,) in connection.execute(query, params) if digest)
    return reachable


def committed_among(session: Session, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` a committed version needs (as a stored file, a manifest or a
    chunk): objects known to have been complete and durable when they were committed."""
    wanted = set(digests)
    found: set[str] = set()
    for column in (EntryRow.digest, VersionRow.digest, ChunkMemberRow.chunk):
        query = select(column).where(column.in_(bulk.string_list(session))).distinct()
        found.update(row[0] for row in bulk.rows_for_strings(session, query, wanted))
    return found


def chunks_of_files(session: Session, files: Iterable[str]) -> set[str]:
    """The chunks of those of ``files`` that have a chunk list: what gc keeps beside a file
    a writer holds, which may commit it without storing its chunks again."""
    query = select(ChunkMemberRow.chunk).where(ChunkMemberRow.file.in_(bulk.string_list(session)))
    return {row[0] for row in bulk.rows_for_strings(session, query, files)}
