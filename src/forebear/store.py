"""`Store`: one catalog database plus one object location, and `open`.

Commit protocol (write bottom-up): objects first, then the manifest object, then one
database transaction that inserts the version, its entries, the run edge and the alias
moves. A crash at any point leaves at most unreachable objects, never a partial version.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from . import commit, config, garbage, identity, liveness, repair, verification
from .artifacts import Artifact, ArtifactVersion
from .cache import STAT_CACHE, LocalCache
from .chunking import (
    DEFAULT_CHUNKING,
    Chunking,
)
from .content import ContentReader
from .db import catalog, traversal
from .db.engine import (
    CatalogFile,
    ensure_schema,
    make_engine,
    read_only_reason,
    read_session,
    redact,
    sqlite_file,
    write_session,
)
from .db.schema import RunRow, VersionRow
from .errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    Problem,
    StoreError,
    StoreNotFound,
)
from .garbage import DEFAULT_GRACE, GcReport
from .objects import ObjectLocation
from .paths import check_alias, parse_ref
from .repair import RepairReport
from .statcache import StatCache

if TYPE_CHECKING:
    from .lineage import Lineage
    from .run import Run
    from .sync import TransferReport

# Objects verify remembers having checked (an object shared by many entries is read once).
CHECKED_DIGESTS = 100_000


class Store:
    """Where artifacts live: a SQL catalog (``db_url``) and an object location
    (``objects_url``), created on first use. See `forebear.open` for the short form."""

    def __init__(
        self,
        db_url: str | None = None,
        objects_url: str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        cache_max_bytes: int | None = None,
        chunking: Chunking | None = None,
        create: bool = True,
    ) -> None:
        settings = config.resolve(db_url, objects_url, cache_dir)
        self.source = settings.source  # how this store was chosen (see `status`)
        self.db_url = settings.db_url
        self.objects_url = settings.objects_url
        self.cache_dir = settings.cache_dir
        self.cache = LocalCache(
            self.cache_dir,
            cache_max_bytes if cache_max_bytes is not None else settings.cache_max_bytes,
        )
        self.stat_cache = StatCache(
            self.cache_dir / STAT_CACHE, config.user_cache_dir() / "stat-cache.key"
        )
        self.objects = ObjectLocation(settings.objects_url, storage_options)
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
        self.engine = make_engine(settings.db_url, read_only=self.read_only)
        ensure_schema(self.engine, read_only=self.read_only is not None, create=create)
        self.catalog_file = CatalogFile(settings.db_url)
        self.content = ContentReader(self.engine, self.objects, self.cache)
        self.store_id = identity.bind(
            self.objects, self.engine, writable=self.read_only is None, create=create
        )

    def __repr__(self) -> str:
        return f"Store(db_url={redact(self.db_url)!r}, objects_url={self.objects_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def status(self) -> dict[str, Any]:
        """Which store this is and what it holds: how it was found, its catalog (password
        hidden) and object location, format, store id, counts, and the local cache."""
        with read_session(self.engine) as session:
            counts = catalog.counts(session)
        usage = self.cache.usage()
        local = config.local_path_of(self.objects_url)
        return {
            "path": str(local) if local is not None else self.objects_url,
            "found_by": self.source,
            "catalog": redact(self.db_url),
            "objects": self.objects_url,
            "format_version": self.objects.format_version,
            "store_id": self.store_id,
            "read_only": self.read_only,
            **counts,
            "cache": usage.to_dict(),
        }

    def own_files(self) -> frozenset[str]:
        """The store's own local files outside its object location (a SQLite catalog kept
        elsewhere, the stat cache): never part of a version."""
        files: set[str] = set()
        for base in (self.catalog_file.path, str(self.stat_cache.path)):
            if base is not None:
                files.update(os.path.abspath(f"{base}{suffix}") for suffix in ("", "-wal", "-shm"))
        return frozenset(files)

    def require_writable(self) -> None:
        """Refuse to change a store opened read-only, before any work is done."""
        if self.read_only is not None:
            raise StoreError(
                f"the store's catalog {redact(self.db_url)} is read-only here "
                f"({self.read_only}); this needs a store you can write to"
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------

    def _default_project(self) -> str | None:
        from .run import active_run

        run = active_run()
        return run.project if run is not None else None

    def _version(self, session: Session, row: VersionRow) -> ArtifactVersion:
        return self._versions(session, [row.id])[row.id]

    def _versions(
        self, session: Session, version_ids: Iterable[int], type_: str | None = None
    ) -> dict[int, ArtifactVersion]:
        loaded = catalog.load_versions(session, version_ids, type_)
        return {i: ArtifactVersion(self, data) for i, data in loaded.items()}

    def artifact(self, ref: str | ArtifactVersion, project: str | None = None) -> ArtifactVersion:
        """The version a ref names: ``name`` (latest), ``name:v3``, ``name:alias``,
        ``project/name:...``."""
        if isinstance(ref, ArtifactVersion):
            return ref
        parsed = parse_ref(ref)
        with read_session(self.engine) as session:
            row = catalog.get_version(session, parsed, project or self._default_project())
            return self._version(session, row)

    def artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactVersion]:
        """The latest version of every artifact, optionally of one project or type."""
        with read_session(self.engine) as session:
            ids = catalog.latest_version_ids(session, project, type)
            found = self._versions(session, ids)
        return sorted(found.values(), key=lambda v: (v.project, v.name))

    def versions(self, name: str, project: str | None = None) -> list[ArtifactVersion]:
        """Every version of one artifact, oldest first."""
        parsed = parse_ref(name if project is None else f"{project}/{name}")
        with read_session(self.engine) as session:
            artifact = catalog.get_artifact(session, parsed, self._default_project())
            return [self._version(session, r) for r in catalog.list_versions(session, artifact.id)]

    def alias_history(self, name: str, project: str | None = None) -> list[dict[str, Any]]:
        """Every alias move of an artifact, oldest first."""
        parsed = parse_ref(name if project is None else f"{project}/{name}")
        with read_session(self.engine) as session:
            artifact = catalog.get_artifact(session, parsed, self._default_project())
            return catalog.alias_history(session, artifact.id)

    def run(self, run_id: str) -> Run:
        with read_session(self.engine) as session:
            row = catalog.get_run(session, run_id)
            return self._run(session, row)

    def runs(self, project: str | None = None) -> list[Run]:
        with read_session(self.engine) as session:
            return [self._run(session, r, name) for r, name in catalog.list_runs(session, project)]

    def _run(self, session: Session, row: RunRow, project: str | None = None) -> Run:
        from .run import Run

        status = row.status
        if status == "running" and not liveness.alive(
            row.context or {}, row.heartbeat_at or row.started_at
        ):
            status = "crashed"  # as read: reading never writes
        name = project if project is not None else catalog.project_name(session, row.project_id)
        return Run._from_row(self, row, name, status)

    def lineage(
        self,
        ref_or_version: str | ArtifactVersion,
        upstream: bool = True,
        downstream: bool = False,
        depth: int | None = None,
        *,
        type: str | None = None,
    ) -> Lineage:
        """The graph of runs and versions around one version, ``depth`` artifact hops out
        (None: all the way), optionally showing only versions of one ``type``."""
        from .lineage import build_lineage

        version = self.artifact(ref_or_version)
        with read_session(self.engine) as session:
            return build_lineage(self, session, version, upstream, downstream, depth, type)

    # -- internals used by ArtifactVersion and Run -----------------------------------

    def _aliases_of(self, version: ArtifactVersion) -> list[str]:
        with read_session(self.engine) as session:
            return catalog.aliases_of(session, version.id)

    def _set_alias(self, version: ArtifactVersion, alias: str, run_id: str | None = None) -> None:
        check_alias(alias)
        with write_session(self.engine) as session:
            catalog.set_alias(session, version._data.artifact_id, alias, version.id, run_id)

    def _remove_alias(self, version: ArtifactVersion, alias: str) -> None:
        check_alias(alias)
        if alias == catalog.LATEST:
            raise InvalidInput("'latest' is maintained automatically and cannot be removed")
        with write_session(self.engine) as session:
            if not catalog.remove_alias(session, version._data.artifact_id, alias, version.id):
                raise NotFound(f"{version.ref} has no alias {alias!r} (it has {version.aliases})")

    def _runs_of(self, version: ArtifactVersion, direction: str) -> list[Run]:
        with read_session(self.engine) as session:
            rows = catalog.runs_of_version(session, version.id, direction)
            return [self._run(session, r) for r in rows]

    def _run_versions(self, run_id: str, direction: str) -> list[ArtifactVersion]:
        with read_session(self.engine) as session:
            rows = catalog.versions_of_run(session, run_id, direction)
            return [self._version(session, r) for r in rows]

    def _reachable(
        self, version: ArtifactVersion, *, upstream: bool, type_: str | None, depth: int | None
    ) -> list[ArtifactVersion]:
        with read_session(self.engine) as session:
            distances = traversal.walk(session, version.id, upstream, depth).distances
            del distances[version.id]
            found = self._versions(session, distances, type_)
        return sorted(
            found.values(),
            key=lambda v: (distances[v.id], v.project, v.name, v._data.number),
        )

    # -- writing ---------------------------------------------------------------------

    def _log(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str | None,
        aliases: Sequence[str] = (),
        show_progress: bool | None = None,
    ) -> ArtifactVersion:
        """Hash and store an artifact's files, then commit the version (see `commit`)."""
        data = commit.log(
            self,
            artifact,
            project=project,
            run_id=run_id,
            aliases=aliases,
            show_progress=show_progress,
        )
        return ArtifactVersion(self, data)

    def _use(self, ref: str | ArtifactVersion, run_id: str, project: str) -> ArtifactVersion:
        version = ref if isinstance(ref, ArtifactVersion) else self.artifact(ref, project=project)
        with write_session(self.engine) as session:
            # A run reading back its own output (directly, or made from it by another run)
            # is not recorded as an input: that edge would make the lineage loop.
            pk = catalog.run_pk(session, run_id)
            if not traversal.version_descends_from_run(session, version.id, pk):
                catalog.add_edge(session, pk, version.id, "in")
        return version

    def _download(
        self,
        version: ArtifactVersion,
        root: str | os.PathLike[str] | None,
        *,
        progress: bool | None = None,
        link: str = "auto",
    ) -> Path:
        from .download import materialise

        if root is None:  # the cache: kept within its bound, least recently used first
            folder = self.cache.download_folder(version.project, version.name, version.version)
            done = materialise(self, version, folder, show_progress=progress, link=link)
            self.cache.touch(done)
            self.cache.prune(keep=done)
            return done
        return materialise(self, version, Path(root), show_progress=progress, link=link)

    # -- checking and collecting -----------------------------------------------------

    def _verify_or_raise(self, version: ArtifactVersion) -> None:
        found = verification.problems(self.content, [version])
        if found:
            listing = "; ".join(str(p) for p in found)
            raise IntegrityError(f"{version.ref} failed verification: {listing}", found)

    def verify(self, ref: str | ArtifactVersion | None = None) -> list[Problem]:
        """Re-hash the objects and references of one version, or of every committed
        version; return the problems found (empty when all is well)."""
        if ref is not None:
            return verification.problems(self.content, [self.artifact(ref)])
        return verification.problems(self.content, self._all_versions())

    def repair(
        self,
        ref: str | ArtifactVersion | None = None,
        source: str | os.PathLike[str] | None = None,
    ) -> RepairReport:
        """Store again the missing or corrupted objects of one version (or of every
        committed version) from the files under ``source`` whose bytes match, found by
        content whatever their names; rebuild manifest objects and chunk lists from the
        catalog. The report says what was restored and what is still missing."""
        self.require_writable()
        versions = [self.artifact(ref)] if ref is not None else self._all_versions()
        return repair.repair(self.content, self.stat_cache, versions, source)

    def _all_versions(self) -> list[ArtifactVersion]:
        versions: list[ArtifactVersion] = []
        with read_session(self.engine) as session:
            for artifact, _project in catalog.list_artifacts(session):
                versions.extend(
                    self._version(session, row)
                    for row in catalog.list_versions(session, artifact.id)
                )
        return versions

    def push(
        self,
        other: Store | str | os.PathLike[str],
        refs: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> TransferReport:
        """Copy versions (``refs``, or all when None) with everything upstream of them,
        their runs, edges and aliases, and only the objects missing there, to ``other``
        (a Store, a store folder or a forebear.toml). Idempotent and resumable."""
        from .sync import transfer

        return transfer(self, _as_store(other), refs, show_progress=progress)

    def pull(
        self,
        other: Store | str | os.PathLike[str],
        refs: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> TransferReport:
        """Copy versions from ``other`` into this store; the mirror of `push`."""
        from .sync import transfer

        return transfer(_as_store(other), self, refs, show_progress=progress)

    def gc(self, dry_run: bool = False, *, grace: dt.timedelta | None = None) -> GcReport:
        """Delete objects no committed version references (leftovers of crashed work) once
        they are older than ``grace`` (default 7 days); return a report of what was removed
        (iterating it yields the digests), or would be with ``dry_run``.

        Objects a live writer holds under its lease are kept, and the collection holds the
        catalog's write lock, so no writer can start relying on an object while it is being
        judged garbage.
        """
        if not dry_run:
            self.require_writable()
        chosen = DEFAULT_GRACE if grace is None else grace
        if not isinstance(chosen, dt.timedelta) or chosen < dt.timedelta(0):
            raise InvalidInput(f"grace must be a timedelta of 0 or more, not {grace!r}")
        return garbage.collect(self, dry_run=dry_run, grace=chosen)


def _as_store(other: Store | str | os.PathLike[str]) -> Store:
    return other if isinstance(other, Store) else open(other)


def open(path_or_url: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """Open (creating if needed) the store in a folder, or the one a database URL names;
    without one, the store found in this folder or the nearest parent holding a
    ``.forebear/`` or ``forebear.toml`` (else ``./.forebear/``)."""
    if path_or_url is None:
        return Store(**options)
    settings = config.settings_for_path(path_or_url)
    options.setdefault("cache_dir", settings.cache_dir)
    return Store(settings.db_url, settings.objects_url, **options)
