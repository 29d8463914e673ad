"""The seam between forebear's public API and where a store lives.

`Store`, `ArtifactVersion`, `Run`, `Lineage`, the CLI and the web UI reach the catalog and
the objects only through a `Backend`. `LocalBackend` (in `forebear.local`) is a SQL catalog
and an fsspec object location in this process; a remote backend (an HTTP client of a
forebear server) provides the same methods, and the public-API tests run through it.

What crosses the seam is plain data: `records` (versions, runs, lineage), `ManifestEntry`,
`ChunkList`, `Problem`, reports. Bytes move through ``objects`` (an object location: a folder
or bucket here, presigned transfers for a server) and are checked by the reader every time.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from .artifacts import Artifact
    from .cache import LocalCache
    from .chunking import Chunking, ChunkList
    from .errors import Problem
    from .manifest import ManifestEntry
    from .objects import ObjectLocation
    from .paths import Ref
    from .records import (
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
    from .reports import GcReport, PruneReport, PurgeReport, RepairReport
    from .statcache import StatCache


class Backend(ABC):
    """A store's catalog and objects, as the public API uses them.

    Attributes every backend has: ``actor`` (who the audit trail names for changes made
    through it), ``objects`` (where bytes are read and written),
    ``cache`` (what is kept locally: cached objects, downloads, the stat cache),
    ``stat_cache``, ``chunking`` (how large files are cut when logged), ``db_url`` and
    ``objects_url`` (for people; passwords hidden where shown), ``store_id``,
    ``read_only`` (why the store cannot be written, or None) and ``source`` (how the store
    was chosen).
    """

    actor: str
    objects: ObjectLocation
    cache: LocalCache
    stat_cache: StatCache
    chunking: Chunking
    db_url: str
    objects_url: str
    store_id: str | None
    read_only: str | None
    source: str

    # -- versions ------------------------------------------------------------------------

    @abstractmethod
    def get_version(self, ref: Ref, default_project: str | None) -> VersionData:
        """The version a ref names; `ArtifactNotFound` / `VersionNotFound` otherwise."""

    @abstractmethod
    def version_by_id(self, version_id: int) -> VersionData:
        """A version by its catalog id, deleted or not."""

    @abstractmethod
    def find_version(self, ref: Ref, default_project: str | None) -> VersionData:
        """The version a ref names, deleted or not (for restoring and auditing)."""

    @abstractmethod
    def latest_versions(
        self,
        project: str | None,
        type_: str | None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[VersionData]:
        """The newest live version of every artifact (of a project, of a type, carrying
        every one of ``tags``); with ``include_deleted``, artifacts whose every version is
        deleted appear by their newest one."""

    @abstractmethod
    def artifact_versions(
        self, ref: Ref, default_project: str | None, *, include_deleted: bool = False
    ) -> list[VersionData]:
        """Every live (or every) version of the artifact a ref names, oldest first."""

    @abstractmethod
    def all_versions(self) -> list[VersionData]:
        """Every committed version."""

    @abstractmethod
    def alias_history(self, ref: Ref, default_project: str | None) -> list[dict[str, Any]]:
        """Every alias move of the artifact a ref names, oldest first."""

    @abstractmethod
    def aliases(self, version_id: int) -> list[str]:
        """A version's aliases, ``latest`` first."""

    @abstractmethod
    def set_alias(
        self,
        version: VersionData,
        alias: str,
        run_id: str | None,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> None:
        """Point ``alias`` at ``version`` (a move is recorded in the history with its actor
        and reason); `PermissionDenied` for a protected alias without ``force``."""

    @abstractmethod
    def remove_alias(
        self, version: VersionData, alias: str, *, reason: str | None = None, force: bool = False
    ) -> bool:
        """Remove ``alias`` from ``version``; False if it does not point there."""

    @abstractmethod
    def version_at(self, ref: Ref, default_project: str | None, at: dt.datetime) -> VersionData:
        """The version a ref named at moment ``at`` (aliases from their history)."""

    # -- the registry --------------------------------------------------------------------

    @abstractmethod
    def link(
        self,
        version_id: int,
        collection: str,
        *,
        aliases: Sequence[str],
        reason: str | None,
        run_id: str | None,
    ) -> VersionData:
        """The registry version of ``collection`` linking a version (new, or the one
        already there), with ``aliases`` moved to it."""

    @abstractmethod
    def protect_alias(
        self, ref: Ref, default_project: str | None, alias: str, *, protect: bool
    ) -> bool:
        """Protect (or unprotect) an alias of an artifact; False if nothing changed."""

    @abstractmethod
    def protected_aliases(self, ref: Ref, default_project: str | None) -> list[str]:
        """The artifact's protected aliases."""

    # -- webhooks ------------------------------------------------------------------------

    @abstractmethod
    def add_webhook(self, url: str, events: Sequence[str], secret: str) -> Webhook:
        """Register a receiver of signed POSTs for these events."""

    @abstractmethod
    def webhooks(self) -> list[Webhook]:
        """The receivers (never their secrets)."""

    @abstractmethod
    def remove_webhook(self, webhook_id: int) -> Webhook:
        """Stop sending to a receiver (its delivery log stays)."""

    @abstractmethod
    def deliveries(self, webhook_id: int | None, limit: int) -> list[Delivery]:
        """The delivery log, newest first."""

    @abstractmethod
    def deliver_webhooks(self, *, due_only: bool) -> list[Delivery]:
        """Send queued deliveries now (every one, or only those due); the attempts made."""

    @abstractmethod
    def entries(self, version_id: int, start: int, limit: int | None) -> list[ManifestEntry]:
        """A version's entries in path order, or one page of them."""

    @abstractmethod
    def entries_at(self, version_id: int, paths: Sequence[str]) -> dict[str, ManifestEntry]:
        """The entries of a version at these paths (those it has), by path."""

    @abstractmethod
    def entry_count(self, version_id: int, folder: str = "") -> int:
        """How many entries a version has (under ``folder``, which ends in ``/``)."""

    @abstractmethod
    def entry_pages(self, version_id: int) -> Iterator[list[ManifestEntry]]:
        """A version's entries a page at a time, in path order (flat memory)."""

    @abstractmethod
    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        """The chunk lists of the files among ``digests`` that are stored in chunks."""

    # -- runs and lineage ----------------------------------------------------------------

    @abstractmethod
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
        """A new running run; ``started_at`` (default now) when it is imported from
        another tool's history."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunData:
        """A run by id; `RunNotFound` otherwise."""

    @abstractmethod
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
        """Runs (of a project, or of those ``within``), oldest first or newest first;
        deleted ones only when asked. A page: the ``limit`` runs after the run ``after``
        (its id; the key of the last page) or after the first ``start``."""

    @abstractmethod
    def count_runs(
        self,
        project: str | None,
        *,
        include_deleted: bool = False,
        within: Collection[str] | None = None,
    ) -> int:
        """How many runs `list_runs` lists with the same choices."""

    @abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        summary: dict[str, Any] | None = None,
        ended_at: dt.datetime | None = None,
        config: dict[str, Any] | None = None,
    ) -> None: ...

    @abstractmethod
    def log_history(
        self,
        run_id: str,
        steps: list[int],
        values: list[dict[str, float]],
        summary: dict[str, Any],
    ) -> None:
        """Record the values of several steps in a run's history (``values[i]`` at
        ``steps[i]``, in the order logged: a key logged at a step again replaces its value),
        and its new summary, in one transaction."""

    @abstractmethod
    def run_history(self, run_id: str) -> list[dict[str, Any]]:
        """A run's history: one row per step (``step`` and the values), oldest first."""

    @abstractmethod
    def beat_run(self, run_id: str) -> bool:
        """Record that a running run is alive; False once it is not running."""

    @abstractmethod
    def use(self, version_id: int, run_id: str) -> None:
        """Record that a run used a version (not its own output: lineage stays acyclic)."""

    @abstractmethod
    def runs_of_version(self, version_id: int, direction: str) -> list[RunData]:
        """Runs that logged (``out``) or used (``in``) a version, oldest first."""

    @abstractmethod
    def versions_of_run(self, run_id: str, direction: str) -> list[VersionData]:
        """Versions a run logged (``out``) or used (``in``)."""

    @abstractmethod
    def reachable(
        self, version_id: int, *, upstream: bool, type_: str | None, depth: int | None
    ) -> list[tuple[VersionData, int]]:
        """Versions upstream (or downstream) of one, with their distance in artifact
        hops, nearest first."""

    @abstractmethod
    def lineage(
        self, version_id: int, upstream: bool, downstream: bool, depth: int | None
    ) -> LineageData:
        """The runs, versions and edges around one version."""

    # -- writing -------------------------------------------------------------------------

    @abstractmethod
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
        """Store an artifact's files and commit the version (or find the one with the same
        content), with the run's output edge, the aliases, tags and TTL, all or nothing."""

    @abstractmethod
    def upsert_part(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str,
        distributed_id: str,
        show_progress: bool | None,
    ) -> None:
        """Store an artifact's files as one process's part of a distributed version."""

    @abstractmethod
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
        """Commit a distributed version from every part (and the artifact's own files)."""

    # -- changing what was committed -----------------------------------------------------

    @abstractmethod
    def tags(self, version_id: int) -> list[str]:
        """A version's tags, sorted."""

    @abstractmethod
    def redactions(self, version_id: int) -> list[Redaction]:
        """A version's entries whose bytes were purged."""

    @abstractmethod
    def edit_version(self, version: VersionData, changes: dict[str, Any]) -> VersionData:
        """Apply edits in one transaction: any of ``description``, ``metadata``, ``tags``
        and ``aliases`` (the whole new lists) and ``expires_at``."""

    @abstractmethod
    def delete_version(self, version: VersionData, *, delete_aliases: bool) -> VersionData:
        """Soft-delete a version (refused while user aliases point at it, unless
        ``delete_aliases``)."""

    @abstractmethod
    def restore_version(self, version: VersionData) -> VersionData:
        """Undo a deletion, until gc purged the version."""

    @abstractmethod
    def edit_run(self, run_id: str, changes: dict[str, Any]) -> RunData:
        """Change a run after the fact, in one transaction with its audit event: any of
        ``name``, ``tags``, ``notes``, ``config`` and ``summary`` (checked by
        `forebear.runchecks.checked_run_edit`); refused for a deleted run."""

    @abstractmethod
    def resume_run(self, run_id: str, process: dict[str, Any]) -> RunData:
        """W&B's resuming: a run that finished, failed or crashed made running again by a
        new ``process`` (`forebear.runchecks.checked_process`), in one transaction with its
        audit event; refused (`InvalidInput`) for a run still alive or deleted."""

    @abstractmethod
    def alert_run(self, run_id: str, title: str, text: str, level: str) -> None:
        """W&B's alert from a running run (checked by `forebear.runchecks.checked_alert`):
        a ``run.alert`` event for the webhooks that asked for it."""

    @abstractmethod
    def delete_run(self, run_id: str, *, delete_outputs: bool) -> list[str]:
        """Mark a run deleted (and soft-delete its outputs when asked: their refs)."""

    @abstractmethod
    def set_retention(
        self,
        ref: Ref,
        default_project: str | None,
        *,
        keep_last: int | None,
        max_age: dt.timedelta | None,
        keep_aliased: bool,
    ) -> RetentionPolicy | None:
        """Set (or, with neither limit, clear) an artifact's retention policy."""

    @abstractmethod
    def retention_policies(self) -> list[RetentionPolicy]:
        """Every artifact's retention policy."""

    @abstractmethod
    def prune(self, *, dry_run: bool) -> PruneReport:
        """Delete the versions TTL and retention policies expire."""

    @abstractmethod
    def which(self, digest: str) -> list[tuple[VersionData, str]]:
        """Every ``(version, entry path)`` holding these bytes (live or deleted versions
        gc has not purged)."""

    @abstractmethod
    def purge(self, digest: str, reason: str) -> PurgeReport:
        """Remove these bytes from the object location and local caches now."""

    @abstractmethod
    def audit(
        self,
        ref: Ref | None,
        default_project: str | None,
        since: dt.datetime | None,
        *,
        whole_artifact: bool = False,
    ) -> list[AuditEvent]:
        """Audit events since ``since``, oldest first: all of them, a version's, or (with
        ``whole_artifact``) those of the artifact the ref names."""

    # -- who may use a server ------------------------------------------------------------

    @abstractmethod
    def add_user(self, name: str, *, admin: bool = False) -> None:
        """A new user (a server admin with ``admin``), with no grants and no tokens."""

    @abstractmethod
    def users(self) -> list[UserInfo]:
        """Every user with their grants, by name."""

    @abstractmethod
    def disable_user(self, name: str) -> bool:
        """Stop every token of a user at once; False if disabled already."""

    @abstractmethod
    def grant(self, user: str, project: str, role: str) -> None:
        """Give a user a role (``reader``, ``writer``, ``maintainer``) in a project."""

    @abstractmethod
    def revoke(self, user: str, project: str) -> bool:
        """Take a user's role in a project away; False if they had none."""

    @abstractmethod
    def create_token(self, user: str, name: str, expires_at: dt.datetime | None = None) -> str:
        """A new API token for a user: returned this once, kept only as its hash."""

    @abstractmethod
    def tokens(self, user: str) -> list[TokenInfo]:
        """A user's tokens, oldest first (names and dates, never the tokens)."""

    @abstractmethod
    def revoke_token(self, user: str, name: str) -> bool:
        """Stop one of a user's tokens now; False if no live token has that name."""

    # -- the store as a whole ------------------------------------------------------------

    @abstractmethod
    def verify(self, versions: Sequence[VersionData]) -> list[Problem]:
        """Everything wrong with these versions' objects, references and entries."""

    @abstractmethod
    def repair(self, versions: Sequence[VersionData], source: str | Path | None) -> RepairReport:
        """Store again the damaged objects of these versions from matching local files."""

    @abstractmethod
    def gc(self, *, dry_run: bool, grace: dt.timedelta) -> GcReport:
        """Purge versions deleted longer than ``grace`` ago, then delete objects no
        other version needs, older than ``grace``."""

    @abstractmethod
    def upgrade(self) -> tuple[int, int]:
        """Move the store to the newest storage format: (format before, format now)."""

    @abstractmethod
    def rebuild_index(self) -> tuple[int, int]:
        """Rebuild the catalog's pack index from the index copies stored beside the packs:
        (packs, objects) indexed."""

    @abstractmethod
    def projects(self) -> list[str]:
        """Every project's name, by name."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many projects, artifacts, versions and runs the store holds."""

    @abstractmethod
    def own_files(self) -> frozenset[str]:
        """Local files of the store's own (never part of a version)."""

    def require_writable(self) -> None:
        """Refuse to change a store that cannot be written, before any work is done."""
        if self.read_only is not None:
            from .errors import StoreError

            raise StoreError(
                f"the store's catalog {self.db_url} is read-only here ({self.read_only}); "
                "this needs a store you can write to"
            )

    @abstractmethod
    def close(self) -> None: ...
