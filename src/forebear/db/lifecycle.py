"""Changing committed versions and runs: edits (description, metadata, tags, aliases, TTL),
soft deletion and restoring, retention policies and what `prune` would delete.

Every function runs in the caller's transaction and records its audit event there. The
manifest and digest of a version never change; its number is never given to another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidInput, RunNotFound, VersionNotFound
from . import audit, bulk, webhooks
from .aliases import (
    LATEST,
    artifact_names,
    lock_artifact,
    lock_artifacts,
    remove_alias,
    set_alias,
)
from .retention import VersionKey
from .schema import (
    AliasRow,
    ArtifactRow,
    ProjectRow,
    RunRow,
    TagRow,
    VersionRow,
    utcnow,
)

_UNSET: Any = object()


def qualified(session: Session, version: VersionRow) -> str:
    project, name = session.execute(
        select(ProjectRow.name, ArtifactRow.name)
        .join(ArtifactRow, ArtifactRow.project_id == ProjectRow.id)
        .where(ArtifactRow.id == version.artifact_id)
    ).one()
    return f"{project}/{name}:v{version.number}"


# -- tags -----------------------------------------------------------------------------------


def tags_for(session: Session, version_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = set(version_ids)
    found: dict[int, list[str]] = {i: [] for i in ids}
    query = select(TagRow.version_id, TagRow.name).where(
        TagRow.version_id.in_(bulk.id_list(session))
    )
    for version_id, name in bulk.rows_for(session, query, ids):
        found[version_id].append(name)
    for names in found.values():
        names.sort()
    return found


def add_tags(session: Session, version_id: int, tags: Iterable[str]) -> list[str]:
    """Add tags a version lacks; the ones added."""
    have = set(tags_for(session, [version_id])[version_id])
    added = sorted(set(tags) - have)
    for tag in added:
        session.add(TagRow(version_id=version_id, name=tag))
    session.flush()
    return added


def remove_tags(session: Session, version_id: int, tags: Iterable[str]) -> list[str]:
    wanted = set(tags)
    have = set(tags_for(session, [version_id])[version_id])
    removed = sorted(wanted & have)
    if removed:
        session.execute(
            delete(TagRow).where(TagRow.version_id == version_id, TagRow.name.in_(removed))
        )
    return removed


def newest_version_ids(
    session: Session,
    project: str | None,
    type_: str | None,
    *,
    tags: Sequence[str] = (),
    include_deleted: bool = False,
) -> list[int]:
    """Per artifact (of a project, of a type), its newest live version carrying every one
    of ``tags``; with ``include_deleted``, artifacts whose every such version is deleted
    are listed by their newest deleted one."""
    conditions: list[Any] = []
    if project is not None:
        conditions.append(ProjectRow.name == project)
    if type_ is not None:
        conditions.append(ArtifactRow.type == type_)
    for tag in sorted(set(tags)):
        conditions.append(
            select(TagRow.version_id)
            .where(TagRow.version_id == VersionRow.id, TagRow.name == tag)
            .exists()
        )

    def newest(*extra: Any) -> Any:
        return (
            select(
                VersionRow.artifact_id.label("artifact_id"),
                func.max(VersionRow.number).label("number"),
            )
            .join(ArtifactRow, ArtifactRow.id == VersionRow.artifact_id)
            .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
            .where(*conditions, *extra)
            .group_by(VersionRow.artifact_id)
            .subquery()
        )

    live = newest(VersionRow.deleted_at.is_(None))
    if not include_deleted:
        chosen_artifact, chosen_number = live.c.artifact_id, live.c.number
        source: Any = live
    else:
        kept = newest(VersionRow.purged_at.is_(None))
        source = kept.outerjoin(live, live.c.artifact_id == kept.c.artifact_id)
        chosen_artifact = kept.c.artifact_id
        chosen_number = func.coalesce(live.c.number, kept.c.number)
    query = (
        select(VersionRow.id)
        .select_from(source)
        .join(
            VersionRow,
            (VersionRow.artifact_id == chosen_artifact) & (VersionRow.number == chosen_number),
        )
    )
    return list(session.execute(query).scalars())


# -- edits ----------------------------------------------------------------------------------


def edit(
    session: Session,
    version: VersionRow,
    actor: str,
    *,
    description: str | None = _UNSET,
    metadata: dict[str, Any] = _UNSET,
    tags: Sequence[str] = _UNSET,
    aliases: Sequence[str] = _UNSET,
    expires_at: dt.datetime | None = _UNSET,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Apply the given changes to a live version; returns what changed (the audit
    event's details), empty when nothing did."""
    lock_artifact(session, version.artifact_id)
    session.refresh(version)
    if version.deleted_at is not None:
        raise InvalidInput(f"{qualified(session, version)} is deleted; restore it to edit it")
    changes: dict[str, Any] = {}
    if description is not _UNSET and description != version.description:
        changes["description"] = {"from": version.description, "to": description}
        version.description = description
    if metadata is not _UNSET and metadata != (version.metadata_ or {}):
        changes["metadata"] = {"from": version.metadata_ or {}, "to": metadata}
        version.metadata_ = metadata
    if expires_at is not _UNSET and expires_at != version.expires_at:
        changes["expires_at"] = {
            "from": _iso(version.expires_at),
            "to": _iso(expires_at),
        }
        version.expires_at = expires_at
    if tags is not _UNSET:
        have = set(tags_for(session, [version.id])[version.id])
        added = add_tags(session, version.id, set(tags) - have)
        removed = remove_tags(session, version.id, have - set(tags))
        if added or removed:
            changes["tags"] = {"added": added, "removed": removed}
    if aliases is not _UNSET:
        moved = _edit_aliases(session, version, aliases, run_id, actor)
        if moved:
            changes["aliases"] = moved
    if changes:
        session.flush()
        audit.record(
            session, actor, "edit", qualified(session, version),
            artifact_id=version.artifact_id, version_id=version.id, run_id=run_id,
            details=changes,
        )  # fmt: skip
    return changes


