"""Aliases: where each points now, every move in the history, ``latest`` kept by writers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import PermissionDenied
from . import bulk, webhooks
from .lite import LATEST as LATEST
from .lite import latest_first
from .schema import (
    AliasHistoryRow,
    AliasRow,
    ArtifactRow,
    ProjectRow,
    ProtectedAliasRow,
    VersionRow,
    utcnow,
)


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
        names.sort(key=latest_first)
    return found


def lock_artifact(session: Session, artifact_id: int) -> None:
    """Serialise alias moves of one artifact (a row lock on PostgreSQL; SQLite writers are
    serialised already), so concurrent first settings of an alias cannot collide."""
    session.execute(select(ArtifactRow.id).where(ArtifactRow.id == artifact_id).with_for_update())


def lock_artifacts(session: Session, artifact_ids: Iterable[int]) -> None:
    """`lock_artifact` for many, in one statement (in id order: two transactions locking
    some of the same artifacts this way cannot deadlock)."""
    query = (
        select(ArtifactRow.id)
        .where(ArtifactRow.id.in_(bulk.id_list(session)))
        .order_by(ArtifactRow.id)
        .with_for_update()
    )
    session.execute(query, bulk.ids_param(session, sorted(set(artifact_ids)))).all()


def set_alias(
    session: Session,
    artifact_id: int,
    alias: str,
    version_id: int,
    run_id: str | None,
    *,
    actor: str | None = None,
    reason: str | None = None,
    force: bool = False,
) -> None:
    """Point ``alias`` at the version, recording the move (who, why) in the history; a
    protected alias moves only with ``force``."""
    lock_artifact(session, artifact_id)
    current = session.get(AliasRow, (artifact_id, alias), with_for_update=True)
    previous = current.version_id if current else None
    if previous == version_id:
        return
    _check_unprotected(session, artifact_id, alias, force)
    if current is None:
        session.add(AliasRow(artifact_id=artifact_id, name=alias, version_id=version_id))
    else:
        current.version_id = version_id
    _moved(session, artifact_id, alias, version_id, previous, run_id, actor, reason)


def remove_alias(
    session: Session,
    artifact_id: int,
    alias: str,
    version_id: int,
    *,
    actor: str | None = None,
    reason: str | None = None,
    force: bool = False,
) -> bool:
    lock_artifact(session, artifact_id)
    current = session.get(AliasRow, (artifact_id, alias), with_for_update=True)
    if current is None or current.version_id != version_id:
        return False
    _check_unprotected(session, artifact_id, alias, force)
    session.delete(current)
    _moved(session, artifact_id, alias, None, version_id, None, actor, reason)
    return True


def _moved(
    session: Session,
    artifact_id: int,
    alias: str,
    version_id: int | None,
    previous: int | None,
    run_id: str | None,
    actor: str | None,
    reason: str | None,
) -> None:
    now = utcnow()
    session.add(
        AliasHistoryRow(
            artifact_id=artifact_id,
            alias=alias,
            version_id=version_id,
            previous_version_id=previous,
            run_id=run_id,
            moved_at=now,
            actor=actor[:256] if actor else None,
            reason=reason,
        )
    )
    session.flush()
    if alias != LATEST:  # every log moves latest: version.logged reports that
        numbers = _numbers(session, [v for v in (version_id, previous) if v is not None])
        webhooks.queue(
            session,
            "alias.moved",
            actor or "",
            {
                "artifact": artifact_name(session, artifact_id),
                "alias": alias,
                "version": numbers.get(version_id) if version_id else None,
                "previous": numbers.get(previous) if previous else None,
                "reason": reason,
            },
        )


def _numbers(session: Session, version_ids: list[int]) -> dict[int, str]:
    return {
        version_id: f"v{number}"
        for version_id, number in session.execute(
            select(VersionRow.id, VersionRow.number).where(VersionRow.id.in_(version_ids))
        )
    }


def artifact_name(session: Session, artifact_id: int) -> str:
    """``project/name`` of an artifact."""
    project, name = session.execute(
        select(ProjectRow.name, ArtifactRow.name)
        .join(ArtifactRow, ArtifactRow.project_id == ProjectRow.id)
        .where(ArtifactRow.id == artifact_id)
    ).one()
    return f"{project}/{name}"


def artifact_names(session: Session, artifact_ids: Iterable[int]) -> dict[int, str]:
    """`artifact_name` of many artifacts, in one query."""
    query = (
        select(ArtifactRow.id, ProjectRow.name, ArtifactRow.name)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(ArtifactRow.id.in_(bulk.id_list(session)))
    )
    return {
        artifact_id: f"{project}/{name}"
        for artifact_id, project, name in bulk.rows_for(session, query, artifact_ids)
    }


def _check_unprotected(session: Session, artifact_id: int, alias: str, force: bool) -> None:
    if force or session.get(ProtectedAliasRow, (artifact_id, alias)) is None:
        return
    raise PermissionDenied(
        f"alias {alias!r} of {artifact_name(session, artifact_id)} is protected: move it "
        "with force=True ('forebear alias REF ALIAS --force'), or unprotect it first "
        "('forebear protect NAME ALIAS --remove')"
    )


def protect(session: Session, artifact_id: int, alias: str, actor: str) -> bool:
    """Protect an alias (whether or not it points anywhere yet); False if it was already."""
    if session.get(ProtectedAliasRow, (artifact_id, alias)) is not None:
        return False
    session.add(
        ProtectedAliasRow(
            artifact_id=artifact_id, alias=alias, protected_at=utcnow(), protected_by=actor[:256]
        )
    )
    session.flush()
    return True


def unprotect(session: Session, artifact_id: int, alias: str) -> bool:
    row = session.get(ProtectedAliasRow, (artifact_id, alias))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def protected(session: Session, artifact_id: int) -> list[str]:
    return sorted(
        session.execute(
            select(ProtectedAliasRow.alias).where(ProtectedAliasRow.artifact_id == artifact_id)
        ).scalars()
    )


def protected_among(session: Session, version_ids: Iterable[int]) -> set[int]:
    """The versions a protected alias points at."""
    query = (
        select(AliasRow.version_id)
        .join(
            ProtectedAliasRow,
            (ProtectedAliasRow.artifact_id == AliasRow.artifact_id)
            & (ProtectedAliasRow.alias == AliasRow.name),
        )
        .where(AliasRow.version_id.in_(bulk.id_list(session)))
    )
    return {row[0] for row in bulk.rows_for(session, query, set(version_ids))}


def version_at(session: Session, artifact_id: int, alias: str, at: dt.datetime) -> int | None:
    """The version ``alias`` pointed at at moment ``at`` (None: nowhere), from the history."""
    row = session.execute(
        select(AliasHistoryRow.version_id)
        .where(
            AliasHistoryRow.artifact_id == artifact_id,
            AliasHistoryRow.alias == alias,
            AliasHistoryRow.moved_at <= at,
        )
        .order_by(AliasHistoryRow.moved_at.desc(), AliasHistoryRow.id.desc())
        .limit(1)
    ).first()
    return row[0] if row else None


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
            "actor": r.actor,
            "reason": r.reason,
        }
        for r in rows
    ]
