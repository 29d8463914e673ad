"""`LazyLocalBackend`: a local store opened the full way only when a command needs more
than a listing.

Opening a `LocalBackend` imports SQLAlchemy and fsspec, builds the schema's mappings and
checks the schema: about 0.5 s, where ``forebear ls`` needs 30 ms of work. For a store whose
catalog is a plain SQLite file at the current schema and whose objects are a folder on this
machine, this backend first checks, without those libraries, that the two halves belong
together (the same store id on both sides, a format this code reads), answers the listing
(`latest_versions`, `aliases`) from `db.lite`, and opens the full backend on the first call
of anything else; from then on every call goes there. A store it cannot check plainly is
opened the full way at once, so every error is the full backend's own.

A run that only logs files unchanged since they made a version (a pipeline step run
again) is the other plain case: the run's rows, the re-log
check (`unchanged.logged_before`) and its record go through `db.lite_log`, and the full
backend opens only when the files changed or the case is not plain (aliases, tags, a
draft...), to log them the full way. A log of files that changed hashes them while the
full backend opens beside it, in a thread: importing SQLAlchemy and checking the schema
(about 0.45 s) then costs the log almost nothing, since hashing mostly waits for its
worker processes.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import settings as config
from ..backend import Backend
from ..chunking import Chunking
from ..db.lite import plain_sqlite_file, read_only
from ..db.lite_log import LiteLog, Unanswered
from ..errors import ForebearError, StoreError
from ..objects import local_root
from ..objects.formatfile import FORMAT_FILE, PACKED_FORMAT, FormatInfo, parse_format
from ..objects.packs import PackIndex, PackSlot
from ..paths import REGISTRY, is_name
from ..records import Redaction, RunData, VersionData

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from .backend import LocalBackend


def open_lazily(
    settings: config.StoreSettings, create: bool, open_full: Callable[[], Backend]
) -> Backend | None:
    """A `LazyLocalBackend` for the store ``settings`` name, or None when it must be
    opened the full way (``open_full``) at once."""
    if not (settings.found or create) or "://" in settings.objects_url:
        return None
    catalog_file = plain_sqlite_file(settings.db_url)
    if catalog_file is None:
        return None
    catalog = LiteLog.open(catalog_file)
    if catalog is None:
        return None
    format_file = os.path.join(settings.objects_url, FORMAT_FILE)
    try:
        with open(format_file, "rb") as file:
            found = parse_format(file.read(), format_file, settings.objects_url)
    except (OSError, ForebearError):  # the full open explains what is wrong
        return None
    if found.store_id is None or found.store_id != catalog.store_id:
        return None
    # its other methods are forwarded, below the class
    return LazyLocalBackend(settings, catalog, found, open_full)  # type: ignore[abstract]


def reached_directly(backend: Backend) -> LocalBackend | None:
    """The `LocalBackend` behind ``backend`` (opened now if it was lazy), or None for a
    store reached through a server: for what needs the catalog and objects themselves
    (push and pull, serving the store)."""
    from .backend import LocalBackend

    if isinstance(backend, LazyLocalBackend):
        backend = backend.full()
    return backend if isinstance(backend, LocalBackend) else None


class LazyLocalBackend(Backend):
    """See the module's docstring. Attributes it knows without opening the store: ``source``,
    ``actor``, ``db_url``, ``objects_url`` and ``store_id``; any other (``objects``,
    ``cache``, ``read_only``...) opens it."""

    def __init__(
        self,
        settings: config.StoreSettings,
        catalog: LiteLog,
        found: FormatInfo,
        open_full: Callable[[], Backend],
    ) -> None:
        self.source = settings.source
        self.actor = config.local_actor()
        self.db_url = settings.db_url
        self.objects_url = settings.objects_url
        self.store_id = found.store_id
        self.catalog = catalog
        self.cache_dir = settings.cache_dir
        self.packed = found.format_version >= PACKED_FORMAT
        self.open_full = open_full
        self.opened: Backend | None = None
        self.opening = threading.Lock()

    def full(self) -> Backend:
        """The full backend, opened on first need (once, whatever the threads)."""
        with self.opening:
            if self.opened is None:
                self.opened = self.open_full()
            return self.opened

    def __getattr__(self, name: str) -> Any:
        # only reached for what __init__ did not set: the attributes of the full backend
        if name.startswith("__") or name in ("opened", "opening", "open_full", "catalog", "packed"):
            raise AttributeError(name)
        return getattr(self.full(), name)

    @property
    def chunking(self) -> Chunking:
        return self.full().chunking

    @chunking.setter
    def chunking(self, chosen: Chunking) -> None:
        # how files logged from now on are cut: the full backend logs them
        self.full().chunking = chosen

    def latest_versions(
        self,
        project: str | None,
        type_: str | None,
        *,
        tags: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> list[VersionData]:
        if self.opened is None and not tags and not include_deleted:
            found = self.catalog.latest_versions(project, type_)
            if found is not None:
                return found
        return self.full().latest_versions(
            project, type_, tags=tags, include_deleted=include_deleted
        )

    def aliases(self, version_id: int) -> list[str]:
        found = self.catalog.aliases(version_id) if self.opened is None else None
        return found if found is not None else self.full().aliases(version_id)

    def tags(self, version_id: int) -> list[str]:
        found = self.catalog.tags(version_id) if self.opened is None else None
        return found if found is not None else self.full().tags(version_id)

    def redactions(self, version_id: int) -> list[Redaction]:
        try:
            if self.opened is None and not self.catalog.redacted(version_id):
                return []  # what the full backend lists is the purges of these rows
        except Unanswered:
            pass
        return self.full().redactions(version_id)

    # -- a run logging files unchanged since they made a version ----------------------------

    def require_writable(self) -> None:
        if self.opened is not None or read_only(self.catalog.path) is not None:
            self.full().require_writable()  # which says why it is not

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
        if self.opened is None and is_name(project) and project != REGISTRY:
            made = self.catalog.create_run(run_id, project, name, config, context, started_at)
            if made is not None:
                return made
        return self.full().create_run(run_id, project, name, config, context, started_at=started_at)

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        summary: dict[str, Any] | None = None,
        ended_at: dt.datetime | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        if self.opened is None and self.catalog.update_run(
            run_id, status=status, summary=summary, ended_at=ended_at, config=config
        ):
            return
        self.full().update_run(
            run_id, status=status, summary=summary, ended_at=ended_at, config=config
        )

    def beat_run(self, run_id: str) -> bool:
        beaten = self.catalog.beat_run(run_id) if self.opened is None else None
        return beaten if beaten is not None else self.full().beat_run(run_id)

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
        plain = not (aliases or tags or ttl or artifact.base is not None)
        checked = False
        if plain and self.opened is None and is_name(project) and project != REGISTRY:
            again = self._log_again(artifact, project, run_id)
            if again is not None:
                return again
            checked = True
        if self.opened is not None or artifact.base is not None or not len(artifact):
            return self.full().log(
                artifact, project=project, run_id=run_id, aliases=aliases, tags=tags, ttl=ttl,
                show_progress=show_progress,
            )  # fmt: skip
        return self._log_while_opening(
            artifact, project=project, run_id=run_id, aliases=aliases, tags=tags, ttl=ttl,
            show_progress=show_progress, checked=checked,
        )  # fmt: skip

    def _log_while_opening(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str | None,
        aliases: Sequence[str],
        tags: Sequence[str],
        ttl: dt.timedelta | None,
        show_progress: bool | None,
        checked: bool,
    ) -> VersionData:
        """Hash the files while the full backend opens in a thread, then log them there
        (``checked``: the re-log check found no version they make, nothing to ask again).
        An error opening the store is raised by the second `full`, once hashing is done."""
        from .. import ingest, progress, staged
        from ..statcache import StatCache

        if read_only(self.catalog.path) is not None:
            self.full().require_writable()  # which says why it is not
        opening = threading.Thread(target=self._open_quietly, name="forebear-open", daemon=True)
        opening.start()
        stat_cache = StatCache.in_folder(self.cache_dir)
        show = progress.wanted(show_progress)
        forbidden = config.own_files(self.catalog.path, stat_cache.path)
        root = local_root(self.objects_url)  # the folder the full backend's location opens
        stage_into = staged.staging_folder(root) if self.packed else None
        prepared = ingest.prepare(artifact, stat_cache, show, forbidden, stage_into)
        try:
            from . import commit  # after hashing: it brings SQLAlchemy, the thread's to load
            from .backend import LocalBackend

            full = self.full()  # waits for the thread, or raises what opening it raised
            if not isinstance(full, LocalBackend):
                raise StoreError(f"{self.db_url} did not open as a local store")
            return commit.log(
                full, artifact, project=project, run_id=run_id, aliases=aliases, tags=tags,
                ttl=ttl, show_progress=show_progress, prepared=prepared, relog_checked=checked,
            )  # fmt: skip
        finally:
            prepared.close()

    def _open_quietly(self) -> None:
        try:
            self.full()
        except BaseException:  # noqa: BLE001 - the caller's own full() raises it again
            return

    def _log_again(
        self, artifact: Artifact, project: str, run_id: str | None
    ) -> VersionData | None:
        """The version these unchanged files made, its log recorded; None: log them the
        full way (changed, not known, or not the plain case)."""
        from ..objects import open_location
        from ..statcache import StatCache
        from . import unchanged

        if not len(artifact):
            return None
        stat_cache = StatCache.in_folder(self.cache_dir)
        try:
            objects = open_location(self.objects_url)
            mark = None
            if self.packed:  # as the full backend: packs, and the mark read before any look
                objects.attach_packs(LitePackIndex(self.catalog))
                mark = self.catalog.whole_mark()
                if mark is None:
                    return None
            version = unchanged.logged_before(
                self.catalog, stat_cache, objects, artifact, project, mark
            )
        except (Unanswered, ForebearError, OSError):
            return None
        if version is None:
            return None
        return self.catalog.log_again(version, artifact.type, run_id, self.actor)

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()


class LitePackIndex(PackIndex):
    """Where packed objects are, as `db.lite_log` reads them: for the checks of a re-log,
    which store nothing, so it never records a pack."""

    def __init__(self, catalog: LiteLog) -> None:
        self.catalog = catalog

    def locate(self, digests: Collection[str]) -> dict[str, PackSlot]:
        return {d: PackSlot(*where) for d, where in self.catalog.locate(digests).items()}

    def record(self, pack: str, size: int, slots: Mapping[str, tuple[int, int]]) -> None:
        raise StoreError("a re-log checked without SQLAlchemy stores no pack")


def _forwarded(name: str) -> Callable[..., Any]:
    def forward(self: LazyLocalBackend, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.full(), name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = getattr(Backend, name).__doc__
    return forward


# Every other method of the interface goes to the full backend, whatever it is called:
# a method added to `Backend` later is forwarded too.
for _name in (Backend.__abstractmethods__ | {"require_writable"}) - vars(LazyLocalBackend).keys():
    setattr(LazyLocalBackend, _name, _forwarded(_name))
LazyLocalBackend.__abstractmethods__ = frozenset()