def _edit_aliases(
    session: Session, version: VersionRow, wanted: Sequence[str], run_id: str | None, actor: str
) -> dict[str, list[str]]:
    have = set(
        session.execute(select(AliasRow.name).where(AliasRow.version_id == version.id)).scalars()
    )
    target = set(wanted)
    if (LATEST in have) != (LATEST in target):
        raise InvalidInput(
            "'latest' is kept on the newest version by forebear: it cannot be added or removed"
        )
    added = sorted(target - have)
    removed = sorted(have - target)
    for alias in added:
        set_alias(session, version.artifact_id, alias, version.id, run_id, actor=actor)
    for alias in removed:
        remove_alias(session, version.artifact_id, alias, version.id, actor=actor)
    return {"added": added, "removed": removed} if added or removed else {}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- deletion -------------------------------------------------------------------------------


def user_aliases(session: Session, version_id: int) -> list[str]:
    return sorted(
        name
        for name in session.execute(
            select(AliasRow.name).where(AliasRow.version_id == version_id)
        ).scalars()
        if name != LATEST
    )


def delete_version(
    session: Session,
    version: VersionRow,
    actor: str,
    *,
    delete_aliases: bool,
    reason: str | None = None,
) -> None:
    """Soft-delete a live version: refused while user aliases point at it (unless
    ``delete_aliases``); ``latest`` moves back to the newest live version."""
    lock_artifact(session, version.artifact_id)
    session.refresh(version)
    name = qualified(session, version)
    if version.deleted_at is not None:
        raise InvalidInput(f"{name} is deleted already")
    links = links_of(session, version.id)
    if links:
        raise InvalidInput(
            f"{name} is linked into the registry as {', '.join(links)}: unlink it first "
            f"(delete the registry version: 'forebear delete {links[0]}')"
        )
    aliases = user_aliases(session, version.id)
    if aliases and not delete_aliases:
        listed = ", ".join(aliases)
        raise InvalidInput(
            f"{name} has aliases {listed}: move or remove them first, or delete it with "
            "delete_aliases=True (CLI: --delete-aliases)"
        )
    for alias in aliases:
        remove_alias(session, version.artifact_id, alias, version.id, actor=actor, reason=reason)
    version.deleted_at = utcnow()
    version.deleted_by = actor[:256]
    session.flush()
    _point_latest_at_newest(session, version.artifact_id)
    details: dict[str, Any] = {"aliases_removed": aliases} if aliases else {}
    if reason:
        details["by"] = reason
    webhooks.queue(session, "version.deleted", actor, {"version": name, **details})
    audit.record(
        session, actor, "delete", name,
        artifact_id=version.artifact_id, version_id=version.id, details=details,
    )  # fmt: skip


