"""Catalog operations: plain functions over a Session. ``get_*`` raise, ``find_*`` return
None, ``list_*`` return lists. Nothing here touches objects or the filesystem."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import Table, Text, cast, insert, select, update
from sqlalchemy.orm import Session

from ..chunking import Chunking, ChunkList
from ..errors import (
    ArtifactNotFound,
    IntegrityError,
    InvalidInput,
    RunNotFound,
    VersionNotFound,
)
from ..hashing import HASH_ALGORITHM
from ..manifest import ManifestEntry, checked_entry
from ..paths import Ref, is_name, is_version, version_number
from . import bulk, traversal
from .bulk import insert_ignoring_duplicates
from .schema import (
    AliasHistoryRow,
    AliasRow,
    ArtifactRow,
    Base,
    ChunkListRow,
    ChunkMemberRow,
    EdgeRow,
    EntryRow,
    ProjectRow,
    RunRow,
    VersionRow,
    utcnow,
)

LATEST = "latest"
MAX_VERSION = 2**31 - 1  # version numbers are 32-bit integers in the catalog
_BATCH = 5000
_LIST_BATCH = 500  # digests per IN (...) query, well under every database's parameter limit


class Contents(NamedTuple):
    """What a version holds: its entries in path order (read once, batch by batch, and
    only when the version is new) and their totals, known before the entries are read;
    the chunk lists of its chunked files that the catalog may not have yet; how files were
    cut; the bytes of its stored files that were new to the object location and those
    found there already (None: not known)."""

    size: int
    file_count: int
    entries: Iterable[ManifestEntry]
    chunk_lists: Iterable[ChunkList] = ()
    chunking: Chunking | None = None
    new_bytes: int | None = None
    shared_bytes: int | None = None


class VersionData(NamedTuple):
    """What the catalog knows about one version, detached from any session (a named tuple:
    cheap to build by the hundred thousand)."""

    id: int
    artifact_id: int
    project: str
    name: str
    number: int
    type: str
    digest: str
    hash_algorithm: str
    size: int
    file_count: int
    description: str | None
    metadata_json: str  # decoded on access: bulk loads of many versions skip the cost
    created_at: dt.datetime
    created_by: str | None
    chunking_json: str | None
    new_bytes: int | None
    shared_bytes: int | None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(json.loads(self.metadata_json)) if self.metadata_json else {}

    @property
    def chunking(self) -> Chunking | None:
        found = json.loads(self.chunking_json) if self.chunking_json else None
        return Chunking.from_dict(found) if found else None


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


class RunSummary(NamedTuple):
    """What a lineage graph shows of a run."""

    pk: int
    id: str
    name: str
    status: str
    started_at: dt.datetime
    project: str


def load_run_summaries(session: Session, run_pks: Iterable[int]) -> dict[int, RunSummary]:
    """Many runs at once, by their integer key (without their config or context)."""
    query = (
        select(RunRow.pk, RunRow.id, RunRow.name, RunRow.status, RunRow.started_at,
               ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == RunRow.project_id)
        .where(RunRow.pk.in_(bulk.id_list(session)))
    )  # fmt: skip
    found: dict[int, RunSummary] = {}
    for row in bulk.rows_for(session, query, run_pks):
        values: tuple[Any, ...] = tuple(row)
        found[values[0]] = RunSummary(*values)
    return found


# -- projects and artifacts ------------------------------------------------------------


def get_or_create_project(session: Session, name: str) -> ProjectRow:
    insert_ignoring_duplicates(session, ProjectRow, [{"name": name, "created_at": utcnow()}])
    return session.execute(select(ProjectRow).where(ProjectRow.name == name)).scalar_one()


def find_project(session: Session, name: str) -> ProjectRow | None:
    return session.execute(select(ProjectRow).where(ProjectRow.name == name)).scalar_one_or_none()


def get_or_create_artifact(
    session: Session, project: ProjectRow, name: str, type_: str
) -> ArtifactRow:
    insert_ignoring_duplicates(
        session,
        ArtifactRow,
        [
            {
                "project_id": project.id,
                "name": name,
                "type": type_,
                "next_number": 0,
                "created_at": utcnow(),
            }
        ],
    )
    artifact = session.execute(
        select(ArtifactRow)
        .where(ArtifactRow.project_id == project.id, ArtifactRow.name == name)
        .with_for_update()  # serialises writers of one artifact on PostgreSQL
    ).scalar_one()
    if artifact.type != type_:
        raise InvalidInput(
            f"artifact '{project.name}/{name}' has type {artifact.type!r}, not {type_!r}; "
            "log it with the same type or choose another name"
        )
    return artifact


def find_artifact(session: Session, project_id: int, name: str) -> ArtifactRow | None:
    return session.execute(
        select(ArtifactRow).where(ArtifactRow.project_id == project_id, ArtifactRow.name == name)
    ).scalar_one_or_none()


def get_artifact(session: Session, ref: Ref, default_project: str | None) -> ArtifactRow:
    """Resolve the artifact of ``ref``: an explicit project, else ``default_project`` if it
    has the name, else the only project that has it."""
    if ref.project is not None:
        project = find_project(session, ref.project)
        artifact = find_artifact(session, project.id, ref.name) if project else None
        if artifact is None:
            raise ArtifactNotFound(
                f"no artifact {ref.name!r} in project {ref.project!r} "
                "(run 'forebear ls' to see what exists)"
            )
        return artifact
    candidates = list(
        session.execute(
            select(ArtifactRow, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
            .where(ArtifactRow.name == ref.name)
            .order_by(ProjectRow.name)
        ).all()
    )
    if default_project is not None:
        for artifact, project_name in candidates:
            if project_name == default_project:
                return artifact
    if len(candidates) == 1:
        return candidates[0][0]
    if not candidates:
        raise ArtifactNotFound(
            f"no artifact named {ref.name!r} (run 'forebear ls' to see what exists)"
        )
    names = ", ".join(f"'{p}/{ref.name}'" for _, p in candidates)
    raise ArtifactNotFound(
        f"artifact {ref.name!r} exists in several projects; name one of: {names}"
    )


def project_name(session: Session, project_id: int) -> str:
    return session.execute(select(ProjectRow.name).where(ProjectRow.id == project_id)).scalar_one()


def get_version(session: Session, ref: Ref, default_project: str | None) -> VersionRow:
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
        raise VersionNotFound(
            f"no version {ref.name}:{ref.selector}; the artifact has {have} "
            f"(run 'forebear versions {ref.name}')"
        )
    return version


# -- committing versions --------------------------------------------------------------


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
) -> tuple[VersionRow, bool]:
    """Insert a version (or find the one with the same content), its entries, the run's
    output edge and the alias moves, all in the caller's transaction.

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
        set_alias(session, version.artifact_id, alias, version.id, run_id)
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


