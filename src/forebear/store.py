"""`Store`: where artifacts live, and `open`.

A thin façade: it chooses a backend (`LocalBackend` for a catalog and objects reached from
this process) and turns what the backend returns into `ArtifactVersion`, `Run` and `Lineage`
objects. All goes through the backend interface, so another backend serves the same API.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import active
from . import settings as config
from .accounts import StoreAccounts
from .backend import Backend
from .chunking import Chunking
from .connect import check_transfer, connect, transfer
from .editing import check_tags
from .errors import InvalidInput, Problem
from .lifecycle import StoreLifecycle
from .lineage import Lineage, build_lineage
from .paths import parse_ref
from .records import VersionData
from .registry import StoreRegistry, check_moment
from .reports import RepairReport, TransferReport
from .run_listing import StoreRuns
from .urls import redact
from .views import ArtifactVersion

if TYPE_CHECKING:
    from .cache import LocalCache
    from .content import ContentReader
    from .objects import ObjectLocation
    from .statcache import StatCache


class Store(StoreLifecycle, StoreRegistry, StoreRuns, StoreAccounts):
    """Where artifacts live: a SQL catalog (``db_url``) and an object location
    (``objects_url``), created on first use (unless ``create`` is false; in storage
    ``format`` 3, packs, unless 2 is asked); or a forebear server (``Store("https://...")``,
    or ``FOREBEAR_URL``), shown ``token`` (default: ``FOREBEAR_TOKEN``, else the one
    ``forebear login`` kept). See `forebear.open`."""

    def __init__(
        self,
        db_url: str | None = None,
        objects_url: str | os.PathLike[str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        cache_max_bytes: int | None = None,
        chunking: Chunking | None = None,
        create: bool = True,
        token: str | None = None,
        format: int | None = None,
    ) -> None:
        self.backend, self.cache_dir = connect(
            db_url, objects_url, cache_dir=cache_dir, storage_options=storage_options,
            cache_max_bytes=cache_max_bytes, chunking=chunking, create=create, token=token,
            new_format=format,
        )  # fmt: skip
        self.opened_content: ContentReader | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as where it is, opened again where unpickled (a spawned worker's)."""
        return (Store, (self.db_url, self.objects_url))

    @classmethod
    def over(cls, backend: Backend, cache_dir: str | os.PathLike[str] | None = None) -> Store:
        """A store reached through ``backend`` (a server's view of one, for one user)."""
        store = cls.__new__(cls)
        store.backend, store.opened_content = backend, None
        store.cache_dir = Path(cache_dir or config.user_cache_dir())
        return store

    @property
    def content(self) -> ContentReader:
        """Entries and bytes of committed versions (made on first use: a listing skips it)."""
        if self.opened_content is None:
            from . import content as contents

            self.opened_content = contents.ContentReader(self.backend)
        return self.opened_content

    # what the backend is, for people and for the parts that read and write bytes
    @property
    def db_url(self) -> str:
        return self.backend.db_url

    @property
    def objects_url(self) -> str:
        return self.backend.objects_url

    @property
    def objects(self) -> ObjectLocation:
        return self.backend.objects

    @property
    def cache(self) -> LocalCache:
        return self.backend.cache

    @property
    def stat_cache(self) -> StatCache:
        return self.backend.stat_cache

    @property
    def chunking(self) -> Chunking:
        """How files logged from now on are cut (each version records what it used)."""
        return self.backend.chunking

    @chunking.setter
    def chunking(self, chosen: Chunking) -> None:
        if not isinstance(chosen, Chunking):
            raise InvalidInput(f"chunking must be a forebear.chunking.Chunking, not {chosen!r}")
        self.backend.chunking = chosen

    @property
    def store_id(self) -> str | None:
        return self.backend.store_id

    @property
    def read_only(self) -> str | None:
        """Why this store cannot be written here (read-only media, permissions), or None."""
        return self.backend.read_only

    @property
    def source(self) -> str:
        """How this store was chosen (a path found from the working folder, a setting)."""
        return self.backend.source

    def __repr__(self) -> str:
        return f"Store(db_url={redact(self.db_url)!r}, objects_url={self.objects_url!r})"

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------

    def _default_project(self) -> str | None:
        run = active.current()
        return run.project if run is not None else None

    def artifact(
        self,
        ref: str | ArtifactVersion,
        project: str | None = None,
        *,
        at: dt.datetime | None = None,
    ) -> ArtifactVersion:
        """The version a ref names: ``name`` (latest), ``name:v3``, ``name:alias``,
        ``project/name:...``; with ``at`` (an aware datetime), the one it named at that
        moment (``registry/model:production`` last Tuesday)."""
        if isinstance(ref, ArtifactVersion):
            return ref
        default = project or self._default_project()
        if at is not None:
            data = self.backend.version_at(parse_ref(ref), default, check_moment(at))
        else:
            data = self.backend.get_version(parse_ref(ref), default)
        return ArtifactVersion(self, data)

    def _version(self, data: VersionData) -> ArtifactVersion:
        return ArtifactVersion(self, data)

    def projects(self) -> list[str]:
        """Every project's name (those a server's token may read), by name."""
        return self.backend.projects()

    def artifacts(
        self,
        project: str | None = None,
        type: str | None = None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[ArtifactVersion]:
        """The latest version of every artifact (of one project or type); with ``tags``,
        each artifact's newest version carrying them all; ``include_deleted`` also lists
        artifacts whose every version is deleted."""
        found = self.backend.latest_versions(
            project, type, tags=check_tags(tags), include_deleted=include_deleted
        )
        return [ArtifactVersion(self, v) for v in sorted(found, key=lambda v: (v.project, v.name))]

    def versions(
        self,
        name: str,
        project: str | None = None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[ArtifactVersion]:
        """Every version of one artifact (carrying every one of ``tags``), oldest first;
        deleted ones too with ``include_deleted``."""
        ref = parse_ref(name if project is None else f"{project}/{name}")
        found = self.backend.artifact_versions(
            ref, self._default_project(), include_deleted=include_deleted
        )
        versions = [ArtifactVersion(self, v) for v in found]
        wanted = set(check_tags(tags))
        return [v for v in versions if wanted <= set(v.tags)] if wanted else versions

    def alias_history(self, name: str, project: str | None = None) -> list[dict[str, Any]]:
        """Every alias move of an artifact, oldest first."""
        ref = parse_ref(name if project is None else f"{project}/{name}")
        return self.backend.alias_history(ref, self._default_project())

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
        version = self.artifact(ref_or_version)
        found = self.backend.lineage(version.id, upstream, downstream, depth)
        return build_lineage(found, type)

    # -- checking, repairing, collecting, moving ----------------------------------------

    def verify(self, ref: str | ArtifactVersion | None = None) -> list[Problem]:
        """Re-hash the objects and references of one version, or of every committed
        version, and check the catalog's entries against each version's manifest; return
        the problems found (empty when all is well)."""
        return self.backend.verify(self._chosen(ref))

    def repair(
        self,
        ref: str | ArtifactVersion | None = None,
        source: str | os.PathLike[str] | None = None,
    ) -> RepairReport:
        """Store again the missing or corrupted objects of one version (or of every
        committed version) from the files under ``source`` whose bytes match, found by
        content whatever their names; rebuild manifest objects and chunk lists from the
        catalog. The report says what was restored and what is still missing."""
        self.backend.require_writable()
        return self.backend.repair(self._chosen(ref), None if source is None else Path(source))

    def _chosen(self, ref: str | ArtifactVersion | None) -> list[VersionData]:
        if ref is None:
            return self.backend.all_versions()
        chosen = ref.qualified_ref if isinstance(ref, ArtifactVersion) else ref
        return [self.backend.get_version(parse_ref(chosen), self._default_project())]

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
        return transfer(self.backend, _as_store(other, "push", self).backend, refs, progress)

    def pull(
        self,
        other: Store | str | os.PathLike[str],
        refs: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> TransferReport:
        """Copy versions from ``other`` into this store; the mirror of `push`."""
        return transfer(_as_store(other, "pull", self).backend, self.backend, refs, progress)


def _as_store(other: Store | str | os.PathLike[str], action: str, this: Store) -> Store:
    check_transfer(this.backend, other, action)  # before a folder is made a store
    return other if isinstance(other, Store) else open(other)


def open(path_or_url: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """Open (creating if needed) the store in a folder, or the one a database URL names;
    without one, the store found in this folder or the nearest parent holding a
    ``.forebear/`` or ``forebear.toml`` (else ``./.forebear/``)."""
    if path_or_url is None:
        return Store(**options)
    if os.fspath(path_or_url).startswith(("http://", "https://")):
        return Store(os.fspath(path_or_url), **options)
    settings = config.settings_for_path(path_or_url)
    options.setdefault("cache_dir", settings.cache_dir)
    return Store(settings.db_url, settings.objects_url, **options)
