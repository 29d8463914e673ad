"""Retention and expiry: each artifact's policy, which versions `prune` deletes (TTL,
keep-last, max-age; never the newest, a linked source or a protected alias's version),
the bytes only they hold, and which deleted versions gc purges.

Every function runs in the caller's transaction and records its audit event there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..records import RetentionPolicy
from . import audit, bulk
from .aliases import LATEST, artifact_name
from .schema import (
    AliasRow,
    ArtifactRow,
    EntryRow,
    ProjectRow,
    ProtectedAliasRow,
    RedactionRow,
    RetentionRow,
    VersionRow,
    utcnow,
)


def set_retention(
    session: Session,
    artifact: ArtifactRow,
    actor: str,
    target: str,
    *,
    keep_last: int | None,
    max_age: dt.timedelta | None,
    keep_aliased: bool,
) -> None:
    row = session.get(RetentionRow, artifact.id)
    if keep_last is None and max_age is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(
            RetentionRow(
                artifact_id=artifact.id,
                keep_last=keep_last,
                max_age_seconds=_seconds(max_age),
                keep_aliased=keep_aliased,
            )
        )
    else:
        row.keep_last = keep_last
        row.max_age_seconds = _seconds(max_age)
        row.keep_aliased = keep_aliased
    session.flush()
    details = {
        "keep_last": keep_last,
        "max_age_seconds": _seconds(max_age),
        "keep_aliased": keep_aliased,
    }
    audit.record(session, actor, "retention", target, artifact_id=artifact.id, details=details)


def _seconds(value: dt.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def retention_of(session: Session, artifact_id: int) -> RetentionPolicy | None:
    found = session.execute(
        select(RetentionRow, ProjectRow.name, ArtifactRow.name)
        .join(ArtifactRow, ArtifactRow.id == RetentionRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(RetentionRow.artifact_id == artifact_id)
    ).first()
    return None if found is None else _policy(*found)


def all_retention(session: Session) -> list[tuple[int, RetentionPolicy]]:
    rows = session.execute(
        select(RetentionRow, ProjectRow.name, ArtifactRow.name)
        .join(ArtifactRow, ArtifactRow.id == RetentionRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .order_by(ProjectRow.name, ArtifactRow.name)
    ).all()
    return [(row.artifact_id, _policy(row, project, name)) for row, project, name in rows]


def _policy(row: RetentionRow, project: str, name: str) -> RetentionPolicy:
    age = None if row.max_age_seconds is None else dt.timedelta(seconds=row.max_age_seconds)
    return RetentionPolicy(project, name, row.keep_last, age, bool(row.keep_aliased))


def prune_candidates(session: Session, now: dt.datetime) -> list[tuple[VersionRow, str]]:
    """The live versions retention or TTL would delete now, with the rule that does:
    ``ttl`` (past its expiry, no user alias), ``keep_last`` or ``max_age`` (an artifact's
    policy; never its newest version, and not aliased ones when ``keep_aliased``)."""
    aliased = set(
        session.execute(select(AliasRow.version_id).where(AliasRow.name != LATEST)).scalars()
    )
    # linked into the registry, or under a protected alias: these never expire
    kept = linked_sources(session) | protected_versions(session)
    chosen: dict[int, tuple[VersionRow, str]] = {}
    expired = session.execute(
        select(VersionRow).where(
            VersionRow.deleted_at.is_(None),
            VersionRow.expires_at.is_not(None),
            VersionRow.expires_at <= now,
        )
    ).scalars()
    for version in expired:
        if version.id not in aliased and version.id not in kept:
            chosen[version.id] = (version, "ttl")
    for artifact_id, policy in all_retention(session):
        live = list(
            session.execute(
                select(VersionRow)
                .where(VersionRow.artifact_id == artifact_id, VersionRow.deleted_at.is_(None))
                .order_by(VersionRow.number.desc())
            ).scalars()
        )
        counted = 0
        for position, version in enumerate(live):
            if position == 0:  # the newest version stays whatever the policy says
                counted += 1
                continue
            if version.id in kept or (policy.keep_aliased and version.id in aliased):
                continue
            counted += 1
            if policy.keep_last is not None and counted > policy.keep_last:
                chosen.setdefault(version.id, (version, "keep_last"))
            elif policy.max_age is not None and version.created_at < now - policy.max_age:
                chosen.setdefault(version.id, (version, "max_age"))
    return sorted(chosen.values(), key=lambda pair: pair[0].id)


def linked_sources(session: Session) -> set[int]:
    """Versions that a live registry version links."""
    found = session.execute(
        select(VersionRow.source_version_id).where(
            VersionRow.source_version_id.is_not(None), VersionRow.deleted_at.is_(None)
        )
    ).scalars()
    return {version_id for version_id in found if version_id is not None}


def protected_versions(session: Session) -> set[int]:
    return set(
        session.execute(
            select(AliasRow.version_id).join(
                ProtectedAliasRow,
                (ProtectedAliasRow.artifact_id == AliasRow.artifact_id)
                & (ProtectedAliasRow.alias == AliasRow.name),
            )
        ).scalars()
    )


def unique_bytes(session: Session, version_ids: Sequence[int]) -> int:
    """Bytes of the stored files only these versions hold (no other unpurged version
    does): what gc frees once their grace period is over."""
    if not version_ids:
        return 0
    wanted = set(version_ids)
    digests: dict[str, int] = {}
    query = select(EntryRow.digest, EntryRow.size).where(
        EntryRow.version_id.in_(bulk.id_list(session)), EntryRow.uri.is_(None)
    )
    for digest, size in bulk.rows_for(session, query, wanted):
        if digest is not None:
            digests[digest] = size
    if not digests:
        return 0
    others = (
        select(EntryRow.digest)
        .join(VersionRow, VersionRow.id == EntryRow.version_id)
        .where(
            EntryRow.digest.in_(bulk.string_list(session)),
            VersionRow.purged_at.is_(None),
            VersionRow.id.not_in(wanted),
        )
        .distinct()
    )
    shared = {row[0] for row in bulk.rows_for_strings(session, others, set(digests))}
    return sum(size for digest, size in digests.items() if digest not in shared)


def versions_to_purge(session: Session, cutoff: dt.datetime) -> list[VersionRow]:
    """Deleted versions whose grace period is over and whose bytes gc has not purged."""
    return list(
        session.execute(
            select(VersionRow)
            .where(
                VersionRow.deleted_at.is_not(None),
                VersionRow.deleted_at <= cutoff,
                VersionRow.purged_at.is_(None),
            )
            .with_for_update()  # a restore committing meanwhile takes the row out of the set
        ).scalars()
    )


def mark_purged(session: Session, versions: Sequence[VersionRow], actor: str) -> None:
    """gc purges deleted versions: their entries go (their bytes are collected in the same
    pass), the version stays as a node of the lineage, marked deleted. A few statements for
    every thousand versions."""
    stamp = utcnow()
    names: dict[int, str] = {}
    events = []
    for start in range(0, len(versions), 1000):
        batch = versions[start : start + 1000]
        ids = [v.id for v in batch]
        params = bulk.ids_param(session, ids)
        for table in (EntryRow, RedactionRow):
            session.execute(
                delete(table).where(table.version_id.in_(bulk.id_list(session))), params
            )
        session.execute(
            update(VersionRow)
            .where(VersionRow.id.in_(bulk.id_list(session)))
            .values(purged_at=stamp),
            params,
        )
        for version in batch:
            if version.artifact_id not in names:
                names[version.artifact_id] = artifact_name(session, version.artifact_id)
            target = f"{names[version.artifact_id]}:v{version.number}"
            events.append(
                audit.row(
                    stamp, actor, "gc", target, version.artifact_id, version.id, {"purged": True}
                )
            )
    audit.record_many(session, events)
    session.expire_all()
