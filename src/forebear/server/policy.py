"""`GuardedBackend`: the local backend as one user of a forebear server may use it.

Every method of the backend interface is here, each with the role it needs in the project
it touches (``reader`` to read, ``writer`` to log and edit, ``maintainer`` to delete,
protect, retain and force; server ``admin`` for what spans projects: users, tokens,
grants, webhooks, gc, prune, purge). What a client sends is never trusted: versions and
runs are looked up again by id, listings keep only the projects the user may read, and
another project's things raise `PermissionDenied` (never "not found"). The server's RPC
endpoint and its web UI both go through this one class.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..backend import Backend
from ..chunking import ChunkList as ChunkListType
from ..errors import InvalidInput, PermissionDenied, StoreError
from ..paths import REGISTRY, Ref
from ..records import (
    AuditEvent,
    Delivery,
    LineageData,
    Principal,
    Redaction,
    RetentionPolicy,
    RunData,
    VersionData,
    Webhook,
)
from .admin import AdminCalls
from .guarded_runs import GuardedRuns

if TYPE_CHECKING:
    from pathlib import Path

    from ..artifacts import Artifact
    from ..chunking import ChunkList
    from ..errors import Problem
    from ..local import LocalBackend
    from ..manifest import ManifestEntry
    from ..reports import GcReport, PruneReport, PurgeReport, RepairReport

VERBS = {"reader": "read", "writer": "write", "maintainer": "maintain"}
MAX_PAGE = 50_000  # entries in one answer
REMEMBERED_ANSWERS = 50_000  # a commit's answers of which digests a user sent, at most


class GuardedBackend(AdminCalls, GuardedRuns, Backend):
    """``inner`` (the server's own backend) for ``principal``; see the module's docstring."""

    def __init__(self, inner: LocalBackend, principal: Principal) -> None:
        self.inner = inner
        self.principal = principal
        self.actor = principal.name
        self.objects = inner.objects
        self.cache = inner.cache
        self.stat_cache = inner.stat_cache
        self.chunking = inner.chunking
        self.db_url = "(the server's catalog)"
        self.objects_url = inner.objects_url
        self.store_id = inner.store_id
        self.read_only = inner.read_only
        self.source = inner.source

    # -- the checks ----------------------------------------------------------------------

    def need(self, project: str, role: str) -> None:
        """Refuse unless the user holds ``role`` (or more) in ``project``."""
        if not self.principal.may(project, role):
            raise PermissionDenied(
                f"user {self.principal.name!r} may not {VERBS[role]} project {project!r}: "
                f"that needs the {role} role (an admin can give it: 'forebear grant "
                f"{self.principal.name} {project} {role}')"
            )

    def need_admin(self, what: str) -> None:
        if not self.principal.admin:
            raise PermissionDenied(
                f"{what} spans every project, so only a server admin may do it "
                f"(user {self.principal.name!r} is not one)"
            )

    def may_read(self, project: str) -> bool:
        return self.principal.may(project, "reader")

    def unnamed(self, what: str, project: str) -> None:
        """Refuse ``what`` (found by id) outside the user's projects, naming none (ids
        can be counted through)."""
        if not self.may_read(project):
            raise PermissionDenied(
                f"{what} is in a project that user {self.principal.name!r} may not read"
            )

    def version(self, version_id: object, role: str = "reader") -> VersionData:
        """A version by id, after checking the role in its project."""
        if not isinstance(version_id, int) or isinstance(version_id, bool):
            raise InvalidInput(f"a version id is a number, not {version_id!r}")
        found = self.inner.version_by_id(version_id)
        self.unnamed(f"version {version_id}", found.project)
        self.need(found.project, role)
        return found

    def run(self, run_id: object, role: str = "reader") -> RunData:
        if not isinstance(run_id, str):
            raise InvalidInput(f"a run id is a string, not {run_id!r}")
        found = self.inner.get_run(run_id)
        self.unnamed(f"run {run_id}", found.project)
        self.need(found.project, role)
        return found

    def ref_checked(self, ref: Ref, default_project: str | None, role: str) -> None:
        """Before resolving: a ref naming a project needs the role there (so a name in
        another project is refused whether it exists or not)."""
        if not isinstance(ref, Ref):
            raise InvalidInput(f"expected a ref, not {ref!r}")
        if ref.project is not None:
            self.need(ref.project, role)

    def artifact_checked(self, ref: Ref, default_project: str | None, role: str) -> None:
        """Refuse unless the user holds ``role`` in the project of the artifact a ref names
        (found by its latest version), before and after resolving it."""
        self.ref_checked(ref, default_project, role)
        latest = self.inner.find_version(Ref(ref.project, ref.name), default_project)
        self.need(latest.project, role)

    def resolved(self, found: VersionData, role: str = "reader") -> VersionData:
        self.need(found.project, role)
        return found

    def readable(self, versions: Iterable[VersionData]) -> list[VersionData]:
        return [v for v in versions if self.may_read(v.project)]

    # -- versions ------------------------------------------------------------------------

    def get_version(self, ref: Ref, default_project: str | None) -> VersionData:
        self.ref_checked(ref, default_project, "reader")
        return self.resolved(self.inner.get_version(ref, default_project))

    def version_by_id(self, version_id: int) -> VersionData:
        return self.version(version_id)

    def find_version(self, ref: Ref, default_project: str | None) -> VersionData:
        self.ref_checked(ref, default_project, "reader")
        return self.resolved(self.inner.find_version(ref, default_project))

    def latest_versions(
        self,
        project: str | None,
        type_: str | None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[VersionData]:
        if project is not None:
            self.need(project, "reader")
        found = self.inner.latest_versions(
            project, type_, tags=tags, include_deleted=include_deleted
        )
        return self.readable(found)

    def artifact_versions(
        self, ref: Ref, default_project: str | None, *, include_deleted: bool = False
    ) -> list[VersionData]:
        self.ref_checked(ref, default_project, "reader")
        found = self.inner.artifact_versions(ref, default_project, include_deleted=include_deleted)
        for version in found[:1]:
            self.need(version.project, "reader")
        return found

    def all_versions(self) -> list[VersionData]:
        return self.readable(self.inner.all_versions())

    def alias_history(self, ref: Ref, default_project: str | None) -> list[dict[str, Any]]:
        self.artifact_checked(ref, default_project, "reader")
        return self.inner.alias_history(ref, default_project)

    def aliases(self, version_id: int) -> list[str]:
        return self.inner.aliases(self.version(version_id).id)

    def set_alias(
        self,
        version: VersionData,
        alias: str,
        run_id: str | None,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> None:
        found = self.version(version.id, "maintainer" if force else "writer")
        if run_id is not None:
            self.run(run_id, "writer")
        self.inner.set_alias(found, alias, run_id, reason=reason, force=force)

    def remove_alias(
        self, version: VersionData, alias: str, *, reason: str | None = None, force: bool = False
    ) -> bool:
        found = self.version(version.id, "maintainer" if force else "writer")
        return self.inner.remove_alias(found, alias, reason=reason, force=force)

    def version_at(self, ref: Ref, default_project: str | None, at: dt.datetime) -> VersionData:
        self.ref_checked(ref, default_project, "reader")
        return self.resolved(self.inner.version_at(ref, default_project, at))

    # -- the registry --------------------------------------------------------------------

    def link(
        self,
        version_id: int,
        collection: str,
        *,
        aliases: Sequence[str],
        reason: str | None,
        run_id: str | None,
    ) -> VersionData:
        self.version(version_id)
        self.need(REGISTRY, "writer")
        if run_id is not None:
            self.run(run_id, "writer")
        return self.inner.link(
            version_id, collection, aliases=aliases, reason=reason, run_id=run_id
        )

    def protect_alias(
        self, ref: Ref, default_project: str | None, alias: str, *, protect: bool
    ) -> bool:
        self.artifact_checked(ref, default_project, "maintainer")
        return self.inner.protect_alias(ref, default_project, alias, protect=protect)

    def protected_aliases(self, ref: Ref, default_project: str | None) -> list[str]:
        self.artifact_checked(ref, default_project, "reader")
        return self.inner.protected_aliases(ref, default_project)

    # -- webhooks: they see every project's events, so they are an admin's --------------

    def add_webhook(self, url: str, events: Sequence[str], secret: str) -> Webhook:
        self.need_admin("adding a webhook")
        return self.inner.add_webhook(url, events, secret)

    def webhooks(self) -> list[Webhook]:
        self.need_admin("listing webhooks")
        return self.inner.webhooks()

    def remove_webhook(self, webhook_id: int) -> Webhook:
        self.need_admin("removing a webhook")
        return self.inner.remove_webhook(webhook_id)

    def deliveries(self, webhook_id: int | None, limit: int) -> list[Delivery]:
        self.need_admin("reading webhook deliveries")
        return self.inner.deliveries(webhook_id, limit)

    def deliver_webhooks(self, *, due_only: bool) -> list[Delivery]:
        self.need_admin("sending webhooks")
        return self.inner.deliver_webhooks(due_only=due_only)

    # -- entries -------------------------------------------------------------------------

    def entries(self, version_id: int, start: int, limit: int | None) -> list[ManifestEntry]:
        """One page of entries (a client pages through a large version: a server never
        builds one answer of millions of entries)."""
        version = self.version(version_id)
        if not isinstance(limit, int) or not 0 <= limit <= MAX_PAGE:
            raise InvalidInput(f"ask for at most {MAX_PAGE} entries at a time (limit)")
        return self.inner.entries(version.id, start, limit)

    def entries_at(self, version_id: int, paths: Sequence[str]) -> dict[str, ManifestEntry]:
        return self.inner.entries_at(self.version(version_id).id, paths)

    def entry_count(self, version_id: int, folder: str = "") -> int:
        return self.inner.entry_count(self.version(version_id).id, folder)

    def entry_pages(self, version_id: int) -> Iterator[list[ManifestEntry]]:
        return self.inner.entry_pages(self.version(version_id).id)

    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        wanted = self.held(digests)
        return self.inner.chunk_lists(wanted) if wanted else {}

    def held(self, digests: Iterable[str]) -> set[str]:
        """The digests among these whose bytes this user may use: in a version they may
        read, or sent by them and checked by the server."""
        return self._held(digests, self._uploaded)

    def _held(self, digests: Iterable[str], uploaded: Callable[[set[str]], set[str]]) -> set[str]:
        wanted = {d for d in digests if isinstance(d, str)}
        projects = None if self.principal.admin else self.principal.projects()
        found = self.inner.readable_among(wanted, projects)
        rest = wanted - found
        if rest:
            found |= uploaded(rest)
        return found

    def _uploaded(self, digests: set[str]) -> set[str]:
        """The digests among these that this user sent and the server checked."""
        return self.inner.uploaded_among(self.principal.id, digests)

    def _remembered_uploads(self) -> Callable[[set[str]], set[str]]:
        """`_uploaded`, asking the catalog once per digest (a commit asks twice, a page
        of files at a time), for the last `REMEMBERED_ANSWERS` or so: a commit of a
        million files must not keep an answer for each."""
        answered: dict[str, bool] = {}

        def uploaded(digests: set[str]) -> set[str]:
            rest = set(digests) - answered.keys()
            if len(answered) + len(rest) > REMEMBERED_ANSWERS:
                answered.clear()
                rest = set(digests)
            if rest:
                found = self._uploaded(rest)
                answered.update((d, d in found) for d in rest)
            return {d for d in digests if answered[d]}

        return uploaded

    # -- lineage -------------------------------------------------------------------------

    def reachable(
        self, version_id: int, *, upstream: bool, type_: str | None, depth: int | None
    ) -> list[tuple[VersionData, int]]:
        found = self.inner.reachable(
            self.version(version_id).id, upstream=upstream, type_=type_, depth=depth
        )
        return [(v, hops) for v, hops in found if self.may_read(v.project)]

    def lineage(
        self, version_id: int, upstream: bool, downstream: bool, depth: int | None
    ) -> LineageData:
        """The graph around a version, without the runs and versions of projects the user
        may not read (and the edges that touched them)."""
        found = self.inner.lineage(self.version(version_id).id, upstream, downstream, depth)
        if self.principal.admin:
            return found
        versions = {k: v for k, v in found.versions.items() if self.may_read(v.project)}
        runs = {k: r for k, r in found.runs.items() if self.may_read(r.project)}
        return LineageData(
            found.root,
            versions,
            {k: a for k, a in found.aliases.items() if k in versions},
            runs,
            {e for e in found.edges if e[0] in runs and e[2] in versions},
            frozenset(link for link in found.links if set(link) <= set(versions)),
        )

    # -- writing: a server stores only what clients upload -------------------------------

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
        raise StoreError("a forebear server logs only what a client uploads (POST /api/v1/commit)")

    def upsert_part(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str,
        distributed_id: str,
        show_progress: bool | None,
    ) -> None:
        raise StoreError("a forebear server logs only what a client uploads")

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
        raise StoreError("a forebear server logs only what a client uploads")

    # -- changing what was committed -----------------------------------------------------

    def tags(self, version_id: int) -> list[str]:
        return self.inner.tags(self.version(version_id).id)

    def redactions(self, version_id: int) -> list[Redaction]:
        return self.inner.redactions(self.version(version_id).id)

    def edit_version(self, version: VersionData, changes: dict[str, Any]) -> VersionData:
        """A writer edits; an expiry is a deletion put off, so changing it needs what
        deleting does. The run named as the editor must be of the version's project."""
        if not isinstance(changes, dict):
            raise InvalidInput("edits are a mapping of field to new value")
        found = self.version(version.id, "maintainer" if "expires_at" in changes else "writer")
        run_id = changes.get("run_id")
        if run_id is not None and self.run(run_id, "writer").project != found.project:
            raise InvalidInput(f"run {run_id} belongs to another project than {found.ref}")
        return self.inner.edit_version(found, changes)

    def delete_version(self, version: VersionData, *, delete_aliases: bool) -> VersionData:
        found = self.version(version.id, "maintainer")
        return self.inner.delete_version(found, delete_aliases=delete_aliases)

    def restore_version(self, version: VersionData) -> VersionData:
        return self.inner.restore_version(self.version(version.id, "maintainer"))

    def set_retention(
        self,
        ref: Ref,
        default_project: str | None,
        *,
        keep_last: int | None,
        max_age: dt.timedelta | None,
        keep_aliased: bool,
    ) -> RetentionPolicy | None:
        self.artifact_checked(ref, default_project, "maintainer")
        return self.inner.set_retention(
            ref, default_project, keep_last=keep_last, max_age=max_age, keep_aliased=keep_aliased
        )

    def retention_policies(self) -> list[RetentionPolicy]:
        return [p for p in self.inner.retention_policies() if self.may_read(p.project)]

    def prune(self, *, dry_run: bool) -> PruneReport:
        self.need_admin("prune")
        return self.inner.prune(dry_run=dry_run)

    def which(self, digest: str) -> list[tuple[VersionData, str]]:
        return [(v, p) for v, p in self.inner.which(digest) if self.may_read(v.project)]

    def purge(self, digest: str, reason: str) -> PurgeReport:
        self.need_admin("purging bytes")
        return self.inner.purge(digest, reason)

    def audit(
        self,
        ref: Ref | None,
        default_project: str | None,
        since: dt.datetime | None,
        *,
        whole_artifact: bool = False,
    ) -> list[AuditEvent]:
        if ref is not None:
            self.artifact_checked(ref, default_project, "reader")
        found = self.inner.audit(ref, default_project, since, whole_artifact=whole_artifact)
        if self.principal.admin or ref is not None:
            return found
        return [e for e in found if "/" in e.target and self.may_read(e.target.split("/")[0])]

    # -- the store as a whole ------------------------------------------------------------

    def verify(self, versions: Sequence[VersionData]) -> list[Problem]:
        once = dict.fromkeys(v.id for v in versions)  # the same version named again is checked once
        return self.inner.verify([self.version(i) for i in once])

    def repair(self, versions: Sequence[VersionData], source: str | Path | None) -> RepairReport:
        if source is not None:
            raise InvalidInput(
                "repair --from reads files where the store is; through a server, run it on "
                "the server's machine, or log the files again"
            )
        return self.inner.repair([self.version(v.id, "maintainer") for v in versions], None)

    def gc(self, *, dry_run: bool, grace: dt.timedelta) -> GcReport:
        self.need_admin("gc")
        return self.inner.gc(dry_run=dry_run, grace=grace)

    def projects(self) -> list[str]:
        return [name for name in self.inner.projects() if self.may_read(name)]

    def counts(self) -> dict[str, int]:
        if self.principal.admin:
            return self.inner.counts()
        every = self.inner.latest_versions(None, None, include_deleted=True)
        mine = self.readable(every)
        versions = self.readable(self.inner.all_versions())
        return {
            "projects": len({v.project for v in mine}),
            "artifacts": len(mine),
            "versions": len(versions),
            "runs": self.count_runs(None),
            "deleted_versions": 0,
        }

    def own_files(self) -> frozenset[str]:
        return self.inner.own_files()

    def close(self) -> None:
        """The server's backend outlives every request: nothing to close here."""

    # -- logging through the server ------------------------------------------------------

    def need_some_writer(self) -> None:
        """Sending bytes needs the writer role somewhere (they become readable by others
        only through a version, which needs it in that version's project)."""
        if not self.principal.admin and not self.principal.projects("writer"):
            raise PermissionDenied(
                f"user {self.principal.name!r} may write to no project, so may not upload"
            )

    def purged_in(self, project: str, name: str, digest: str) -> list[str]:
        """Bytes purged from the version of ``project/name`` with this content."""
        self.need(project, "writer")
        return self.inner.purged_in(project, name, digest)

    def commit_upload(self, body: dict[str, Any]) -> VersionData:
        """Commit a version from uploaded objects (`forebear.local.uploads`)."""
        project = body.get("project")
        if not isinstance(project, str):
            raise InvalidInput("malformed commit: no project")
        self.need(project, "writer")
        run_id = body.get("run_id")
        if run_id is not None and self.run(run_id, "writer").project != project:
            raise InvalidInput(f"run {run_id} belongs to another project than {project!r}")
        chunk_lists = body.get("chunk_lists") or []
        if not isinstance(chunk_lists, list) or not all(
            isinstance(c, ChunkListType) for c in chunk_lists
        ):
            raise InvalidInput("malformed commit: chunk_lists is a list of chunk lists")
        base = body.get("base")
        if base is not None:  # a draft: its base must be readable (and, later, live)
            found = self.version(base)
            base = (found.id, found.ref)
        uploaded = self._remembered_uploads()
        try:
            return self.inner.commit_uploaded(
                project=project,
                name=body["name"],
                type_=body["type"],
                description=body.get("description"),
                metadata=body.get("metadata") or {},
                digest=str(body["digest"]),
                chunk_lists=chunk_lists,
                run_id=run_id,
                aliases=list(body.get("aliases") or []),
                tags=list(body.get("tags") or []),
                ttl=body.get("ttl"),
                new_bytes=int(body.get("new_bytes") or 0),
                held=lambda digests: self._held(digests, uploaded),
                uploaded=uploaded,
                base=base,
                release=lambda digests: self.inner.release_uploads(self.principal.id, digests),
            )
        except KeyError as missing:
            raise InvalidInput(f"malformed commit: no {missing}") from None
