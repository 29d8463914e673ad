"""What the catalog records, as objects to read and act on: `ArtifactVersion` (one
immutable version) and `Run` (one execution of a script). Both hold a `Store` and plain
records, and reach the catalog and the objects only through the store's backend."""

from __future__ import annotations

import datetime as dt
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from . import download, folders
from . import settings as config
from .artifacts import Artifact, artifact_from_path
from .editing import Editable, check_tags, check_ttl
from .errors import (
    ForebearError,
    ForebearWarning,
    IntegrityError,
    InvalidInput,
    NotFound,
    RunStateError,
)
from .habits import RunHabits, VersionHabits, check_prefix
from .heartbeat import Heartbeat
from .jsonvalues import json_dict
from .manifest import Diff, Manifest, ManifestEntry, diff_entries
from .paths import check_alias, normalise_entry_path
from .processes import collector_paused
from .records import Redaction, RunData, VersionData
from .registry import Linkable, RunRegistry
from .run_attributes import RunAttributes
from .run_updates import RunUpdates
from .runfiles import RunFiles
from .version_attributes import VersionAttributes
from .version_files import file_names

if TYPE_CHECKING:
    from .lineage import Lineage
    from .store import Store

LATEST = "latest"  # the alias forebear keeps on each artifact's newest version
STATUSES = ("running", "finished", "failed", "crashed")


