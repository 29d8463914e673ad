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
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import config
from ..backend import Backend
from ..chunking import Chunking
from ..db.lite import LiteCatalog, plain_sqlite_file
from ..errors import ForebearError
from ..objects.formatfile import FORMAT_FILE, parse_format
from ..records import VersionData

if TYPE_CHECKING:
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
    catalog = LiteCatalog.open(catalog_file)
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
    return LazyLocalBackend(settings, catalog, found.store_id, open_full)  # type: ignore[abstract]


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
        catalog: LiteCatalog,
        store_id: str,
        open_full: Callable[[], Backend],
    ) -> None:
        self.source = settings.source
        self.actor = config.local_actor()
        self.db_url = settings.db_url
        self.objects_url = settings.objects_url
        self.store_id = store_id
        self.catalog = catalog
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
        if name.startswith("__") or name in ("opened", "opening", "open_full", "catalog"):
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

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()


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
