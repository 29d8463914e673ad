"""The commit protocol (write bottom-up): objects first, then the manifest object, then one
catalog transaction that makes the version visible.

0. files logged before and unchanged since (by their stats) make a version that is still
   whole: record the log of that version and stop (`unchanged.logged_before`);
1. prepare: hash every file, write the canonical manifest (`ingest.prepare`);
2. find existing: is a version with this digest committed already (then its objects are
   only checked, and what went missing is stored again);
3. lease: take a writer's lease and register every object before storing it, so gc keeps
   it until the commit (`leases.Lease`);
4. store the objects the location lacks, each checked (`ingest.store_objects`);
5. flush: make them durable with one filesystem sync;
6. commit: in one transaction, check the lease is still held and the catalog is still the
   store's, insert the version (or find it), its entries, chunk lists, edge and aliases,
   and give the lease up.

A crash at any point leaves at most unreachable objects, never a partial version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import ingest, progress, staged
from ..chunk_storing import Catalog
from ..chunking import ChunkList
from ..db import audit, lifecycle, webhooks
from ..db import chunks as db_chunks
from ..db import identity as catalog_identity
from ..db import packs as db_packs
from ..db import purges as db_purges
from ..db import versions as db_versions
from ..db.engine import Session, read_session, write_session
from ..errors import InvalidInput, StoreError
from ..paths import check_alias, check_name
from ..records import VersionData
from . import identity, unchanged
from .leases import Lease

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from .backend import LocalBackend


def check_catalog(backend: LocalBackend, session: Session) -> None:
    """Inside a writing transaction: refuse a catalog that is no longer the one the store
    was opened with (deleted, replaced, or another store's)."""
    identity.check(catalog_identity.store_id(session), backend.store_id, backend.engine)
    backend.catalog_file.check()


def catalog_of(backend: LocalBackend) -> Catalog:
    """What storing objects asks this backend's catalog, each question in a short read."""

    def chunk_lists(digests: list[str]) -> dict[str, ChunkList]:
        with read_session(backend.engine) as session:
            return db_chunks.chunk_lists_for(session, digests)

    def committed(digests: list[str]) -> set[str]:
        with read_session(backend.engine) as session:
            return db_chunks.committed_among(session, digests)

    def purged(digests: list[str]) -> set[str]:
        with read_session(backend.engine) as session:
            return db_purges.purged_among(session, digests)

    return Catalog(chunk_lists, committed, purged)


def whole_mark(backend: LocalBackend) -> str | None:
    """The store's whole mark now (see `unchanged`); None without packs, where every loose
    object is looked for instead."""
    if backend.objects.packs is None:
        return None
    with read_session(backend.engine) as session:
        store_id, count = catalog_identity.store_id(session), db_packs.forget_count(session)
    if count is None:  # a store with packs from before the count: start it now
        with write_session(backend.engine) as session:
            db_packs.start_counting(session)
            count = db_packs.forget_count(session)
    return f"{store_id}:{count}" if store_id is not None and count is not None else None


class CatalogQuestions:
    """What an unchanged re-log asks the catalog (`unchanged.Questions`), each question
    in a short read through SQLAlchemy."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend

    def live_version(self, project: str, name: str, digest: str) -> VersionData | None:
        with read_session(self.backend.engine) as session:
            known = db_versions.live_version_id(session, project, name, digest)
            return None if known is None else db_versions.load_versions(session, [known])[known]

    def redacted(self, version_id: int) -> bool:
        return bool(self.backend.redactions(version_id))

    def unpacked_files(
        self, version_id: int, after: str | None, limit: int
    ) -> list[tuple[str, str, int]]:
        with read_session(self.backend.engine) as session:
            return db_packs.unpacked_files(session, version_id, after, limit)

    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        return self.backend.chunk_lists(digests)


def record_logged(
    session: Session,
    actor: str,
    row: Any,
    created: bool,
    run_id: str | None,
    aliases: Sequence[str],
    tags: Sequence[str],
    files: int,
) -> None:
    """The audit event of a log, and (for a new version) its ``version.logged`` webhook."""
    details: dict[str, object] = {"created": created, "files": files}
    if aliases or tags:
        details.update(aliases=list(aliases), tags=list(tags))
    name = lifecycle.qualified(session, row)
    audit.record(
        session, actor, "log", name,
        artifact_id=row.artifact_id, version_id=row.id, run_id=run_id, details=details,
    )  # fmt: skip
    if created:
        webhooks.queue(
            session, "version.logged", actor,
            {"version": name, "digest": row.digest, "run": run_id, "aliases": list(aliases),
             "files": files},
        )  # fmt: skip


def log(
    backend: LocalBackend,
    artifact: Artifact,
    *,
    project: str,
    run_id: str | None,
    aliases: Sequence[str] = (),
    tags: Sequence[str] = (),
    ttl: dt.timedelta | None = None,
    show_progress: bool | None = None,
    prepared: ingest.Prepared | None = None,
    relog_checked: bool = False,
) -> VersionData:
    """Hash and store an artifact's files, then commit the version in one transaction.
    ``prepared``: the files hashed already (the caller closes it); ``relog_checked``: the
    re-log check (`unchanged.logged_before`) ran already and found no version."""
    check_name(project, "project")
    aliases = [check_alias(a) for a in aliases]
    tags = [check_alias(t, "tag") for t in tags]
    if not len(artifact):
        raise InvalidInput(
            f"artifact {artifact.name!r} is empty; add files with add_file/add_dir first"
        )
    backend.require_writable()
    mark = whole_mark(backend)  # before any object is looked for
    again = None
    if not relog_checked:
        again = unchanged.logged_before(
            CatalogQuestions(backend), backend.stat_cache, backend.objects, artifact, project, mark
        )
    if again is not None:
        return log_again(
            backend, artifact, again, project=project, run_id=run_id, aliases=aliases,
            tags=tags, ttl=ttl,
        )  # fmt: skip
    show = progress.wanted(show_progress)
    if prepared is None:
        objects = backend.objects
        packed = objects.is_local and objects.packs is not None
        stage_into = staged.staging_folder(objects.root) if packed else None
        with ingest.prepare(
            artifact, backend.stat_cache, show, backend.own_files(), stage_into
        ) as mine:
            return _store_and_commit(
                backend, artifact, mine, mark, project=project, run_id=run_id,
                aliases=aliases, tags=tags, ttl=ttl, show=show,
            )  # fmt: skip
    return _store_and_commit(
        backend, artifact, prepared, mark, project=project, run_id=run_id, aliases=aliases,
        tags=tags, ttl=ttl, show=show,
    )  # fmt: skip


def _store_and_commit(
    backend: LocalBackend,
    artifact: Artifact,
    prepared: ingest.Prepared,
    mark: Any,
    *,
    project: str,
    run_id: str | None,
    aliases: Sequence[str],
    tags: Sequence[str],
    ttl: dt.timedelta | None,
    show: bool,
) -> VersionData:
    """Store the objects a hashed artifact needs, then commit its version."""
    with read_session(backend.engine) as session:
        known = db_versions.live_version_id(session, project, artifact.name, prepared.digest)
        purged = (
            frozenset(r.digest for r in db_purges.redactions(session, known))
            if known is not None
            else frozenset()
        )
    with Lease(backend.engine) as lease:
        ingest.store_objects(
            prepared,
            backend.objects,
            lease.register,
            catalog_of(backend),
            backend.chunking,
            artifact.name,
            show,
            relog=known is not None,
            withheld=purged,
        )
        backend.objects.flush()
        contents = db_versions.Contents(
            prepared.size,
            prepared.file_count,
            prepared.entry_values(),
            prepared.chunk_lists(backend.chunking),
            backend.chunking,
            prepared.new_bytes,
            prepared.shared_bytes,
        )

        logged = commit_logged(
            backend, lease, artifact, contents, prepared.digest, project=project,
            run_id=run_id, aliases=aliases, tags=tags, ttl=ttl,
            before=still_live(f"{project}/{artifact.name}", known),
        )  # fmt: skip
    unchanged.remember(backend, artifact, prepared, mark)
    return logged


def log_again(
    backend: LocalBackend,
    artifact: Artifact,
    version: VersionData,
    *,
    project: str,
    run_id: str | None,
    aliases: Sequence[str],
    tags: Sequence[str],
    ttl: dt.timedelta | None,
) -> VersionData:
    """Record a log of files known to make ``version`` (found by `unchanged.logged_before`):
    the same commit as any log finding its version, with nothing to store."""
    contents = db_versions.Contents(version.size, version.file_count, ())
    with Lease(backend.engine) as lease:
        return commit_logged(
            backend, lease, artifact, contents, version.digest, project=project,
            run_id=run_id, aliases=aliases, tags=tags, ttl=ttl,
            before=still_live(f"{project}/{artifact.name}", version.id),
        )  # fmt: skip


def still_live(name: str, known: int | None) -> Callable[[Session], None]:
    """The commit's check that the version a log found committed (``known``) was not deleted
    meanwhile: its objects were only checked, not held, so gc may take them now."""

    def check(session: Session) -> None:
        if known is not None and not db_versions.is_live(session, known):
            raise StoreError(
                f"{name}: the version with this content was deleted while this log ran; "
                "log it again"
            )

    return check


def commit_logged(
    backend: LocalBackend,
    lease: Lease,
    artifact: Artifact,
    contents: db_versions.Contents,
    digest: str,
    *,
    project: str,
    run_id: str | None,
    aliases: Sequence[str],
    tags: Sequence[str],
    ttl: dt.timedelta | None,
    before: Callable[[Session], None],
) -> VersionData:
    """The last step of the protocol, in one transaction: check the lease, the catalog and
    what ``before`` checks, insert the version (or find it) with its edge, aliases and
    tags, record the log and give the lease up; then check the commit went into the
    catalog file the store opened."""
    with write_session(backend.engine) as session:
        lease.check(session)
        check_catalog(backend, session)
        before(session)
        row, created = db_versions.commit_version(
            session,
            project=project,
            name=artifact.name,
            type_=artifact.type,
            contents=contents,
            digest=digest,
            description=artifact.description,
            metadata=artifact.metadata,
            run_id=run_id,
            aliases=aliases,
            tags=tags,
            ttl=ttl,
            actor=backend.actor,
        )
        record_logged(
            session, backend.actor, row, created, run_id, aliases, tags, contents.file_count
        )
        lease.release(session)
        data = db_versions.load_versions(session, [row.id])[row.id]
    backend.catalog_file.check()
    return data
