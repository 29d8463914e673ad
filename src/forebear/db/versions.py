"""Versions: loading them, resolving refs, committing new ones (gapless numbers), their entries.

Plain functions over a Session: ``get_*`` raise, ``find_*`` return None, ``list_*`` return
lists. Nothing here touches objects or the filesystem."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Table, Text, cast, select
from sqlalchemy.orm import Session

from ..chunking import Chunking, ChunkList
from ..errors import (
    IntegrityError,
    InvalidInput,
    StoreError,
    VersionNotFound,
)
from ..hashing import HASH_ALGORITHM
from ..manifest import EntryFields, ManifestEntry, checked_entry
from ..paths import REGISTRY, Ref, is_name, is_version, version_number
from ..records import INTEGER_LIMIT, VersionData
from . import bulk, traversal
from .aliases import LATEST, set_alias
from .chunks import add_chunk_lists
from .drafts import EntryCopy, copy_entries, entry_count
from .projects import get_artifact, get_or_create_artifact, get_or_create_project
from .runs import add_edge, run_pk
from .schema import (
    AliasRow,
    ArtifactRow,
    Base,
    EntryRow,
    ProjectRow,
    RunRow,
    TagRow,
    VersionRow,
    utcnow,
)

MAX_VERSION = 2**31 - 1  # version numbers are 32-bit integers in the catalog

_BATCH = 5000


class Contents(NamedTuple):
    """What a version holds: its entries in path order (read once, batch by batch, and
    only when the version is new) and their totals, known before the entries are read;
    the chunk lists of its chunked files that the catalog may not have yet; how files were
    cut; the bytes of its stored files that were new to the object location and those
    found there already (None: not known)."""

    size: int
    file_count: int
    entries: Iterable[EntryFields]
    chunk_lists: Iterable[ChunkList] = ()
    chunking: Chunking | None = None
    new_bytes: int | None = None
    shared_bytes: int | None = None
    copied_from: EntryCopy | None = None  # a draft: the entries it keeps of its base


_VERSION_COLUMNS = (
    VersionRow.id,
    VersionRow.artifact_id,
    ProjectRow.name,
    ArtifactRow.name,
    VersionRow.number,
    ArtifactRow.type,
    VersionRow.digest,
    VersionRow.hash_algorithm,
    VersionRow.size,
    VersionRow.file_count,
    VersionRow.description,
    cast(VersionRow.metadata_, Text),
    VersionRow.created_at,
    VersionRow.created_by,
    cast(VersionRow.chunking, Text),
    VersionRow.new_bytes,
    VersionRow.shared_bytes,
    VersionRow.deleted_at,
    VersionRow.deleted_by,
    VersionRow.purged_at,
    VersionRow.expires_at,
    VersionRow.source_version_id,
)


def load_versions(
    session: Session, version_ids: Iterable[int], type_: str | None = None
) -> dict[int, VersionData]:
    """Many versions at once, optionally only those of one artifact type."""
    query = (
        select(*_VERSION_COLUMNS)
        .join(ArtifactRow, ArtifactRow.id == VersionRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(VersionRow.id.in_(bulk.id_list(session)))
    )
    if type_ is not None:
        query = query.where(ArtifactRow.type == type_)
    found: dict[int, VersionData] = {}
    for row in bulk.rows_for(session, query, version_ids):
        values: tuple[Any, ...] = tuple(row)  # in the order of _VERSION_COLUMNS
        data = VersionData(*values)
        if not (is_name(data.project) and is_name(data.name)):
            raise IntegrityError(
                f"the catalog holds a malformed project or artifact name "
                f"{data.project!r}/{data.name!r}; it was changed outside forebear, and is "
                "refused (restore the catalog from a backup)"
            )
        found[values[0]] = data
    return found


def get_version(session: Session, ref: Ref, default_project: str | None) -> VersionRow:
    """The live version a ref names; a deleted one is refused with who deleted it, when,
    and how to restore it."""
    version = find_version(session, ref, default_project)
    if version.deleted_at is not None:
        raise VersionNotFound(deleted_message(version, ref))
    return version


def version_row(session: Session, version_id: int) -> VersionRow:
    found = session.get(VersionRow, version_id)
    if found is None:
        raise VersionNotFound(f"no version with id {version_id} (was the catalog replaced?)")
    return found


def find_version(session: Session, ref: Ref, default_project: str | None) -> VersionRow:
    """The version a ref names, deleted or not (aliases only ever name live ones)."""
    artifact = get_artifact(session, ref, default_project)
    version: VersionRow | None = None
    if is_version(ref.selector):
        number = version_number(ref.selector)
        if number < MAX_VERSION:  # larger ones cannot exist (nor be bound as parameters)
            version = session.execute(
                select(VersionRow).where(
                    VersionRow.artifact_id == artifact.id, VersionRow.number == number
                )
            ).scalar_one_or_none()
    else:
        version = session.execute(
            select(VersionRow)
            .join(AliasRow, AliasRow.version_id == VersionRow.id)
            .where(AliasRow.artifact_id == artifact.id, AliasRow.name == ref.selector)
        ).scalar_one_or_none()
    if version is None:
        count = artifact.next_number
        have = f"v0..v{count - 1}" if count else "no versions"
        if ref.selector == LATEST and count:
            have = "no live version: every one is deleted ('forebear versions --deleted')"
        raise VersionNotFound(
            f"no version {ref.name}:{ref.selector}; the artifact has {have} "
            f"(run 'forebear versions {ref.name}')"
        )
    return version


def deleted_message(version: VersionRow, ref: Ref) -> str:
    when = version.deleted_at.strftime("%Y-%m-%d %H:%M UTC") if version.deleted_at else "?"
    name = f"{ref.project + '/' if ref.project else ''}{ref.name}:v{version.number}"
    text = f"{name} was deleted by {version.deleted_by or 'someone'} at {when}"
    if version.purged_at is not None:
        purged = version.purged_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{text}, and gc purged its bytes at {purged}: it can no longer be restored"
    return f"{text}; restore it with 'forebear restore {name}' (or store.restore({name!r}))"


def commit_version(
    session: Session,
    *,
    project: str,
    name: str,
    type_: str,
    contents: Contents,
    digest: str,
    description: str | None,
    metadata: dict[str, Any],
    run_id: str | None,
    aliases: Iterable[str],
    tags: Iterable[str] = (),
    ttl: dt.timedelta | None = None,
    actor: str | None = None,
) -> tuple[VersionRow, bool]:
    """Insert a version (or find the one with the same content), its entries, the run's
    output edge, the alias moves and tags, all in the caller's transaction; a ``ttl``
    (counted from the version's creation) is set on it.

    Returns the version and whether it was created.
    """
    version, created = _find_or_insert_version(
        session,
        project=project,
        name=name,
        type_=type_,
        contents=contents,
        digest=digest,
        description=description,
        metadata=metadata,
        created_at=utcnow(),
        created_by=run_id,
    )
    # Lineage stays acyclic by construction: a new version cannot be anyone's input yet,
    # and a run that re-creates the exact bytes of one of its own ancestors is not recorded
    # as that ancestor's producer (the version would become its own ancestor).
    if run_id is not None:
        pk = run_pk(session, run_id)
        if created or not traversal.run_descends_from(session, pk, version.id):
            add_edge(session, pk, version.id, "out")
    for alias in [LATEST, *aliases]:
        set_alias(session, version.artifact_id, alias, version.id, run_id, actor=actor)
    for tag in sorted(set(tags)):
        if session.get(TagRow, (version.id, tag)) is None:
            session.add(TagRow(version_id=version.id, name=tag))
    if ttl is not None:
        version.expires_at = version.created_at + ttl
    session.flush()
    return version, created


def place_version(
    session: Session, data: VersionData, contents: Contents
) -> tuple[VersionRow, bool]:
    """Bring a version from another store: same content, description, metadata, creation
    time and first producer (which must already be here); the next free number."""
    return _find_or_insert_version(
        session,
        project=data.project,
        name=data.name,
        type_=data.type,
        contents=contents,
        digest=data.digest,
        description=data.description,
        metadata=data.metadata,
        created_at=data.created_at,
        created_by=data.created_by,
    )


def _table(row: type[Base]) -> Table:
    """The Core table of a mapped class: bulk inserts through it skip ORM bookkeeping."""
    return Base.metadata.tables[row.__tablename__]


def live_version_id(session: Session, project: str, name: str, digest: str) -> int | None:
    """The artifact's live version with this manifest digest, if committed (then every
    object it needs is stored: objects are written before the commit)."""
    found = session.execute(
        select(VersionRow.id)
        .join(ArtifactRow, ArtifactRow.id == VersionRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(
            ProjectRow.name == project,
            ArtifactRow.name == name,
            VersionRow.digest == digest,
            VersionRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    return found


def _find_or_insert_version(
    session: Session,
    *,
    project: str,
    name: str,
    type_: str,
    contents: Contents,
    digest: str,
    description: str | None,
    metadata: dict[str, Any],
    created_at: dt.datetime,
    created_by: str | None,
) -> tuple[VersionRow, bool]:
    """The artifact's version with this digest, or a new one numbered inside this
    transaction (the artifact row is locked, so numbers stay unique and gapless)."""
    if project == REGISTRY:
        raise InvalidInput(
            f"project {REGISTRY!r} holds links only: log into your own project, then link "
            "the version into the registry"
        )
    if not 0 <= contents.size < INTEGER_LIMIT:  # each file's size is checked, not their sum
        raise InvalidInput(
            f"{project}/{name}: its files add up to {contents.size} bytes, more than a "
            "catalog can hold; no files are that large: check the sizes its references report"
        )
    project_row = get_or_create_project(session, project)
    artifact = get_or_create_artifact(session, project_row, name, type_)
    version = session.execute(
        select(VersionRow).where(
            VersionRow.artifact_id == artifact.id,
            VersionRow.digest == digest,
            VersionRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if version is not None:
        return version, False
    number = artifact.next_number
    artifact.next_number = number + 1
    version = VersionRow(
        artifact_id=artifact.id,
        number=number,
        digest=digest,
        hash_algorithm=HASH_ALGORITHM,
        size=contents.size,
        file_count=contents.file_count,
        description=description,
        metadata_=metadata,
        created_at=created_at,
        created_by=created_by,
        chunking=contents.chunking.to_dict() if contents.chunking else None,
        new_bytes=contents.new_bytes,
        shared_bytes=contents.shared_bytes,
    )
    session.add(version)
    session.flush()
    if contents.copied_from is not None:
        copy_entries(session, contents.copied_from, version.id)
    version_id = version.id  # an ORM attribute: read once, not for each of a million rows
    columns = ("path", "digest", "size", "uri", "etag")
    bulk.insert_values(
        session,
        _table(EntryRow),
        columns,
        contents.entries,
        fixed={"version_id": version_id},
        batch=_BATCH,
    )
    add_chunk_lists(session, contents.chunk_lists)
    if contents.copied_from is not None and entry_count(session, version.id) != contents.file_count:
        raise StoreError(  # the base changed under the draft: nothing is committed
            f"{project}/{name}: the version this draft starts from changed while it was "
            "logged; log it again"
        )
    return version, True


def move_latest_if_newer(session: Session, version: VersionRow) -> None:
    """Point ``latest`` at this version unless the artifact has a newer one."""
    current = session.execute(
        select(VersionRow)
        .join(AliasRow, AliasRow.version_id == VersionRow.id)
        .where(AliasRow.artifact_id == version.artifact_id, AliasRow.name == LATEST)
    ).scalar_one_or_none()
    if current is None or current.created_at <= version.created_at:
        set_alias(session, version.artifact_id, LATEST, version.id, None)


def list_entries(
    session: Session, version_id: int, start: int = 0, limit: int | None = None
) -> list[ManifestEntry]:
    """A version's entries in path order, or one page of them (the primary key's order)."""
    query = (
        select(EntryRow.path, EntryRow.digest, EntryRow.size, EntryRow.uri, EntryRow.etag)
        .where(EntryRow.version_id == version_id)
        .order_by(EntryRow.path)
        .offset(start)
        .limit(limit)
    )
    return [checked_entry(*row) for row in session.connection().execute(query).all()]


def entries_after(
    session: Session, version_id: int, after: str | None, limit: int | None = None
) -> list[ManifestEntry]:
    """One page of a version's entries in path order, those after the path ``after``
    (keyset pagination: a page costs the same however deep it starts, unlike OFFSET)."""
    query = select(
        EntryRow.path, EntryRow.digest, EntryRow.size, EntryRow.uri, EntryRow.etag
    ).where(EntryRow.version_id == version_id)
    if after is not None:
        query = query.where(EntryRow.path > after)
    page = query.order_by(EntryRow.path).limit(limit or _BATCH)
    rows = session.connection().execute(page).all()
    return [checked_entry(*row) for row in rows]


def latest_version_ids(
    session: Session, project: str | None = None, type_: str | None = None
) -> list[int]:
    """The version ``latest`` points to, for every artifact (of a project or type)."""
    query = (
        select(AliasRow.version_id)
        .join(ArtifactRow, ArtifactRow.id == AliasRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(AliasRow.name == LATEST)
    )
    if project is not None:
        query = query.where(ProjectRow.name == project)
    if type_ is not None:
        query = query.where(ArtifactRow.type == type_)
    return list(session.execute(query).scalars())


def counts(session: Session) -> dict[str, int]:
    """How many projects, artifacts, live versions and runs the catalog holds, and how
    many deleted versions wait for gc."""
    from sqlalchemy import func

    found = {
        name: int(session.execute(select(func.count()).select_from(row)).scalar_one())
        for name, row in (("projects", ProjectRow), ("artifacts", ArtifactRow), ("runs", RunRow))
    }
    for name, condition in (
        ("versions", VersionRow.deleted_at.is_(None)),
        ("deleted_versions", VersionRow.deleted_at.is_not(None) & VersionRow.purged_at.is_(None)),
    ):
        found[name] = int(
            session.execute(
                select(func.count()).select_from(VersionRow).where(condition)
            ).scalar_one()
        )
    return found


def is_live(session: Session, version_id: int) -> bool:
    found = session.execute(
        select(VersionRow.deleted_at).where(VersionRow.id == version_id)
    ).first()
    return found is not None and found[0] is None


def all_version_ids(session: Session) -> list[int]:
    """Every live version's id, in the order versions were committed."""
    return list(
        session.execute(
            select(VersionRow.id).where(VersionRow.deleted_at.is_(None)).order_by(VersionRow.id)
        ).scalars()
    )


def list_versions(
    session: Session, artifact_id: int, include_deleted: bool = False
) -> list[VersionRow]:
    query = select(VersionRow).where(VersionRow.artifact_id == artifact_id)
    if not include_deleted:
        query = query.where(VersionRow.deleted_at.is_(None))
    return list(session.execute(query.order_by(VersionRow.number)).scalars())
