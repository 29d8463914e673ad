"""Write-once, content-addressed objects on one fsspec filesystem.

`open_location` picks how: `LocalLocation` for a folder on this machine (temporary files
renamed into place, one filesystem sync per commit, copy-on-write clones), and
`RemoteLocation` for an object store or any other filesystem (uploads hashed as they
stream and abandoned before they complete when the bytes are wrong). What they share,
from the layout to the checked reads, is `ObjectLocation`. This package knows nothing of
artifacts, versions or runs.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from ..errors import StoreError

if TYPE_CHECKING:
    from .base import (
        CHUNK_LISTS,
        CHUNKED_FORMAT,
        DIGEST_RE,
        FORMAT_FILE,
        FORMAT_VERSION,
        NEW_STORE_FORMAT,
        PACKED_FORMAT,
        SMALL_BATCH,
        TRANSFER_WORKERS,
        FormatInfo,
        ObjectLocation,
        backend_errors,
        object_key,
    )
    from .listing import StoredObject
    from .local import LocalLocation
    from .remote import RemoteLocation

# Where each name lives: loaded on first use, so that a command which never touches
# objects (``forebear ls``) does not import fsspec.
_HOMES = {
    "LocalLocation": ".local",
    "RemoteLocation": ".remote",
    "StoredObject": ".listing",
}

__all__ = [
    "CHUNKED_FORMAT",
    "CHUNK_LISTS",
    "DIGEST_RE",
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "NEW_STORE_FORMAT",
    "PACKED_FORMAT",
    "SMALL_BATCH",
    "TRANSFER_WORKERS",
    "FormatInfo",
    "LocalLocation",
    "ObjectLocation",
    "RemoteLocation",
    "StoredObject",
    "backend_errors",
    "object_key",
    "open_location",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES.get(name, ".base"), __name__), name)


def open_location(url: str, storage_options: dict[str, Any] | None = None) -> ObjectLocation:
    """The object location at ``url`` (a folder or any fsspec URL), opened with
    ``storage_options`` (credentials, endpoint...). Nothing is read or written yet.

    A plain local folder is opened without importing fsspec (a third of the start-up
    of a command that only checks a few files): its root is what fsspec would make of
    it, and its filesystem is made on first use."""
    from .local import LocalLocation

    if _plain_local(url) and not storage_options:
        return LocalLocation(url, None, local_root(url))
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    from .base import backend_errors
    from .remote import RemoteLocation

    options = dict(storage_options or {})
    if fsspec.core.split_protocol(url)[0] not in (None, "file", "local"):
        # fsspec keeps every listing made by default: a server listing a store of a
        # million objects would hold them all (forebear lists afresh each time anyway)
        options.setdefault("use_listings_cache", False)
    with backend_errors(f"cannot use object location {url!r}"):
        try:
            fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise StoreError(
                f"cannot use object location {url!r}: {exc}; install the fsspec backend "
                "for this protocol (for example 'pip install s3fs')"
            ) from exc
    kind = LocalLocation if isinstance(fs, LocalFileSystem) else RemoteLocation
    return kind(url, fs, root)


def _plain_local(url: str) -> bool:
    """A path on this (POSIX) machine, not a URL (``file:x``, ``s3://b``) nor a chain of
    filesystems: one with no colon at all (a path with one goes the full way)."""
    return os.sep == "/" and ":" not in url


def local_root(path: str) -> str:
    """Where fsspec's local filesystem puts a plain path (``make_path_posix``, then
    ``_strip_protocol``): absolute paths as they are, ``~`` expanded, others under the
    working folder; no trailing slash."""
    if path.startswith("/"):
        root = path
    elif path.startswith("~"):
        root = os.path.expanduser(path)
    elif path == ".":
        root = os.getcwd()
    else:
        root = f"{os.getcwd()}/{path.removeprefix('./')}"
    return root.rstrip("/") or "/"
