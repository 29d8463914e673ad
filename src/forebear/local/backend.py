"""`LocalBackend`: a SQL catalog (SQLite or PostgreSQL) and an fsspec object location,
used from this process. Everything that touches the catalog goes through `forebear.db`;
everything that touches bytes through `ObjectLocation`."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import settings as config
from ..backend import Backend
from ..cache import LocalCache
from ..chunking import DEFAULT_CHUNKING, Chunking, ChunkList
from ..db import aliases as db_aliases
from ..db import audit, traversal
from ..db import chunks as db_chunks
from ..db import lifecycle as db_lifecycle
from ..db import projects as db_projects
from ..db import purges as db_purges
from ..db import registry as db_registry
from ..db import retention as db_retention
from ..db import runs as db_runs
from ..db import versions as db_versions
from ..db.engine import (
    CatalogFile,
    Engine,
    after_commit,
    ensure_schema,
    make_engine,
    read_only_reason,
    read_session,
    redact,
    sqlite_file,
    write_session,
)
from ..errors import InvalidInput, Problem, StoreNotFound
from ..manifest import ManifestEntry
from ..objects import open_location
from ..paths import Ref
from ..records import (
    AuditEvent,
    LineageData,
    Redaction,
    RetentionPolicy,
    VersionData,
)
from ..reports import GcReport, PruneReport, PurgeReport, RepairReport
from ..statcache import StatCache
from . import collect, commit, distributed, drafts, identity, lifecycle, repair, verify, webhooks
from .access import LocalAccess
from .packs import LocalPacks
from .registry import LocalRegistry
from .runs import LocalRuns

if TYPE_CHECKING:
    from ..artifacts import Artifact


class LocalBackend(LocalAccess, LocalRegistry, LocalRuns, drafts.LocalDrafts, LocalPacks, Backend):
    """A store whose catalog and objects this process reaches directly."""

    def __init__(
        self,
        settings: config.StoreSettings,
        *,
        storage_options: dict[str, Any] | None = None,
        cache_max_bytes: int | None = None,
        chunking: Chunking | None = None,
        create: bool = True,
        format: int | None = None,  # `Store`'s own name for it
    ) -> None:
        self.source = settings.source
        self.actor = config.local_actor()  # who the audit trail says made each change
        self.db_url = settings.db_url
        self.objects_url = settings.objects_url
        self.cache_dir = settings.cache_dir
        bound = cache_max_bytes if cache_max_bytes is not None else settings.cache_max_bytes
        self.cache = LocalCache(self.cache_dir, bound)
        self.stat_cache = StatCache.in_folder(self.cache_dir)
        self.objects = open_location(settings.objects_url, storage_options)
        # how files logged from now on are cut (each version records the settings it used)
        self.chunking = chunking or DEFAULT_CHUNKING
        catalog_path = sqlite_file(settings.db_url)
        if not create and not settings.found:
            raise StoreNotFound(
                f"no forebear store in {os.getcwd()} or any folder above it (looked for "
                f"{config.DEFAULT_DIR}/ and {config.CONFIG_FILE}); make one here with "
                "'forebear init', or log something with 'forebear log PATH'"
            )
        if catalog_path is not None:
            identity.refuse_new_catalog(self.objects, settings.db_url, catalog_path)
            if not create and not os.path.exists(catalog_path):
                raise StoreNotFound(
                    f"no forebear store at {settings.objects_url!r} (chosen by "
                    f"{settings.source}): its catalog {catalog_path!r} does not exist; check "
                    "the path, or make the store with 'forebear init'"
                )
        # a catalog on read-only media or without write permission is opened read-only
        self.read_only = read_only_reason(settings.db_url)
        self.engine: Engine = make_engine(settings.db_url, read_only=self.read_only)
        ensure_schema(self.engine, read_only=self.read_only is not None, create=create)
        self.catalog_file = CatalogFile(settings.db_url)
        self.store_id = identity.bind(
            self.objects, self.engine, writable=self.read_only is None, create=create,
            new_format=format,
        )  # fmt: skip
        self.attach_packs()
        self.sender = webhooks.Sender(self.engine)
        after_commit(self.engine, self.sender.after_commit)

    def close(self) -> None:
        self.sender.close()
        self.engine.dispose()
        self.stat_cache.close()

    def require_writable(self) -> None:
        if self.read_only is not None:
            from ..errors import StoreError

            raise StoreError(
                f"the store's catalog {redact(self.db_url)} is read-only here "
                f"({self.read_only}); this needs a store you can write to"
            )

    # -- versions ------------------------------------------------------------------------

    def get_version(self, ref: Ref, default_project: str | None) -> VersionData:
        with read_session(self.engine) as session:
            row = db_versions.get_version(session, ref, default_project)
            return db_versions.load_versions(session, [row.id])[row.id]

    def version_by_id(self, version_id: int) -> VersionData:
        with read_session(self.engine) as session:
            row = db_versions.version_row(session, version_id)
            return db_versions.load_versions(session, [row.id])[row.id]

    def find_version(self, ref: Ref, default_project: str | None) -> VersionData:
        with read_session(self.engine) as session:
            row = db_versions.find_version(session, ref, default_project)
            return db_versions.load_versions(session, [row.id])[row.id]

    def latest_versions(
        self,
        project: str | None,
        type_: str | None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[VersionData]:
        with read_session(self.engine) as session:
            if tags or include_deleted:
                ids = db_lifecycle.newest_version_ids(
                    session, project, type_, tags=tags, include_deleted=include_deleted
                )
            else:  # the common case: one indexed lookup of every `latest` alias
                ids = db_versions.latest_version_ids(session, project, type_)
            return list(db_versions.load_versions(session, ids).values())

    def artifact_versions(
        self, ref: Ref, default_project: str | None, *, include_deleted: bool = False
    ) -> list[VersionData]:
        with read_session(self.engine) as session:
            artifact = db_projects.get_artifact(session, ref, default_project)
            rows = db_versions.list_versions(session, artifact.id, include_deleted)
            loaded = db_versions.load_versions(session, [r.id for r in rows])
        return [loaded[r.id] for r in rows]

    def all_versions(self) -> list[VersionData]:
        with read_session(self.engine) as session:
            ids = db_versions.all_version_ids(session)
            loaded = db_versions.load_versions(session, ids)
        return [loaded[i] for i in ids]

    def alias_history(self, ref: Ref, default_project: str | None) -> list[dict[str, Any]]:
        with read_session(self.engine) as session:
            artifact = db_projects.get_artifact(session, ref, default_project)
            return db_aliases.alias_history(session, artifact.id)

    def aliases(self, version_id: int) -> list[str]:
        with read_session(self.engine) as session:
            return db_aliases.aliases_of(session, version_id)

    def set_alias(
        self,
        version: VersionData,
        alias: str,
        run_id: str | None,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> None:
        self.require_writable()
        with write_session(self.engine) as session:
            _live(session, version)
            db_aliases.set_alias(
                session, version.artifact_id, alias, version.id, run_id,
                actor=self.actor, reason=reason, force=force,
            )  # fmt: skip
            self._audit_alias(session, version, _moved("set", alias, reason, force), run_id)

    def remove_alias(
        self, version: VersionData, alias: str, *, reason: str | None = None, force: bool = False
    ) -> bool:
        self.require_writable()
        with write_session(self.engine) as session:
            removed = db_aliases.remove_alias(
                session, version.artifact_id, alias, version.id,
                actor=self.actor, reason=reason, force=force,
            )  # fmt: skip
            if removed:
                self._audit_alias(session, version, _moved("removed", alias, reason, force), None)
            return removed

    def version_at(self, ref: Ref, default_project: str | None, at: dt.datetime) -> VersionData:
        with read_session(self.engine) as session:
            row = db_registry.version_at_moment(session, ref, default_project, at)
            return db_versions.load_versions(session, [row.id])[row.id]

    def _audit_alias(
        self, session: Any, version: VersionData, details: dict[str, Any], run_id: str | None
    ) -> None:
        audit.record(
            session, self.actor, "alias", f"{version.project}/{version.ref}",
            artifact_id=version.artifact_id, version_id=version.id, run_id=run_id,
            details=details,
        )  # fmt: skip

    def entries(self, version_id: int, start: int, limit: int | None) -> list[ManifestEntry]:
        with read_session(self.engine) as session:
            return db_versions.list_entries(session, version_id, start, limit)

    def entry_pages(self, version_id: int) -> Iterator[list[ManifestEntry]]:
        """Each page read in its own short transaction (keyset pagination needs no
        snapshot across pages: a committed version never changes)."""
        last: str | None = None
        while True:
            with read_session(self.engine) as session:
                page = db_versions.entries_after(session, version_id, last)
            if not page:
                return
            yield page
            last = page[-1].path

    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        wanted = list(digests)
        if not wanted:
            return {}
        with read_session(self.engine) as session:
            return db_chunks.chunk_lists_for(session, wanted)

    # -- lineage ----------------------------------------------------------------------------

    def reachable(
        self, version_id: int, *, upstream: bool, type_: str | None, depth: int | None
    ) -> list[tuple[VersionData, int]]:
        with read_session(self.engine) as session:
            distances = traversal.walk(session, version_id, upstream, depth).distances
            del distances[version_id]
            found = db_versions.load_versions(session, distances, type_)
        ordered = sorted(
            found.values(), key=lambda v: (distances[v.id], v.project, v.name, v.number)
        )
        return [(v, distances[v.id]) for v in ordered]

    def lineage(
        self, version_id: int, upstream: bool, downstream: bool, depth: int | None
    ) -> LineageData:
        """Without a depth the versions come from the ids-only closure query; with one,
        from the frontier walk, which stops after ``depth`` artifact hops."""
        if depth is not None and depth < 0:
            raise InvalidInput(f"depth must be 0 or more, not {depth}")
        version_ids: set[int] = {version_id}
        edges: set[traversal.Edge] = set()
        with read_session(self.engine) as session:
            for going_up, wanted in ((True, upstream), (False, downstream)):
                if not wanted:
                    continue
                if depth is None:
                    members = traversal.closure(session, version_id, going_up)
                    edges |= traversal.edges_among(session, members, going_up)
                else:
                    found = traversal.walk(session, version_id, going_up, depth, with_edges=True)
                    members = set(found.distances)
                    edges |= found.edges
                version_ids |= members
            links = traversal.links_among(session, version_ids)
            versions = db_versions.load_versions(session, version_ids)
            aliases = db_aliases.aliases_for(session, version_ids)
            runs = db_runs.load_run_summaries(session, {run_pk for run_pk, _, _ in edges})
        return LineageData(version_id, versions, aliases, runs, set(edges), frozenset(links))

    # -- writing -------------------------------------------------------------------------

    def log(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str | None,
        aliases: Sequence[str],
        tags: Sequence[str] = (),
        ttl: dt.timedelta | None = None,
        show_progress: bool | None,
    ) -> VersionData:
        log = commit.log if artifact.base is None else drafts.log_draft
        return log(
            self,
            artifact,
            project=project,
            run_id=run_id,
            aliases=aliases,
            tags=tags,
            ttl=ttl,
            show_progress=show_progress,
        )

    def upsert_part(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str,
        distributed_id: str,
        show_progress: bool | None,
    ) -> None:
        distributed.upsert(
            self, artifact, project=project, run_id=run_id, distributed_id=distributed_id,
            show_progress=show_progress,
        )  # fmt: skip

    def finish_distributed(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str,
        distributed_id: str,
        aliases: Sequence[str],
        show_progress: bool | None,
    ) -> VersionData:
        return distributed.finish(
            self, artifact, project=project, run_id=run_id, distributed_id=distributed_id,
            aliases=aliases, show_progress=show_progress,
        )  # fmt: skip

    # -- changing what was committed -----------------------------------------------------

    def tags(self, version_id: int) -> list[str]:
        with read_session(self.engine) as session:
            return db_lifecycle.tags_for(session, [version_id])[version_id]

    def redactions(self, version_id: int) -> list[Redaction]:
        with read_session(self.engine) as session:
            return db_purges.redactions(session, version_id)

    def edit_version(self, version: VersionData, changes: dict[str, Any]) -> VersionData:
        self.require_writable()
        with write_session(self.engine) as session:
            row = _row(session, version)
            db_lifecycle.edit(session, row, self.actor, **changes)
            return db_versions.load_versions(session, [row.id])[row.id]

    def delete_version(self, version: VersionData, *, delete_aliases: bool) -> VersionData:
        self.require_writable()
        with write_session(self.engine) as session:
            row = _row(session, version)
            db_lifecycle.delete_version(session, row, self.actor, delete_aliases=delete_aliases)
            return db_versions.load_versions(session, [row.id])[row.id]

    def restore_version(self, version: VersionData) -> VersionData:
        self.require_writable()
        with write_session(self.engine) as session:
            row = _row(session, version)
            db_lifecycle.restore_version(session, row, self.actor)
            return db_versions.load_versions(session, [row.id])[row.id]

    def set_retention(
        self,
        ref: Ref,
        default_project: str | None,
        *,
        keep_last: int | None,
        max_age: dt.timedelta | None,
        keep_aliased: bool,
    ) -> RetentionPolicy | None:
        self.require_writable()
        with write_session(self.engine) as session:
            artifact = db_projects.get_artifact(session, ref, default_project)
            target = f"{db_projects.project_name(session, artifact.project_id)}/{artifact.name}"
            db_retention.set_retention(
                session, artifact, self.actor, target,
                keep_last=keep_last, max_age=max_age, keep_aliased=keep_aliased,
            )  # fmt: skip
            return db_retention.retention_of(session, artifact.id)

    def retention_policies(self) -> list[RetentionPolicy]:
        with read_session(self.engine) as session:
            return [policy for _id, policy in db_retention.all_retention(session)]

    def prune(self, *, dry_run: bool) -> PruneReport:
        if not dry_run:
            self.require_writable()
        return lifecycle.prune(self, dry_run=dry_run)

    def which(self, digest: str) -> list[tuple[VersionData, str]]:
        held = lifecycle.which(self, digest)
        with read_session(self.engine) as session:
            loaded = db_versions.load_versions(session, {version_id for version_id, _ in held})
        return [(loaded[version_id], path) for version_id, path in held]

    def purge(self, digest: str, reason: str) -> PurgeReport:
        self.require_writable()
        return lifecycle.purge(self, digest, reason)

    def audit(
        self,
        ref: Ref | None,
        default_project: str | None,
        since: dt.datetime | None,
        *,
        whole_artifact: bool = False,
    ) -> list[AuditEvent]:
        with read_session(self.engine) as session:
            if ref is None:
                return audit.events(session, since=since)
            if whole_artifact:
                artifact = db_projects.get_artifact(session, ref, default_project)
                return audit.events(session, artifact_id=artifact.id, since=since)
            row = db_versions.find_version(session, ref, default_project)
            return audit.events(session, version_id=row.id, since=since)

    # -- the store as a whole ------------------------------------------------------------

    def verify(self, versions: Sequence[VersionData]) -> list[Problem]:
        return verify.problems(self, versions)

    def repair(self, versions: Sequence[VersionData], source: str | Path | None) -> RepairReport:
        self.require_writable()
        return repair.repair(self, versions, source)

    def gc(self, *, dry_run: bool, grace: dt.timedelta) -> GcReport:
        if not dry_run:
            self.require_writable()
        return collect.collect(self, dry_run=dry_run, grace=grace)

    def projects(self) -> list[str]:
        with read_session(self.engine) as session:
            return db_projects.project_names(session)

    def counts(self) -> dict[str, int]:
        with read_session(self.engine) as session:
            return db_versions.counts(session)

    def own_files(self) -> frozenset[str]:
        """A SQLite catalog (wherever it is) and the stat cache, with their journals."""
        return config.own_files(self.catalog_file.path, self.stat_cache.path)


def _row(session: Any, version: VersionData) -> Any:
    return db_versions.version_row(session, version.id)


def _live(session: Any, version: VersionData) -> None:
    """Refuse to change a version deleted since it was read."""
    if _row(session, version).deleted_at is not None:
        raise InvalidInput(f"{version.project}/{version.ref} is deleted; restore it first")


def _moved(change: str, alias: str, reason: str | None, force: bool) -> dict[str, Any]:
    details: dict[str, Any] = {change: alias}
    if reason:
        details["reason"] = reason
    if force:
        details["forced"] = True
    return details