def delete_many(
    session: Session, versions: Sequence[VersionKey], actor: str, reasons: dict[int, str]
) -> None:
    """Soft-delete many live versions at once (what `prune` decided), their user aliases
    removed: a few statements in all (a lock on their artifacts, in id order; their
    aliases; the update; where ``latest`` must move), not a few per artifact or version;
    one audit event and one ``version.deleted`` event each, inserted together."""
    if not versions:
        return
    stamp = utcnow()
    artifacts = sorted({version.artifact_id for version in versions})
    lock_artifacts(session, artifacts)
    names = artifact_names(session, artifacts)
    params = bulk.ids_param(session, [version.id for version in versions])
    aliased = session.execute(
        select(AliasRow.artifact_id, AliasRow.name, AliasRow.version_id)
        .where(AliasRow.version_id.in_(bulk.id_list(session)), AliasRow.name != LATEST)
        .order_by(AliasRow.artifact_id, AliasRow.name),
        params,
    ).all()
    removed: dict[int, list[str]] = {}
    for artifact_id, name, version_id in aliased:
        remove_alias(session, artifact_id, name, version_id, actor=actor, reason="prune")
        removed.setdefault(version_id, []).append(name)
    session.execute(
        update(VersionRow)
        .where(VersionRow.id.in_(bulk.id_list(session)), VersionRow.deleted_at.is_(None))
        .values(deleted_at=stamp, deleted_by=actor[:256])
        .execution_options(synchronize_session=False),  # the session is expired below
        params,
    )
    for artifact_id in _latest_out_of_date(session, artifacts):
        _point_latest_at_newest(session, artifact_id)
    events: list[dict[str, Any]] = []
    deleted: list[dict[str, Any]] = []
    for row in sorted(versions, key=lambda v: (v.artifact_id, v.id)):
        details: dict[str, Any] = {"by": reasons[row.id]} if row.id in reasons else {}
        if removed.get(row.id):
            details["aliases_removed"] = sorted(removed[row.id])
        target = f"{names[row.artifact_id]}:v{row.number}"
        events.append(audit.row(stamp, actor, "delete", target, row.artifact_id, row.id, details))
        deleted.append({"version": target, **details})
    audit.record_many(session, events)
    webhooks.queue_many(session, "version.deleted", actor, deleted)
    session.expire_all()


def _latest_out_of_date(session: Session, artifact_ids: Sequence[int]) -> list[int]:
    """Which of these artifacts' ``latest`` does not name their newest live version (two
    queries for them all)."""
    params = bulk.ids_param(session, artifact_ids)
    top = (
        select(VersionRow.artifact_id, func.max(VersionRow.number).label("number"))
        .where(VersionRow.artifact_id.in_(bulk.id_list(session)), VersionRow.deleted_at.is_(None))
        .group_by(VersionRow.artifact_id)
        .subquery()
    )
    newest = select(VersionRow.artifact_id, VersionRow.id).join(
        top, (top.c.artifact_id == VersionRow.artifact_id) & (top.c.number == VersionRow.number)
    )
    current = select(AliasRow.artifact_id, AliasRow.version_id).where(
        AliasRow.artifact_id.in_(bulk.id_list(session)), AliasRow.name == LATEST
    )
    wanted = {artifact: version for artifact, version in session.execute(newest, params)}
    named = {artifact: version for artifact, version in session.execute(current, params)}
    return [a for a in artifact_ids if wanted.get(a) != named.get(a)]


