"""Which versions hold some bytes, and purges: bytes removed on purpose, the entries that
held them kept as redacted (listed, never readable again)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased

from ..records import Redaction
from . import audit, bulk
from .lifecycle import qualified
from .schema import (
    ChunkListRow,
    ChunkMemberRow,
    EntryRow,
    PurgeRow,
    RedactionRow,
    VersionRow,
    utcnow,
)


def holders(session: Session, digest: str) -> list[tuple[int, str]]:
    """``(version id, entry path)`` of every entry holding these bytes, in versions whose
    bytes gc has not purged (live or deleted), oldest version first (an indexed lookup)."""
    rows = session.execute(
        select(EntryRow.version_id, EntryRow.path)
        .join(VersionRow, VersionRow.id == EntryRow.version_id)
        .where(EntryRow.digest == digest, EntryRow.uri.is_(None), VersionRow.purged_at.is_(None))
        .order_by(EntryRow.version_id, EntryRow.path)
    ).all()
    return [(version_id, path) for version_id, path in rows]


def purge(session: Session, digest: str, reason: str, actor: str) -> list[tuple[int, str]]:
    """Record the purge of these bytes and mark every entry holding them redacted (one
    audit event per version); the entries, oldest version first. The caller removes the
    bytes once this commits."""
    held = holders(session, digest)
    row = PurgeRow(digest=digest, reason=reason, actor=actor[:256], purged_at=utcnow())
    session.add(row)
    session.flush()
    paths: dict[int, list[str]] = {}
    for version_id, path in held:
        if session.get(RedactionRow, (version_id, path)) is None:
            session.add(RedactionRow(version_id=version_id, path=path, purge_id=row.id))
        paths.setdefault(version_id, []).append(path)
    session.flush()
    for version_id, version_paths in paths.items():
        version = session.get(VersionRow, version_id)
        assert version is not None
        audit.record(
            session, actor, "purge", qualified(session, version),
            artifact_id=version.artifact_id, version_id=version_id,
            details={"digest": digest, "paths": version_paths, "reason": reason},
        )  # fmt: skip
    return held


def redactions(session: Session, version_id: int) -> list[Redaction]:
    rows = session.execute(
        select(
            RedactionRow.path, PurgeRow.digest, PurgeRow.reason, PurgeRow.actor, PurgeRow.purged_at
        )
        .join(PurgeRow, PurgeRow.id == RedactionRow.purge_id)
        .where(RedactionRow.version_id == version_id)
        .order_by(RedactionRow.path)
    ).all()
    return [Redaction(*row) for row in rows]


def redacted_among(session: Session, version_ids: Iterable[int]) -> set[int]:
    query = (
        select(RedactionRow.version_id)
        .where(RedactionRow.version_id.in_(bulk.id_list(session)))
        .distinct()
    )
    return {row[0] for row in bulk.rows_for(session, query, set(version_ids))}


def purged_among(session: Session, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` a purge removed from the store."""
    query = select(PurgeRow.digest).where(PurgeRow.digest.in_(bulk.string_list(session)))
    return {row[0] for row in bulk.rows_for_strings(session, query, set(digests))}


def is_purged(session: Session, digest: str) -> bool:
    return session.execute(select(PurgeRow.id).where(PurgeRow.digest == digest)).first() is not None


def chunks_only_of(session: Session, digest: str) -> list[str]:
    """The chunks of this file that no other file's chunk list holds."""
    member = aliased(ChunkMemberRow)
    other = (
        select(ChunkMemberRow.chunk)
        .where(ChunkMemberRow.file != digest, ChunkMemberRow.chunk == member.chunk)
        .exists()
    )
    return list(
        session.execute(select(member.chunk).where(member.file == digest, ~other)).scalars()
    )


def forget_chunk_list(session: Session, digest: str) -> None:
    """Drop the catalog's chunk list of purged bytes (logged again, they are cut again)."""
    session.execute(delete(ChunkMemberRow).where(ChunkMemberRow.file == digest))
    session.execute(delete(ChunkListRow).where(ChunkListRow.digest == digest))
