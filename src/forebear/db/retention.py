"""Retention and expiry: each artifact's policy, which versions `prune` deletes (TTL,
keep-last, max-age; never the newest, a linked source or a protected alias's version),
the bytes only they hold, and which deleted versions gc purges.

Every function runs in the caller's transaction and records its audit event there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session, aliased

from ..records import RetentionPolicy
from . import audit, bulk
from .aliases import LATEST, artifact_names
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

_PURGE_BATCH = 1000  # versions per statement of a purge


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


class VersionKey(NamedTuple):
    """What deleting or purging many versions needs of each: ids and number, no ORM row."""

    id: int
    artifact_id: int
    number: int


_KEY = (VersionRow.id, VersionRow.artifact_id, VersionRow.number)


def prune_candidates(session: Session, now: dt.datetime) -> list[tuple[VersionKey, str]]:
    """The live versions retention or TTL would delete now, with the rule that does:
    ``ttl`` (past its expiry, no user alias), ``keep_last`` or ``max_age`` (an artifact's
    policy; never its newest version, and not aliased ones when ``keep_aliased``).

    Two reads of plain rows: the expired versions, and the live versions of every artifact
    with a policy, newest first (the order the policy counts them in)."""
    aliased = set(
        session.execute(select(AliasRow.version_id).where(AliasRow.name != LATEST)).scalars()
    )
    # linked into the registry, or under a protected alias: these never expire
    kept = linked_sources(session) | protected_versions(session)
    chosen: dict[int, tuple[VersionKey, str]] = {}
    expired = session.execute(
        select(*_KEY).where(
            VersionRow.deleted_at.is_(None),
            VersionRow.expires_at.is_not(None),
            VersionRow.expires_at <= now,
        )
    )
    for row in expired:
        if row.id not in aliased and row.id not in kept:
            chosen[row.id] = (VersionKey(*row), "ttl")
    policies = dict(all_retention(session))
    if not policies:
        return sorted(chosen.values())
    live = session.execute(
        select(*_KEY, VersionRow.created_at)
        .join(RetentionRow, RetentionRow.artifact_id == VersionRow.artifact_id)
        .where(VersionRow.deleted_at.is_(None))
        .order_by(VersionRow.artifact_id, VersionRow.number.desc())
    )
    for artifact_id, rows in groupby(live, key=itemgetter(1)):
        policy = policies[artifact_id]
        counted = 0
        for position, (version_id, _, number, created_at) in enumerate(rows):
            if position == 0:  # the newest version stays whatever the policy says
                counted += 1
                continue
            if version_id in kept or (policy.keep_aliased and version_id in aliased):
                continue
            counted += 1
            key = VersionKey(version_id, artifact_id, number)
            if policy.keep_last is not None and counted > policy.keep_last:
                chosen.setdefault(version_id, (key, "keep_last"))
            elif policy.max_age is not None and created_at < now - policy.max_age:
                chosen.setdefault(version_id, (key, "max_age"))
    return sorted(chosen.values())


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
    does): what gc frees once their grace period is over. Counted in one statement, of
    two kinds: looking their digests up one by one in the digest index
    (`_unique_by_lookup`), or, when they hold a good part of the catalog's entries (the
    versions' file counts say), one ordered pass over that index (`_unique_by_scan`)."""
    if not version_ids:
        return 0
    ids = sorted(set(version_ids))
    params = bulk.ids_param(session, ids)
    theirs, everyone = session.execute(
        select(
            func.coalesce(
                func.sum(case((VersionRow.id.in_(bulk.id_list(session)), VersionRow.file_count))),
                0,
            ),
            func.coalesce(func.sum(VersionRow.file_count), 0),
        ).where(VersionRow.purged_at.is_(None)),
        params,
    ).one()
    scan = theirs * SCAN_SHARE >= everyone
    statement = _unique_by_scan(session) if scan else _unique_by_lookup(session)
    return int(session.execute(statement, params).scalar_one())


# Versions holding at least 1/SCAN_SHARE of the catalog's entries are counted with one pass
# over the digest index: a step of that pass costs a fraction of a lookup of a random digest
# (and of grouping their entries by digest), which is what the other way does per entry.
SCAN_SHARE = 4


