"""Aliases: where each points now, every move in the history, ``latest`` kept by writers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import bulk
from .schema import (
    AliasHistoryRow,
    AliasRow,
    ArtifactRow,
    VersionRow,
    utcnow,
)

LATEST = "latest"


def aliases_for(session: Session, version_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each version's aliases, ``latest`` first."""
    ids = set(version_ids)
    found: dict[int, list[str]] = {i: [] for i in ids}
    query = select(AliasRow.version_id, AliasRow.name).where(
        AliasRow.version_id.in_(bulk.id_list(session))
    )
    for version_id, name in bulk.rows_for(session, query, ids):
        found[version_id].append(name)
    for names in found.values():
        names.sort(key=lambda n: (n != LATEST, n))
    return found


def lock_artifact(session: Session, artifact_id: int) -> None:
    """Serialise alias moves of one artifact (a row lock on PostgreSQL; SQLite writers are
    serialised already), so concurrent first settings of an alias cannot collide."""
    session.execute(select(ArtifactRow.id).where(ArtifactRow.id == artifact_id).with_for_update())


def set_alias(
    session: Session, artifact_id: int, alias: str, version_id: int, run_id: str | None
) -> None:
    lock_artifact(session, artifact_id)
    current = session.get(AliasRow, (artifact_id, alias), with_for_update=True)
    previous = current.version_id if current else None
    if current is None:
        session.add(AliasRow(artifact_id=artifact_id, name=alias, version_id=version_id))
    elif current.version_id == version_id:
        return
    else:
        current.version_id = version_id
    session.add(
        AliasHistoryRow(
            artifact_id=artifact_id,
            alias=alias,
            version_id=version_id,
            previous_version_id=previous,
            run_id=run_id,
            moved_at=utcnow(),
        )
    )
    session.flush()


def remove_alias(session: Session, artifact_id: int, alias: str, version_id: int) -> bool:
    lock_artifact(session, artifact_id)
    current = session.get(AliasRow, (artifact_id, alias), with_for_update=True)
    if current is None or current.version_id != version_id:
        return False
    session.delete(current)
    session.add(
        AliasHistoryRow(
            artifact_id=artifact_id,
            alias=alias,
            version_id=None,
            previous_version_id=version_id,
            moved_at=utcnow(),
        )
    )
    session.flush()
    return True


def aliases_of(session: Session, version_id: int) -> list[str]:
    return aliases_for(session, [version_id])[version_id]


def alias_history(session: Session, artifact_id: int) -> list[dict[str, Any]]:
    numbers = {
        version_id: number
        for version_id, number in session.execute(
            select(VersionRow.id, VersionRow.number).where(VersionRow.artifact_id == artifact_id)
        )
    }
    rows = session.execute(
        select(AliasHistoryRow)
        .where(AliasHistoryRow.artifact_id == artifact_id)
        .order_by(AliasHistoryRow.id)
    ).scalars()

    def label(version_id: int | None) -> str | None:
        return None if version_id is None else f"v{numbers[version_id]}"

    return [
        {
            "alias": r.alias,
            "version": label(r.version_id),
            "previous": label(r.previous_version_id),
            "run": r.run_id,
            "moved_at": r.moved_at.isoformat(),
        }
        for r in rows
    ]
