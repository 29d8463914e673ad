"""`RemoteBackend`: a store reached through a forebear server over HTTP.

Every backend method is one call to the server, which applies the token's roles; bytes go
through `ServerObjects`. Logging hashes and cuts files here, as a local store does, asks the
server which objects it lacks, sends only those (each checked by the server as it arrives)
and the manifest, then asks it to commit. This machine holds a token, never database or
object-store credentials.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import ingest, progress
from .. import settings as config
from ..backend import Backend
from ..cache import LocalCache
from ..chunk_storing import Catalog
from ..chunking import Chunking, ChunkList
from ..errors import InvalidInput, StoreError
from ..errors import Problem as ProblemRecord
from ..manifest import PAGE_ENTRIES, ManifestEntry
from ..paths import Ref, check_alias, check_name
from ..records import (
    AuditEvent,
    Delivery,
    LineageData,
    Redaction,
    RetentionPolicy,
    RunData,
    TokenInfo,
    UserInfo,
    VersionData,
    Webhook,
)
from ..references import check_reference
from ..repair_from import restore_from
from ..reports import RepairReport
from ..statcache import StatCache
from .client import ServerClient
from .objects import ServerObjects

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from ..errors import Problem
    from ..reports import GcReport, PruneReport, PurgeReport


ENTRIES_PER_CALL = 50_000  # the most a server hands out at once


class RemoteBackend(Backend):
    """The backend of ``forebear.open("https://...")`` and of ``FOREBEAR_URL``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        cache_dir: Path | None = None,
        cache_max_bytes: int | None = None,
        chunking: Chunking | None = None,
        source: str = "given",
    ) -> None:
        self.client = ServerClient(url, token)
        try:
            about = self.client.info()
        except BaseException:
            self.client.close()
            raise
        self.actor = str(about["user"])
        self.store_id = about.get("store_id")
        self.chunking = chunking or Chunking.from_dict(about["chunking"])
        self.server_objects = ServerObjects(
            self.client,
            int(about["format_version"]),
            staged=about.get("objects") == "s3",
            bundled_below=int(about.get("bundled_below") or 0),
            file_uploads=about.get("file_uploads") is True,
            staged_files=about.get("staged_files") is True,
            batch_reads=about.get("batch_reads") is True,
        )
        self.objects = self.server_objects
        self.db_url = self.client.url
        self.objects_url = self.client.url
        self.read_only = None
        self.source = source
        base = cache_dir or config.user_cache_dir() / "servers" / str(self.store_id)
        self.cache_dir = base
        self.cache = LocalCache(base, cache_max_bytes or config.DEFAULT_CACHE_BYTES)
        self.stat_cache = StatCache.in_folder(base)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.client.call(method, *args, **kwargs)

    def close(self) -> None:
        self.server_objects.close()
        self.client.close()
        self.stat_cache.close()

    def own_files(self) -> frozenset[str]:
        files = {os.path.abspath(f"{self.stat_cache.path}{s}") for s in ("", "-wal", "-shm")}
        return frozenset(files)

    # -- versions ------------------------------------------------------------------------

    def get_version(self, ref: Ref, default_project: str | None) -> VersionData:
        return self.call("get_version", ref, default_project)  # type: ignore[no-any-return]

    def version_by_id(self, version_id: int) -> VersionData:
        return self.call("version_by_id", version_id)  # type: ignore[no-any-return]

    def find_version(self, ref: Ref, default_project: str | None) -> VersionData:
        return self.call("find_version", ref, default_project)  # type: ignore[no-any-return]

    def latest_versions(
        self,
        project: str | None,
        type_: str | None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[VersionData]:
        return self.call(  # type: ignore[no-any-return]
            "latest_versions", project, type_, tags=list(tags), include_deleted=include_deleted
        )

    def artifact_versions(
        self, ref: Ref, default_project: str | None, *, include_deleted: bool = False
    ) -> list[VersionData]:
        return self.call(  # type: ignore[no-any-return]
            "artifact_versions", ref, default_project, include_deleted=include_deleted
        )

    def all_versions(self) -> list[VersionData]:
        return self.call("all_versions")  # type: ignore[no-any-return]

    def alias_history(self, ref: Ref, default_project: str | None) -> list[dict[str, Any]]:
        return self.call("alias_history", ref, default_project)  # type: ignore[no-any-return]

    def aliases(self, version_id: int) -> list[str]:
        return self.call("aliases", version_id)  # type: ignore[no-any-return]

    def set_alias(
        self,
        version: VersionData,
        alias: str,
        run_id: str | None,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> None:
        self.call("set_alias", version, alias, run_id, reason=reason, force=force)

    def remove_alias(
        self, version: VersionData, alias: str, *, reason: str | None = None, force: bool = False
    ) -> bool:
        return self.call(  # type: ignore[no-any-return]
            "remove_alias", version, alias, reason=reason, force=force
        )

    def version_at(self, ref: Ref, default_project: str | None, at: dt.datetime) -> VersionData:
        return self.call("version_at", ref, default_project, at)  # type: ignore[no-any-return]

    # -- the registry and webhooks -------------------------------------------------------

    def link(
        self,
        version_id: int,
        collection: str,
        *,
        aliases: Sequence[str],
        reason: str | None,
        run_id: str | None,
    ) -> VersionData:
        return self.call(  # type: ignore[no-any-return]
            "link", version_id, collection, aliases=list(aliases), reason=reason, run_id=run_id
        )

    def protect_alias(
        self, ref: Ref, default_project: str | None, alias: str, *, protect: bool
    ) -> bool:
        return self.call(  # type: ignore[no-any-return]
            "protect_alias", ref, default_project, alias, protect=protect
        )

    def protected_aliases(self, ref: Ref, default_project: str | None) -> list[str]:
        return self.call("protected_aliases", ref, default_project)  # type: ignore[no-any-return]

    def add_webhook(self, url: str, events: Sequence[str], secret: str) -> Webhook:
        return self.call("add_webhook", url, list(events), secret)  # type: ignore[no-any-return]

    def webhooks(self) -> list[Webhook]:
        return self.call("webhooks")  # type: ignore[no-any-return]

    def remove_webhook(self, webhook_id: int) -> Webhook:
        return self.call("remove_webhook", webhook_id)  # type: ignore[no-any-return]

    def deliveries(self, webhook_id: int | None, limit: int) -> list[Delivery]:
        return self.call("deliveries", webhook_id, limit)  # type: ignore[no-any-return]

    def deliver_webhooks(self, *, due_only: bool) -> list[Delivery]:
        return self.call("deliver_webhooks", due_only=due_only)  # type: ignore[no-any-return]

    # -- entries -------------------------------------------------------------------------

    def entries(self, version_id: int, start: int, limit: int | None) -> list[ManifestEntry]:
        if limit is not None and limit <= ENTRIES_PER_CALL:
            return self.call("entries", version_id, start, limit)  # type: ignore[no-any-return]
        found: list[ManifestEntry] = []
        while limit is None or len(found) < limit:
            step = ENTRIES_PER_CALL if limit is None else min(ENTRIES_PER_CALL, limit - len(found))
            page = self.call("entries", version_id, start + len(found), step)
            found.extend(page)
            if len(page) < step:
                break
        return found

    def entries_at(self, version_id: int, paths: Sequence[str]) -> dict[str, ManifestEntry]:
        return self.call("entries_at", version_id, list(paths))  # type: ignore[no-any-return]

    def entry_count(self, version_id: int, folder: str = "") -> int:
        return self.call("entry_count", version_id, folder)  # type: ignore[no-any-return]

    def entry_pages(self, version_id: int) -> Iterator[list[ManifestEntry]]:
        start = 0
        while page := self.entries(version_id, start, PAGE_ENTRIES):
            yield page
            start += len(page)
            if len(page) < PAGE_ENTRIES:
                return

    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        wanted = sorted(set(digests))
        return self.call("chunk_lists", wanted) if wanted else {}

    # -- runs and lineage ----------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        project: str,
        name: str,
        config: dict[str, Any],
        context: dict[str, Any],
        *,
        started_at: dt.datetime | None = None,
    ) -> RunData:
        return self.call(  # type: ignore[no-any-return]
            "create_run", run_id, project, name, config, context, started_at=started_at
        )

    def get_run(self, run_id: str) -> RunData:
        return self.call("get_run", run_id)  # type: ignore[no-any-return]

    def list_runs(
        self,
        project: str | None,
        *,
        include_deleted: bool = False,
        newest_first: bool = False,
        after: str | None = None,
        start: int = 0,
        limit: int | None = None,
        within: Collection[str] | None = None,
    ) -> list[RunData]:
        return self.call(  # type: ignore[no-any-return]
            "list_runs", project, include_deleted=include_deleted, newest_first=newest_first,
            after=after, start=start, limit=limit,
            within=None if within is None else sorted(within),
        )  # fmt: skip

    def count_runs(
        self,
        project: str | None,
        *,
        include_deleted: bool = False,
        within: Collection[str] | None = None,
    ) -> int:
        return self.call(  # type: ignore[no-any-return]
            "count_runs", project, include_deleted=include_deleted,
            within=None if within is None else sorted(within),
        )  # fmt: skip

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        summary: dict[str, Any] | None = None,
        ended_at: dt.datetime | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.call(
            "update_run", run_id, status=status, summary=summary, ended_at=ended_at, config=config
        )

    def edit_run(self, run_id: str, changes: dict[str, Any]) -> RunData:
        return self.call("edit_run", run_id, changes)  # type: ignore[no-any-return]

    def resume_run(self, run_id: str, process: dict[str, Any]) -> RunData:
        return self.call("resume_run", run_id, process)  # type: ignore[no-any-return]

    def alert_run(self, run_id: str, title: str, text: str, level: str) -> None:
        self.call("alert_run", run_id, title, text, level)

    def log_history(
        self,
        run_id: str,
        steps: list[int],
        values: list[dict[str, float]],
        summary: dict[str, Any],
    ) -> None:
        self.call("log_history", run_id, steps, values, summary)

    def run_history(self, run_id: str) -> list[dict[str, Any]]:
        return self.call("run_history", run_id)  # type: ignore[no-any-return]

    def beat_run(self, run_id: str) -> bool:
        return self.call("beat_run", run_id)  # type: ignore[no-any-return]

    def use(self, version_id: int, run_id: str) -> None:
        self.call("use", version_id, run_id)

    def runs_of_version(self, version_id: int, direction: str) -> list[RunData]:
        return self.call("runs_of_version", version_id, direction)  # type: ignore[no-any-return]

    def versions_of_run(self, run_id: str, direction: str) -> list[VersionData]:
        return self.call("versions_of_run", run_id, direction)  # type: ignore[no-any-return]

    def reachable(
        self, version_id: int, *, upstream: bool, type_: str | None, depth: int | None
    ) -> list[tuple[VersionData, int]]:
        found = self.call("reachable", version_id, upstream=upstream, type_=type_, depth=depth)
        return [(version, hops) for version, hops in found]

    def lineage(
        self, version_id: int, upstream: bool, downstream: bool, depth: int | None
    ) -> LineageData:
        return self.call(  # type: ignore[no-any-return]
            "lineage", version_id, upstream, downstream, depth
        )

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
        """Hash here, send what the server lacks, then have it commit (see the module)."""
        check_name(project, "project")
        aliases = [check_alias(a) for a in aliases]
        tags = [check_alias(t, "tag") for t in tags]
        if not len(artifact) and artifact.base is None:  # a draft's base is checked first
            raise InvalidInput(
                f"artifact {artifact.name!r} is empty; add files with add_file/add_dir first"
            )
        show = progress.wanted(show_progress)
        with ingest.prepare(artifact, self.stat_cache, show, self.own_files()) as prepared:
            # the same content logged again: bytes purged from it are not sent back
            withheld = self.call("purged_in", project, artifact.name, prepared.digest)
            ingest.store_objects(
                prepared,
                self.objects,
                lambda digests: None,  # the server holds what it is sent until it commits
                Catalog(self.chunk_lists, self.held, lambda digests: set()),
                self.chunking,
                artifact.name,
                show,
                withheld=frozenset(withheld),
            )
            self.objects.flush()  # what was sent straight to S3 is checked and published
            body = {
                "project": project,
                "name": artifact.name,
                "type": artifact.type,
                "description": artifact.description,
                "metadata": artifact.metadata,
                "digest": prepared.digest,
                "chunk_lists": list(prepared.chunk_lists(self.chunking)),
                "run_id": run_id,
                "aliases": aliases,
                "tags": tags,
                "ttl": ttl,
                "new_bytes": prepared.new_bytes,
                "base": artifact.base.version_id if artifact.base is not None else None,
            }
            return self.client.post("/api/v1/commit", body)["result"]  # type: ignore[no-any-return]

    def held(self, digests: Iterable[str]) -> set[str]:
        """The digests among these whose bytes this user may build on."""
        wanted = sorted(set(digests))
        return set(self.call("held", wanted)) if wanted else set()

    def upsert_part(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str,
        distributed_id: str,
        show_progress: bool | None,
    ) -> None:
        raise StoreError(
            "distributed versions (upsert_artifact) are not offered through a forebear server "
            "yet; log the version from one process, or reach the store directly"
        )

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
        raise StoreError(
            "distributed versions (finish_artifact) are not offered through a forebear server "
            "yet; log the version from one process, or reach the store directly"
        )

    # -- changing what was committed -----------------------------------------------------

    def tags(self, version_id: int) -> list[str]:
        return self.call("tags", version_id)  # type: ignore[no-any-return]

    def redactions(self, version_id: int) -> list[Redaction]:
        return self.call("redactions", version_id)  # type: ignore[no-any-return]

    def edit_version(self, version: VersionData, changes: dict[str, Any]) -> VersionData:
        return self.call("edit_version", version, changes)  # type: ignore[no-any-return]

    def delete_version(self, version: VersionData, *, delete_aliases: bool) -> VersionData:
        return self.call(  # type: ignore[no-any-return]
            "delete_version", version, delete_aliases=delete_aliases
        )

    def restore_version(self, version: VersionData) -> VersionData:
        return self.call("restore_version", version)  # type: ignore[no-any-return]

    def delete_run(self, run_id: str, *, delete_outputs: bool) -> list[str]:
        return self.call(  # type: ignore[no-any-return]
            "delete_run", run_id, delete_outputs=delete_outputs
        )

    def set_retention(
        self,
        ref: Ref,
        default_project: str | None,
        *,
        keep_last: int | None,
        max_age: dt.timedelta | None,
        keep_aliased: bool,
    ) -> RetentionPolicy | None:
        return self.call(  # type: ignore[no-any-return]
            "set_retention", ref, default_project,
            keep_last=keep_last, max_age=max_age, keep_aliased=keep_aliased,
        )  # fmt: skip

    def retention_policies(self) -> list[RetentionPolicy]:
        return self.call("retention_policies")  # type: ignore[no-any-return]

    def prune(self, *, dry_run: bool) -> PruneReport:
        return self.call("prune", dry_run=dry_run)  # type: ignore[no-any-return]

    def which(self, digest: str) -> list[tuple[VersionData, str]]:
        return [(version, path) for version, path in self.call("which", digest)]

    def purge(self, digest: str, reason: str) -> PurgeReport:
        """Purge on the server, then from this machine's cache (other machines' caches
        are theirs to clear: `forebear cache clear`)."""
        chunks = self.chunk_lists([digest]).get(digest)
        report: PurgeReport = self.call("purge", digest, reason)
        removed = self.cache.forget_objects([digest, *(chunks.digests if chunks else ())])
        held = []
        for ref, path in report.entries:
            qualified, _, number = ref.rpartition(":")
            project, _, name = qualified.partition("/")
            held.append((project, name, number, path))
        report.cached_copies += removed + self.cache.forget_entries(held)
        return report

    def audit(
        self,
        ref: Ref | None,
        default_project: str | None,
        since: dt.datetime | None,
        *,
        whole_artifact: bool = False,
    ) -> list[AuditEvent]:
        return self.call(  # type: ignore[no-any-return]
            "audit", ref, default_project, since, whole_artifact=whole_artifact
        )

    # -- the store as a whole ------------------------------------------------------------

    def verify(self, versions: Sequence[VersionData]) -> list[Problem]:
        """The server checks the objects; references are checked here, where they are
        read (with this machine's credentials)."""
        found: list[Problem] = self.call("verify", list(versions))
        for version in versions:
            for page in self.entry_pages(version.id):
                for entry in page:
                    if entry.uri is not None and (message := check_reference(entry)):
                        found.append(ProblemRecord(version.ref, entry.path, message))
        return found

    def repair(self, versions: Sequence[VersionData], source: str | Path | None) -> RepairReport:
        """The server rebuilds what its catalog describes and reports what is missing;
        matching files under ``source`` (on this machine) are then sent to it."""
        report: RepairReport = self.call("repair", list(versions), None)
        if source is None or not report.missing:
            return report
        by_ref = {name: v for v in versions for name in (v.ref, f"{v.project}/{v.ref}")}
        whole: dict[str, int] = {}
        parts: dict[str, tuple[ChunkList, int]] = {}
        for missing in report.missing:
            version = by_ref.get(missing.ref)
            if version is None:
                continue
            entry = self.entries_at(version.id, [missing.path]).get(missing.path)
            if entry is None or entry.digest is None:
                continue
            chunks = self.chunk_lists([entry.digest]).get(entry.digest)
            if entry.digest == missing.digest:
                whole[missing.digest] = entry.size
            elif chunks is not None and missing.digest in chunks.digests:
                parts[missing.digest] = (chunks, chunks.digests.index(missing.digest))
        restore_from(source, self.objects, whole, parts, self.stat_cache, report)
        self.objects.flush()
        restored = set(report.restored)
        report.missing = [m for m in report.missing if m.digest not in restored]
        return report

    def gc(self, *, dry_run: bool, grace: dt.timedelta) -> GcReport:
        return self.call("gc", dry_run=dry_run, grace=grace)  # type: ignore[no-any-return]

    def upgrade(self) -> tuple[int, int]:
        before, now = self.call("upgrade")
        self.objects.format_version = int(now)
        return int(before), int(now)

    def rebuild_index(self) -> tuple[int, int]:
        packs, objects = self.call("rebuild_index")
        return int(packs), int(objects)

    def projects(self) -> list[str]:
        return self.call("projects")  # type: ignore[no-any-return]

    def counts(self) -> dict[str, int]:
        return self.call("counts")  # type: ignore[no-any-return]

    # -- who may use the server ----------------------------------------------------------

    def add_user(self, name: str, *, admin: bool = False) -> None:
        self.call("add_user", name, admin=admin)

    def users(self) -> list[UserInfo]:
        return self.call("users")  # type: ignore[no-any-return]

    def disable_user(self, name: str) -> bool:
        return self.call("disable_user", name)  # type: ignore[no-any-return]

    def grant(self, user: str, project: str, role: str) -> None:
        self.call("grant", user, project, role)

    def revoke(self, user: str, project: str) -> bool:
        return self.call("revoke", user, project)  # type: ignore[no-any-return]

    def create_token(self, user: str, name: str, expires_at: dt.datetime | None = None) -> str:
        return self.call("create_token", user, name, expires_at)  # type: ignore[no-any-return]

    def tokens(self, user: str) -> list[TokenInfo]:
        return self.call("tokens", user)  # type: ignore[no-any-return]

    def revoke_token(self, user: str, name: str) -> bool:
        return self.call("revoke_token", user, name)  # type: ignore[no-any-return]
