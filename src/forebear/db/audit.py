"""The audit trail: one appended row per change to the catalog, written in the transaction
that makes the change (so there is no change without its event, nor an event without its
change)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..records import AuditEvent
from .schema import AuditRow, utcnow


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    *,
    artifact_id: int | None = None,
    version_id: int | None = None,
    run_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            at=utcnow(),
            actor=actor[:256],
            action=action,
            target=target[:600],
            artifact_id=artifact_id,
            version_id=version_id,
            run_id=run_id,
            details=details or {},
        )
    )


def row(
    at: dt.datetime,
    actor: str,
    action: str,
    target: str,
    artifact_id: int,
    version_id: int,
    details: dict[str, Any],
) -> dict[str, Any]:
    """One event as a row for `record_many`."""
    return {
        "at": at,
        "actor": actor[:256],
        "action": action,
        "target": target[:600],
        "artifact_id": artifact_id,
        "version_id": version_id,
        "run_id": None,
        "details": details,
    }


def record_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append many events at once (rows with every column but ``id``)."""
    if rows:
        session.execute(insert(AuditRow.__table__), rows)  # type: ignore[arg-type]


def events(
    session: Session,
    *,
    artifact_id: int | None = None,
    version_id: int | None = None,
    since: dt.datetime | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events oldest first: of one version, of one artifact (its versions' too), or all."""
    query = select(AuditRow)
    if version_id is not None:
        query = query.where(AuditRow.version_id == version_id)
    elif artifact_id is not None:
        query = query.where(AuditRow.artifact_id == artifact_id)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    rows = session.execute(query.order_by(AuditRow.id).limit(limit)).scalars()
    return [
        AuditEvent(row.at, row.actor, row.action, row.target, dict(row.details or {}))
        for row in rows
    ]
