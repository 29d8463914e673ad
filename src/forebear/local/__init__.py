"""The local backend: a SQL catalog and an fsspec object location reached from this
process (see `backend.Backend`). Its parts: `identity` (catalog and location belong
together), `leases` (writers' holds on objects), `commit` (the commit protocol), `collect`
(gc), `verify`, `repair` and `transfer` (push and pull); `lazy` opens a store for a
listing without loading any of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import LocalBackend

__all__ = ["LocalBackend"]


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":  # loaded on first use: it brings SQLAlchemy and fsspec
        from .backend import LocalBackend

        return LocalBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
