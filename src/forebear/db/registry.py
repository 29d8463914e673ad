"""The registry: the reserved project ``registry``, whose collections hold links.

A registry version is a version row of its own (its own number, aliases, tags, history)
whose ``source_version_id`` names the version it links. It has the source's digest and a
copy of its entry rows: a few catalog rows, no bytes (the objects are the source's). Every
path that reads a version's entries (download, diff, verify, which, gc's references)
works on a link unchanged, and gc keeps the objects while either row needs them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, insert, literal, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, VersionNotFound
from ..paths import REGISTRY, Ref, is_version
from . import audit, webhooks
from .aliases import LATEST, artifact_name, set_alias, version_at
from .lifecycle import qualified
from .projects import get_artifact, get_or_create_artifact, get_or_create_project
from .schema import ArtifactRow, Base, EntryRow, RedactionRow, VersionRow, utcnow
from .versions import deleted_message, get_version, version_row


def link(
    session: Session,
    source: VersionRow,
    collection: str,
    *,
    actor: str,
    run_id: str | None,
    aliases: list[str],
    reason: str | None,
) -> tuple[VersionRow, bool]:
    """The registry version of ``collection`` that links ``source`` (the one already
    there for the same content, else a new one), with ``aliases`` moved to it."""
    if source.deleted_at is not None:
        raise InvalidInput(f"{qualified(session, source)} is deleted: restore it before linking")
    if source.source_version_id is not None:  # a link of a link links the source itself
        source = version_row(session, source.source_version_id)
    source_artifact_type = _artifact_type(session, source)
    project = get_or_create_project(session, REGISTRY)
    artifact = get_or_create_artifact(session, project, collection, source_artifact_type)
    existing = session.execute(
        select(VersionRow).where(
            VersionRow.artifact_id == artifact.id,
            VersionRow.digest == source.digest,
            VersionRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    created = existing is None
    if existing is None:
        number = artifact.next_number
        artifact.next_number = number + 1
        existing = VersionRow(
            artifact_id=artifact.id,
            number=number,
            digest=source.digest,
            hash_algorithm=source.hash_algorithm,
            size=source.size,
            file_count=source.file_count,
            description=source.description,
            metadata_=dict(source.metadata_ or {}),
            created_at=utcnow(),
            created_by=run_id,
            chunking=source.chunking,
            new_bytes=0,
            shared_bytes=source.size,
            source_version_id=source.id,
        )
        session.add(existing)
        session.flush()
        _copy_rows(session, source.id, existing.id)
        set_alias(session, artifact.id, LATEST, existing.id, run_id, actor=actor)
    for alias in aliases:
        set_alias(session, artifact.id, alias, existing.id, run_id, actor=actor, reason=reason)
    if created:
        name = f"{REGISTRY}/{collection}:v{existing.number}"
        source_name = qualified(session, source)
        details: dict[str, Any] = {"source": source_name}
        if aliases:
            details["aliases"] = list(aliases)
        audit.record(
            session, actor, "link", name,
            artifact_id=artifact.id, version_id=existing.id, run_id=run_id, details=details,
        )  # fmt: skip
        webhooks.queue(
            session,
            "version.linked",
            actor,
            {"version": name, "source": source_name, "digest": source.digest, "aliases": aliases},
        )
    return existing, created


def _artifact_type(session: Session, version: VersionRow) -> str:
    return session.execute(
        select(ArtifactRow.type).where(ArtifactRow.id == version.artifact_id)
    ).scalar_one()


def _copy_rows(session: Session, source_id: int, link_id: int) -> None:
    """The source's entries and redactions under the link, copied inside the database
    (tags and aliases are the link's own)."""
    entries = Base.metadata.tables[EntryRow.__tablename__]
    session.execute(
        insert(entries).from_select(
            ["version_id", "path", "digest", "size", "uri", "etag"],
            select(
                literal(link_id, Integer),
                entries.c.path,
                entries.c.digest,
                entries.c.size,
                entries.c.uri,
                entries.c.etag,
            ).where(entries.c.version_id == source_id),
        )
    )
    redactions = Base.metadata.tables[RedactionRow.__tablename__]
    session.execute(
        insert(redactions).from_select(
            ["version_id", "path", "purge_id"],
            select(literal(link_id, Integer), redactions.c.path, redactions.c.purge_id).where(
                redactions.c.version_id == source_id
            ),
        )
    )


def version_at_moment(
    session: Session, ref: Ref, default_project: str | None, at: dt.datetime
) -> VersionRow:
    """The version ``ref`` named at moment ``at``: an alias from its history; a version
    number only if it existed then."""
    artifact = get_artifact(session, ref, default_project)
    if is_version(ref.selector):
        version = get_version(session, ref, default_project)
        if version.created_at > at:
            raise VersionNotFound(
                f"{ref.name}:{ref.selector} did not exist yet at {at.isoformat()} "
                f"(it was logged at {version.created_at.isoformat()})"
            )
        return version
    version_id = version_at(session, artifact.id, ref.selector, at)
    if version_id is None:
        name = artifact_name(session, artifact.id)
        raise VersionNotFound(
            f"alias {ref.selector!r} of {name} pointed at no version at {at.isoformat()} "
            f"(see its moves: 'forebear history {name}')"
        )
    version = version_row(session, version_id)
    if version.deleted_at is not None:
        raise VersionNotFound(
            deleted_message(version, Ref(ref.project, ref.name, f"v{version.number}"))
        )
    return version