def has_version(session: Session, project: str, name: str, digest: str) -> bool:
    """Whether the artifact already has a committed version with this manifest digest
    (then every object it needs is stored: objects are written before the commit)."""
    found = session.execute(
        select(VersionRow.id)
        .join(ArtifactRow, ArtifactRow.id == VersionRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(ProjectRow.name == project, ArtifactRow.name == name, VersionRow.digest == digest)
    ).first()
    return found is not None


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
    project_row = get_or_create_project(session, project)
    artifact = get_or_create_artifact(session, project_row, name, type_)
    version = session.execute(
        select(VersionRow).where(VersionRow.artifact_id == artifact.id, VersionRow.digest == digest)
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
    entries = iter(contents.entries)
    while batch := list(islice(entries, _BATCH)):  # Core executemany: no ORM bookkeeping
        rows = [
            {
                "version_id": version.id,
                "path": e.path,
                "digest": e.digest,
                "size": e.size,
                "uri": e.uri,
                "etag": e.etag,
            }
            for e in batch
        ]
        session.execute(insert(_table(EntryRow)), rows)
    add_chunk_lists(session, contents.chunk_lists)
    return version, True


# -- chunk lists ------------------------------------------------------------------------


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


def move_latest_if_newer(session: Session, version: VersionRow) -> None:
    """Point ``latest`` at this version unless the artifact has a newer one."""
    current = session.execute(
        select(VersionRow)
        .join(AliasRow, AliasRow.version_id == VersionRow.id)
        .where(AliasRow.artifact_id == version.artifact_id, AliasRow.name == LATEST)
    ).scalar_one_or_none()
    if current is None or current.created_at <= version.created_at:
        set_alias(session, version.artifact_id, LATEST, version.id, None)


def copy_run(session: Session, run: RunRow, project: str) -> None:
    """Insert a run from another store under the same id (runs ids are random and long
    enough not to collide in practice)."""
    project_row = get_or_create_project(session, project)
    session.add(
        RunRow(
            id=run.id,
            project_id=project_row.id,
            name=run.name,
            status=run.status,
            config=run.config,
            summary=run.summary,
            context=run.context,
            started_at=run.started_at,
            ended_at=run.ended_at,
        )
    )
    session.flush()


def _lock_artifact(session: Session, artifact_id: int) -> None:
    """Serialise alias moves of one artifact (a row lock on PostgreSQL; SQLite writers are
    serialised already), so concurrent first settings of an alias cannot collide."""
    session.execute(select(ArtifactRow.id).where(ArtifactRow.id == artifact_id).with_for_update())


def set_alias(
    session: Session, artifact_id: int, alias: str, version_id: int, run_id: str | None
) -> None:
    _lock_artifact(session, artifact_id)
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
    _lock_artifact(session, artifact_id)
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


def list_artifacts(
    session: Session, project: str | None = None, type_: str | None = None
) -> list[tuple[ArtifactRow, str]]:
    query = (
        select(ArtifactRow, ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .order_by(ProjectRow.name, ArtifactRow.name)
    )
    if project is not None:
        query = query.where(ProjectRow.name == project)
    if type_ is not None:
        query = query.where(ArtifactRow.type == type_)
    return [(a, p) for a, p in session.execute(query)]


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
    """How many projects, artifacts, versions and runs the catalog holds."""
    from sqlalchemy import func

    return {
        name: int(session.execute(select(func.count()).select_from(row)).scalar_one())
        for name, row in (
            ("projects", ProjectRow),
            ("artifacts", ArtifactRow),
            ("versions", VersionRow),
            ("runs", RunRow),
        )
    }


def list_versions(session: Session, artifact_id: int) -> list[VersionRow]:
    return list(
        session.execute(
            select(VersionRow)
            .where(VersionRow.artifact_id == artifact_id)
            .order_by(VersionRow.number)
        ).scalars()
    )


def all_object_digests(session: Session) -> set[str]:
    """Every object a committed version needs: manifests, stored entries (for a chunked
    file, the digest its chunk list is kept under) and the chunks of chunked files."""
    reachable: set[str] = set(session.execute(select(VersionRow.digest)).scalars())
    reachable.update(
        d
        for d in session.execute(
            select(EntryRow.digest).where(EntryRow.uri.is_(None)).distinct()
        ).scalars()
        if d is not None
    )
    used = select(EntryRow.digest).where(EntryRow.digest == ChunkMemberRow.file).exists()
    reachable.update(session.execute(select(ChunkMemberRow.chunk).where(used).distinct()).scalars())
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


# -- runs and edges ---------------------------------------------------------------------


def create_run(
    session: Session,
    *,
    run_id: str,
    project: str,
    name: str,
    config: dict[str, Any],
    context: dict[str, Any],
) -> RunRow:
    project_row = get_or_create_project(session, project)
    run = RunRow(
        id=run_id,
        project_id=project_row.id,
        name=name,
        status="running",
        config=config,
        summary={},
        context=context,
        started_at=utcnow(),
    )
    run.heartbeat_at = run.started_at
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: str) -> RunRow:
    run = session.execute(select(RunRow).where(RunRow.id == run_id)).scalar_one_or_none()
    if run is None:
        raise RunNotFound(f"no run with id {run_id!r} (run 'forebear runs' to list them)")
    return run


def list_runs(session: Session, project: str | None = None) -> list[tuple[RunRow, str]]:
    """Runs oldest first, each with its project's name (one query)."""
    query = (
        select(RunRow, ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == RunRow.project_id)
        .order_by(RunRow.started_at, RunRow.id)
    )
    if project is not None:
        query = query.where(ProjectRow.name == project)
    return [(run, name) for run, name in session.execute(query)]


def beat_run(session: Session, run_id: str) -> bool:
    """Record that a running run is alive; False once it is no longer running."""
    done = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "running")
        .values(heartbeat_at=utcnow())
    )
    return bool(getattr(done, "rowcount", 0))


