"""Which backend a `Store` gets: a forebear server (a ``http(s)://`` URL, or
``FOREBEAR_URL``) or a catalog and object location this process reaches itself."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import settings as config
from .backend import Backend
from .chunking import Chunking
from .errors import InvalidInput, StoreError
from .paths import parse_ref
from .reports import TransferReport


def connect(
    db_url: str | None,
    objects_url: str | os.PathLike[str] | None,
    *,
    cache_dir: str | os.PathLike[str] | None,
    storage_options: dict[str, Any] | None,
    cache_max_bytes: int | None,
    chunking: Chunking | None,
    create: bool,
    token: str | None = None,
    new_format: int | None = None,
) -> tuple[Backend, Path]:
    """The backend, and the folder of its local cache; ``new_format``: the storage format
    of a store made now (see `Store`)."""
    if objects_url is not None:  # a folder may come as a pathlib.Path
        objects_url = os.fspath(objects_url)
    if new_format is not None:
        _check_format(new_format)
    server = config.server_url(db_url, objects_url)
    if server is not None:
        if new_format is not None:
            raise InvalidInput(
                "a forebear server's store is made by the server: a format is chosen where "
                "it runs (forebear --db ... --objects ... init --format N)"
            )
        from .remote import RemoteBackend  # its HTTP client loads only when used

        remote = RemoteBackend(
            server,
            token or config.server_token(server),
            cache_dir=None if cache_dir is None else Path(cache_dir),
            cache_max_bytes=cache_max_bytes,
            chunking=chunking,
            source="given" if db_url else "the FOREBEAR_URL setting",
        )
        return remote, remote.cache_dir
    from .local.lazy import open_lazily

    settings = config.resolve(db_url, objects_url, cache_dir)

    def open_full() -> Backend:
        from .local import LocalBackend

        return LocalBackend(
            settings,
            storage_options=storage_options,
            cache_max_bytes=cache_max_bytes,
            chunking=chunking,
            create=create,
            format=new_format,
        )

    lazily = open_lazily(settings, create, open_full) if new_format is None else None
    return lazily or open_full(), settings.cache_dir


def _check_format(version: object) -> None:
    from .objects.formatfile import NEW_STORE_FORMAT, STORE_FORMATS

    if type(version) is not int or version not in STORE_FORMATS:
        choices = " or ".join(map(str, STORE_FORMATS))
        raise InvalidInput(
            f"format {version!r}: a new store is format {choices} (2 keeps one file per "
            f"object, as forebear before packs; {NEW_STORE_FORMAT}, the default, packs them)"
        )


def transfer(
    source: Backend, target: Backend, refs: Sequence[str] | None, progress: bool | None
) -> TransferReport:
    """Push or pull between two stores this process reaches directly."""
    from .local.transfer import transfer_between

    return transfer_between(source, target, refs, show_progress=progress)


def check_transfer(this: Backend, other: object, action: str) -> None:
    """Refuse a push or pull (``action``) before the other store is opened, or made from
    a folder: from a store reached through a server, or to ``other`` that is a ref given in
    the store's place (``push("data:v3")``), which would have made a store folder so named
    and pushed everything into it."""
    from .local.lazy import reached_directly

    if reached_directly(this) is None:
        raise StoreError(
            "push and pull copy between stores this process reaches directly; this one is "
            "reached through a forebear server: run it where the server's store is reached"
        )
    if isinstance(other, str) and _looks_like_a_ref(other):
        raise InvalidInput(
            f"{action} takes the other store first (a Store, a store folder or a "
            f"forebear.toml), then the refs: {other!r} is a ref, and no such folder exists; "
            f"{action}(other_store, refs=[{other!r}])"
        )


def _looks_like_a_ref(text: str) -> bool:
    """``name:v3`` or ``project/name:alias``, not a URL, a Windows path or a folder there."""
    if ":" not in text or "://" in text or os.path.exists(text):
        return False
    if len(text) > 1 and text[1] == ":" and text[0].isalpha():  # C:\stores\team
        return False
    try:
        parse_ref(text)
    except InvalidInput:
        return False
    return True