def restore_version(session: Session, version: VersionRow, actor: str) -> None:
    lock_artifact(session, version.artifact_id)
    session.refresh(version)
    name = qualified(session, version)
    if version.deleted_at is None:
        raise InvalidInput(f"{name} is not deleted")
    if version.purged_at is not None:
        raise VersionNotFound(
            f"{name} was purged by gc at {version.purged_at:%Y-%m-%d %H:%M UTC} (its bytes "
            "are gone): it can no longer be restored"
        )
    twin = session.execute(
        select(VersionRow.number).where(
            VersionRow.artifact_id == version.artifact_id,
            VersionRow.digest == version.digest,
            VersionRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if twin is not None:
        raise InvalidInput(
            f"{name} holds the same content as v{twin}, logged after it was deleted; use "
            f"v{twin} instead"
        )
    version.deleted_at = None
    version.deleted_by = None
    session.flush()
    _point_latest_at_newest(session, version.artifact_id)
    audit.record(
        session, actor, "restore", name, artifact_id=version.artifact_id, version_id=version.id
    )


def _point_latest_at_newest(session: Session, artifact_id: int) -> None:
    """``latest`` is the live version with the highest number (none when none is live)."""
    newest = session.execute(
        select(VersionRow.id)
        .where(VersionRow.artifact_id == artifact_id, VersionRow.deleted_at.is_(None))
        .order_by(VersionRow.number.desc())
        .limit(1)
    ).scalar_one_or_none()
    current = session.get(AliasRow, (artifact_id, LATEST))
    if newest is None:
        if current is not None:
            remove_alias(session, artifact_id, LATEST, current.version_id)
    elif current is None or current.version_id != newest:
        set_alias(session, artifact_id, LATEST, newest, None)


def delete_run(session: Session, run_id: str, actor: str) -> RunRow:
    run = session.execute(select(RunRow).where(RunRow.id == run_id)).scalar_one_or_none()
    if run is None:
        raise RunNotFound(f"no run {run_id!r} (run 'forebear runs' to list them)")
    if run.deleted_at is not None:
        raise InvalidInput(f"run {run_id} is deleted already")
    run.deleted_at = utcnow()
    run.deleted_by = actor[:256]
    session.flush()
    audit.record(session, actor, "delete-run", f"run {run_id}", run_id=run_id)
    return run


def run_to_change(session: Session, run_id: str) -> RunRow:
    """A run that is not deleted, locked until the transaction ends; `RunNotFound` or
    `InvalidInput` otherwise."""
    run = session.execute(
        select(RunRow).where(RunRow.id == run_id).with_for_update()
    ).scalar_one_or_none()
    if run is None:
        raise RunNotFound(f"no run {run_id!r} (run 'forebear runs' to list them)")
    if run.deleted_at is not None:
        raise InvalidInput(f"run {run_id} is deleted: a deleted run is not changed")
    return run


def resume_run(
    session: Session, run: RunRow, actor: str, process: dict[str, Any], was: str
) -> RunRow:
    """Make a run that ended (``was`` its status as read: finished, failed or crashed)
    running again for a new process, its heartbeat now, with an audit event; the
    ``process`` (`forebear.runchecks.checked_process`) replaces the old one's in its
    context, by which readers judge whether it is alive."""
    run.status = "running"
    run.ended_at = None
    run.heartbeat_at = utcnow()
    run.context = {**(run.context or {}), **process}
    session.flush()
    audit.record(session, actor, "resume-run", f"run {run.id}", run_id=run.id, details={"was": was})
    return run


def edit_run(session: Session, run_id: str, actor: str, changes: dict[str, Any]) -> RunRow:
    """Change a run after the fact (see `forebear.runchecks.checked_run_edit`): its name,
    config or summary, or the tags and notes its context keeps, with an audit event."""
    run = run_to_change(session, run_id)
    context = dict(run.context or {})
    if "tags" in changes and isinstance(context.get("tags"), dict):
        raise InvalidInput(
            f"run {run_id} keeps the tags of the MLflow run it was imported from; its W&B "
            "tags cannot be set"
        )
    details: dict[str, Any] = {}
    for field, value in changes.items():
        if field in ("tags", "notes"):
            before = context.pop(field, None)
            if value is not None:
                context[field] = value
        else:
            before = getattr(run, field)
            setattr(run, field, value)
        details[field] = _run_change(field, before, value)
    run.context = context
    session.flush()
    audit.record(session, actor, "edit-run", f"run {run_id}", run_id=run_id, details=details)
    return run


def _run_change(field: str, before: Any, after: Any) -> dict[str, Any]:
    """What the audit trail keeps of a change of a run: a name or notes from and to, tags
    added and removed, the keys of a config or summary that changed."""
    if field == "tags":
        had = before if isinstance(before, list) else []
        return {
            "added": [t for t in after if t not in had],
            "removed": [t for t in had if t not in after],
        }
    if field in ("config", "summary"):
        old: dict[str, Any] = before or {}
        new: dict[str, Any] = after or {}
        return {"keys": sorted(k for k in {*old, *new} if old.get(k, ...) != new.get(k, ...))}
    return {"from": before, "to": after}


# -- retention and expiry -------------------------------------------------------------------


def links_of(session: Session, version_id: int) -> list[str]:
    """The live registry versions that link this version, by name."""
    rows = session.execute(
        select(VersionRow).where(
            VersionRow.source_version_id == version_id, VersionRow.deleted_at.is_(None)
        )
    ).scalars()
    return [qualified(session, row) for row in rows]