def update_run(session: Session, run_id: str, **values: Any) -> None:
    session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def add_edge(session: Session, run_pk: int, version_id: int, direction: str) -> None:
    insert_ignoring_duplicates(
        session,
        EdgeRow,
        [{"run_pk": run_pk, "version_id": version_id, "direction": direction}],
    )


def run_pk(session: Session, run_id: str) -> int:
    pk = session.execute(select(RunRow.pk).where(RunRow.id == run_id)).scalar_one_or_none()
    if pk is None:
        raise RunNotFound(f"no run with id {run_id!r} (run 'forebear runs' to list them)")
    return int(pk)


def runs_of_version(session: Session, version_id: int, direction: str) -> list[RunRow]:
    """Runs that logged (``out``) or used (``in``) a version, oldest edge first."""
    return list(
        session.execute(
            select(RunRow)
            .join(EdgeRow, EdgeRow.run_pk == RunRow.pk)
            .where(EdgeRow.version_id == version_id, EdgeRow.direction == direction)
            .order_by(RunRow.started_at, RunRow.pk)
        ).scalars()
    )


def versions_of_run(session: Session, run_id: str, direction: str) -> list[VersionRow]:
    return list(
        session.execute(
            select(VersionRow)
            .join(EdgeRow, EdgeRow.version_id == VersionRow.id)
            .join(RunRow, RunRow.pk == EdgeRow.run_pk)
            .where(RunRow.id == run_id, EdgeRow.direction == direction)
            .order_by(VersionRow.id)
        ).scalars()
    )