def _unique_by_lookup(session: Session) -> Any:
    """Their entries grouped by digest, each digest kept when these versions hold every
    entry with it (counted in the digest index: purged versions have no entries left)
    and at least one as a stored file."""
    own = (
        select(
            EntryRow.digest,
            func.max(case((EntryRow.uri.is_(None), EntryRow.size))).label("size"),
            func.count().label("entries"),
        )
        .where(EntryRow.version_id.in_(bulk.id_list(session)), EntryRow.digest.is_not(None))
        .group_by(EntryRow.digest)
        .subquery()
    )
    holders = aliased(EntryRow)
    everywhere = (
        select(func.count())
        .select_from(holders)
        .where(holders.digest == own.c.digest)
        .scalar_subquery()
    )
    return select(func.coalesce(func.sum(own.c.size), 0)).where(
        own.c.size.is_not(None), own.c.entries == everywhere
    )


def _unique_by_scan(session: Session) -> Any:
    """One ordered pass over the digest index finds the digests held by more than one
    entry (few, unless files repeat across versions); their stored entries held by no
    such digest count as they are, and the digests held more than once count once when
    all their entries are theirs."""
    shared = (
        select(EntryRow.digest, func.count().label("holders"))
        .where(EntryRow.digest.is_not(None))
        .group_by(EntryRow.digest)
        .having(func.count() > 1)
        .cte("shared")
    )
    alone = aliased(EntryRow)
    single = (
        select(func.coalesce(func.sum(alone.size), 0))
        .where(
            alone.version_id.in_(bulk.id_list(session)),
            alone.uri.is_(None),
            alone.digest.is_not(None),
            ~select(shared.c.digest).where(shared.c.digest == alone.digest).exists(),
        )
        .scalar_subquery()
    )
    many = aliased(EntryRow)
    grouped = (
        select(
            func.max(case((many.uri.is_(None), many.size))).label("size"),
            func.count().label("entries"),
            func.max(shared.c.holders).label("holders"),
        )
        .select_from(many)
        .join(shared, shared.c.digest == many.digest)
        .where(many.version_id.in_(bulk.id_list(session)))
        .group_by(many.digest)
        .subquery()
    )
    repeated = (
        select(func.coalesce(func.sum(grouped.c.size), 0))
        .where(grouped.c.size.is_not(None), grouped.c.entries == grouped.c.holders)
        .scalar_subquery()
    )
    return select(single + repeated)


def versions_to_purge(session: Session, cutoff: dt.datetime) -> list[VersionKey]:
    """Deleted versions whose grace period is over and whose bytes gc has not purged."""
    rows = session.execute(
        select(*_KEY)
        .where(
            VersionRow.deleted_at.is_not(None),
            VersionRow.deleted_at <= cutoff,
            VersionRow.purged_at.is_(None),
        )
        .order_by(VersionRow.id)
        .with_for_update()  # a restore committing meanwhile takes the row out of the set
    )
    return [VersionKey(*row) for row in rows]


def mark_purged(session: Session, versions: Sequence[VersionKey], actor: str) -> None:
    """gc purges deleted versions: their entries go (their bytes are collected in the same
    pass), the version stays as a node of the lineage, marked deleted. A few statements for
    every thousand versions, none of them loading rows into the session (which is expired
    afterwards); the audit events in one insert."""
    stamp = utcnow()
    names = artifact_names(session, {v.artifact_id for v in versions})
    plain = {"synchronize_session": False}
    with bulk.large_cache(session):
        for start in range(0, len(versions), _PURGE_BATCH):
            batch = versions[start : start + _PURGE_BATCH]
            params = bulk.ids_param(session, [v.id for v in batch])
            for table in (EntryRow, RedactionRow):
                session.execute(
                    delete(table)
                    .where(table.version_id.in_(bulk.id_list(session)))
                    .execution_options(**plain),
                    params,
                )
            session.execute(
                update(VersionRow)
                .where(VersionRow.id.in_(bulk.id_list(session)))
                .values(purged_at=stamp)
                .execution_options(**plain),
                params,
            )
    events = []
    for v in versions:
        target = f"{names[v.artifact_id]}:v{v.number}"
        events.append(audit.row(stamp, actor, "gc", target, v.artifact_id, v.id, {"purged": True}))
    audit.record_many(session, events)
    session.expire_all()