class ArtifactVersion(Editable, Linkable, VersionHabits, VersionAttributes):
    """One version of an artifact, e.g. ``iris-rf:v0``: its files never change; its
    description, metadata, tags, aliases and TTL can be edited, then `save`d."""

    def __init__(self, store: Store, data: VersionData) -> None:
        self._store = store
        self._data = data
        self._manifest: Manifest | None = None
        self._reset_edits()

    # -- identity ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._data.name

    @property
    def version(self) -> str:
        return f"v{self._data.number}"

    @property
    def ref(self) -> str:
        return f"{self._data.name}:v{self._data.number}"

    @property
    def qualified_ref(self) -> str:
        return f"{self._data.project}/{self.ref}"

    @property
    def project(self) -> str:
        return self._data.project

    @property
    def type(self) -> str:
        return self._data.type

    @property
    def digest(self) -> str:
        return self._data.digest

    @property
    def hash_algorithm(self) -> str:
        return self._data.hash_algorithm

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def file_count(self) -> int:
        return self._data.file_count

    @property
    def new_bytes(self) -> int | None:
        """Bytes of this version's files that were new to the store when it was logged:
        whole files and chunks no earlier version had stored. None for versions logged
        before forebear recorded it."""
        return self._data.new_bytes

    @property
    def shared_bytes(self) -> int | None:
        """Bytes of this version's files that were stored already when it was logged
        (shared with earlier versions, or repeated within this one): what deduplication
        saved. None for versions logged before forebear recorded it."""
        return self._data.shared_bytes

    @property
    def chunking(self) -> dict[str, Any] | None:
        """How files at least ``threshold`` bytes long were cut into chunks when this
        version was logged (None for versions logged before chunking existed)."""
        chunking = self._data.chunking
        return chunking.to_dict() if chunking is not None else None

    @property
    def created_at(self) -> dt.datetime:
        return self._data.created_at

    @property
    def created_by(self) -> str | None:
        """The id of the run that first logged this content (None if none did)."""
        return self._data.created_by

    @property
    def id(self) -> int:
        return self._data.id

    # -- lifecycle --------------------------------------------------------------------

    @property
    def deleted(self) -> bool:
        return self._data.deleted_at is not None

    @property
    def deleted_at(self) -> dt.datetime | None:
        return self._data.deleted_at

    @property
    def deleted_by(self) -> str | None:
        return self._data.deleted_by

    @property
    def redacted(self) -> bool:
        """Whether a purge removed the bytes of some of its files (they stay listed)."""
        return bool(self._store.backend.redactions(self._data.id))

    def redactions(self) -> list[Redaction]:
        """Its files whose bytes were purged: path, digest, reason, by whom, when."""
        return self._store.backend.redactions(self._data.id)

    def delete(self, delete_aliases: bool = False) -> None:
        """Soft-delete this version: hidden from refs and listings, kept in lineage,
        restorable with `Store.restore` until gc purges it. Refused while user aliases
        point at it, unless ``delete_aliases``."""
        self._data = self._store.backend.delete_version(self._data, delete_aliases=delete_aliases)
        self._reset_edits()

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.qualified_ref} {self.type}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and other.id == self._data.id

    def __hash__(self) -> int:
        return hash(self._data.id)

    # -- contents ---------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = self._store.content.manifest(self._data.id)
        return self._manifest

    def files(self, names: Sequence[str] | None = None, per_page: int = 50) -> list[str]:
        """Entry paths (W&B's ``names``: only those; ``per_page`` changes nothing)."""
        del per_page
        if names is None:
            return file_names(self, self.manifest)
        wanted = set(names)
        return file_names(self, (e for e in self.manifest if e.path in wanted))

    def entries(self, start: int = 0, limit: int | None = None) -> list[ManifestEntry]:
        """Entries in path order, or one page of them (without loading the whole
        manifest: for versions with very many files)."""
        if self._manifest is not None:
            end = None if limit is None else start + limit
            return list(self._manifest.entries[start:end])
        return self._store.content.entries(self._data.id, start, limit)

    def iter_entries(self) -> Iterator[ManifestEntry]:
        """Every entry in path order, read from the catalog a page at a time: memory stays
        flat however many entries the version has."""
        if self._manifest is not None:
            yield from self._manifest
            return
        yield from self._store.content.iter_entries(self._data.id)

    def entry(self, path: str) -> ManifestEntry:
        wanted = normalise_entry_path(path)
        if self._manifest is None:  # one entry of a version of a million: ask for it alone
            found = self._store.content.entry(self._data.id, wanted)
        else:
            found = next((e for e in self._manifest if e.path == wanted), None)
        if found is None:
            raise NotFound(f"{self.ref} has no entry {path!r} (its files: see .files())")
        return found

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        multipart: bool | None = None,
        *,
        progress: bool | None = None,
        link: str = "auto",
        exact: bool = False,
    ) -> Path:
        """A verified local copy of every entry (or of those whose path starts with
        ``path_prefix``; with ``exact``, the one entry at that path), directly under
        ``root`` (default: the store's cache). Files already there are re-hashed and
        replaced when they differ.

        ``link``: ``"auto"`` (a copy-on-write reflink where the filesystem can, else a
        copy), ``"reflink"``, ``"copy"``, or, on request, ``"hardlink"`` / ``"symlink"``
        (read-only files that *are* the stored objects: replace them, never edit in place).

        W&B's ``allow_missing_references`` leaves out, with a warning, a reference whose
        target is gone; its ``skip_cache`` and ``multipart`` are accepted and change nothing
        (a download into ``root`` goes there directly)."""
        del skip_cache, multipart
        select = None
        if path_prefix is not None:
            prefix = check_prefix(self, path_prefix)
            select = (lambda p: p == prefix) if exact else (lambda p: p.startswith(prefix))
        return download.download(
            self._store, self, root, show_progress=progress, link=link, select=select,
            allow_missing_references=allow_missing_references,
        )  # fmt: skip

    def open(self, path: str) -> BinaryIO:
        """A binary stream of one entry, verified against its digest as it is read."""
        entry = self.entry(path)
        for redaction in self.redactions():
            if redaction.path == entry.path:
                raise IntegrityError(redaction.message(self.ref))
        return self._store.content.open_entry(f"{self.ref} {entry.path}", entry)

    def diff(self, other: ArtifactVersion) -> Diff:
        """How to get from this version to ``other``: paths added, removed and modified."""
        return diff_entries(self.manifest, other.manifest)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Re-hash the stored bytes; with ``root``, check that local folder against the
        version instead (missing, changed and extra files). Raise `IntegrityError` naming
        every problem."""
        if root is None:
            found = self._store.backend.verify([self._data])
            what = "failed verification"
        else:
            skip = frozenset(r.path for r in self.redactions())
            found = folders.compare(
                self.iter_entries(), Path(root), self.ref, self._store.stat_cache, skip
            )
            what = f"differs from {str(root)!r}"
        if found:
            listing = "; ".join(str(p) for p in found)
            raise IntegrityError(f"{self.ref} {what}: {listing}", found)

    # -- aliases ----------------------------------------------------------------------

    def add_alias(self, alias: str, *, reason: str | None = None, force: bool = False) -> None:
        """Point ``alias`` at this version now (moving it from another version of the
        artifact; every move is kept in the alias history, with who moved it and
        ``reason``). A protected alias moves only with ``force=True``."""
        self._store.backend.set_alias(
            self._data, check_alias(alias), None, reason=reason, force=force
        )
        self._handed.pop("aliases", None)

    def remove_alias(self, alias: str, *, reason: str | None = None, force: bool = False) -> None:
        check_alias(alias)
        if alias == LATEST:
            raise InvalidInput("'latest' is maintained automatically and cannot be removed")
        if not self._store.backend.remove_alias(self._data, alias, reason=reason, force=force):
            raise NotFound(f"{self.ref} has no alias {alias!r} (it has {self.aliases})")
        self._handed.pop("aliases", None)

    # -- lineage ----------------------------------------------------------------------

    @property
    def producer(self) -> Run | None:
        """The run that first logged this content."""
        producers = self.producers
        if self._data.created_by is not None:
            for run in producers:
                if run.id == self._data.created_by:
                    return run
        return producers[0] if producers else None

    @property
    def producers(self) -> list[Run]:
        """Every run that logged this content, first one first."""
        return self._runs("out")

    @property
    def consumers(self) -> list[Run]:
        return self._runs("in")

    def _runs(self, direction: str) -> list[Run]:
        return [
            Run(self._store, data)
            for data in self._store.backend.runs_of_version(self._data.id, direction)
        ]

    def upstream(self, type: str | None = None, depth: int | None = None) -> list[ArtifactVersion]:
        """Every version this one was made from, through any number of runs, nearest first."""
        return self._reachable(True, type, depth)

    def downstream(
        self, type: str | None = None, depth: int | None = None
    ) -> list[ArtifactVersion]:
        """Every version made from this one, through any number of runs, nearest first."""
        return self._reachable(False, type, depth)

    def _reachable(
        self, upstream: bool, type_: str | None, depth: int | None
    ) -> list[ArtifactVersion]:
        found = self._store.backend.reachable(
            self._data.id, upstream=upstream, type_=type_, depth=depth
        )
        return [ArtifactVersion(self._store, data) for data, _distance in found]

    def lineage(
        self,
        upstream: bool = True,
        downstream: bool = False,
        depth: int | None = None,
        *,
        type: str | None = None,
    ) -> Lineage:
        """The graph of runs and versions around this version (see `Store.lineage`)."""
        return self._store.lineage(
            self, upstream=upstream, downstream=downstream, depth=depth, type=type
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "project": self.project,
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "digest": self.digest,
            "hash": self.hash_algorithm,
            "size": self.size,
            "new_bytes": self.new_bytes,
            "shared_bytes": self.shared_bytes,
            "chunking": self.chunking,
            "files": self.file_count,
            "aliases": self.aliases,
            "description": self.description,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "tags": self.tags,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "deleted": self.deleted,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
            "deleted_by": self.deleted_by,
            "redacted": self.redacted,
            "source": self.source.qualified_ref if self.source is not None else None,
        }


class Run(RunRegistry, RunHabits, RunFiles, RunUpdates, RunAttributes):
    """One execution of a script: what it read (`use_artifact`) and wrote (`log_artifact`)."""

    def __init__(
        self,
        store: Store,
        data: RunData,
        *,
        live: bool = False,
        on_finish: Callable[[Run], None] | None = None,
        resumed: bool = False,
    ) -> None:
        """A run as the catalog records it; ``live`` for the run this process executes,
        which tells the catalog every so often that it is alive until it finishes
        (readers anywhere see a run whose heartbeat stopped as crashed), and then calls
        ``on_finish``; ``resumed``: a live run an earlier process began (W&B's
        ``run.resumed``), whose steps go on after its last."""
        self._store = store
        self.id = data.id
        self.project = data.project
        self._on_finish = on_finish
        self._heartbeat: Heartbeat | None = None
        self._lock = threading.RLock()  # its summary changes, and its rows are written, under it
        self._read_record(data, live)  # name, status, config, summary... (`RunUpdates`)
        if live:
            if resumed:
                self.resumed = True
                self.starting_step = self.step  # after the last step in its history
            else:
                self._next_step = 0  # a run this process just started: no history yet
            self._start_history()  # its rows are written in batches (`HistoryBuffer`)
            backend = store.backend
            self._heartbeat = Heartbeat(
                config.heartbeat_interval(),
                lambda: backend.beat_run(self.id),
                f"forebear-run-{self.id}",
            )

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.project}/{self.name} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def inputs(self) -> list[ArtifactVersion]:
        """Versions this run used, in the order it used them."""
        return self._versions("in")

    @property
    def outputs(self) -> list[ArtifactVersion]:
        """Versions this run logged, in the order it logged them."""
        return self._versions("out")

    def _versions(self, direction: str) -> list[ArtifactVersion]:
        return [
            ArtifactVersion(self._store, data)
            for data in self._store.backend.versions_of_run(self.id, direction)
        ]

    def _require_running(self, action: str) -> None:
        if self.status != "running":
            raise RunStateError(
                f"cannot {action}: run {self.id} is {self.status}; start a new one with "
                "forebear.init()"
            )

    def use_artifact(
        self,
        artifact_or_name: str | ArtifactVersion | Artifact,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        use_as: str | None = None,
    ) -> ArtifactVersion:
        """Record that this run reads a version (``name``, ``name:v3``, ``name:alias``,
        or an `Artifact` logged before: the version it became); with ``type``, only if it
        has that type. W&B's ``aliases`` are then pointed at it; ``use_as`` is accepted."""
        self._require_running("use an artifact")
        del use_as
        ref = artifact_or_name  # W&B's name for it
        wanted = [
            check_alias(a) for a in ([aliases] if isinstance(aliases, str) else aliases or [])
        ]
        if isinstance(ref, Artifact):
            use_ref = f"use it (or a ref such as {ref.name + ':latest'!r})"
            version: ArtifactVersion = ref.logged_version(use_ref)
        elif isinstance(ref, ArtifactVersion):
            version = ref
        else:
            version = self._store.artifact(ref, self.project)
        if type is not None and version.type != type:
            raise InvalidInput(
                f"{version.qualified_ref} has type {version.type!r}, not {type!r}; nothing "
                "was recorded"
            )
        self._store.backend.use(version.id, self.id)
        for alias in wanted:
            version.add_alias(alias, reason=f"used by run {self.id}")
        return version

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] = (),
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        ttl: dt.timedelta | None = None,
        progress: bool | None = None,
    ) -> ArtifactVersion:
        """Store an artifact (or a file or folder path) as a new version, or return the
        existing version with the same content; either way this run becomes a producer.
        ``tags`` are added to the version; ``ttl`` (counted from its creation) makes
        `prune` delete it once passed."""
        self._require_running("log an artifact")
        artifact = artifact_or_path  # W&B's name for it
        if isinstance(aliases, str):
            aliases = [aliases]
        if isinstance(tags, str):
            tags = [tags]
        tags = check_tags(tags)
        if ttl is None and isinstance(artifact, Artifact):
            ttl = artifact.ttl  # W&B's artifact.ttl = timedelta(...), set before logging
        ttl = check_ttl(ttl)
        if not isinstance(artifact, Artifact):
            with collector_paused():  # walking a folder of a million files: see below
                artifact = artifact_from_path(artifact, name, type, description, metadata)
        else:
            if artifact.base is not None:
                artifact.base.refuse_other_store(self._store)
            artifact.refuse_others(name, type)
            if description is not None:
                artifact.description = description
            if metadata is not None:
                artifact.metadata = {**artifact.metadata, **json_dict(metadata, "metadata")}
        with collector_paused():  # a log makes a few objects a file, and almost no cycles
            data = self._store.backend.log(
                artifact,
                project=self.project,
                run_id=self.id,
                aliases=aliases,
                tags=tags,
                ttl=ttl,
                show_progress=progress,
            )
        version = ArtifactVersion(self._store, data)
        artifact.logged, artifact.ttl = version, ttl
        return version

    def finish(
        self, status: str = "finished", exit_code: int | None = None, quiet: bool | None = None
    ) -> None:
        """End the run; later `log_artifact` calls on it are refused. W&B's ``exit_code``
        (0: finished, else failed) decides the status when given; ``quiet`` is accepted."""
        del quiet
        if exit_code is not None:
            status = "finished" if exit_code == 0 else "failed"
        if status not in STATUSES or status == "running":
            raise InvalidInput(f"invalid status {status!r}: use 'finished', 'failed' or 'crashed'")
        if self.status != "running":
            return
        self._end_history()  # the rows logged and not written yet
        self._save_pending()  # a name or tags changed in place
        try:
            self._save_at_end()
        except ForebearError as exc:  # the run still ends, with its status
            warnings.warn(f"run {self.id}: files not saved: {exc}", ForebearWarning, stacklevel=2)
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        self.status = status
        self.ended_at = dt.datetime.now(dt.timezone.utc)
        self._store.backend.update_run(self.id, status=status, ended_at=self.ended_at)
        if self._on_finish is not None:
            self._on_finish(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "project": self.project, "name": self.name, "status": self.status,
            "config": self.config, "summary": self.summary, "context": self.context,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "deleted": self.deleted,
        }  # fmt: skip
