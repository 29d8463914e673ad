"""The local backend: a SQL catalog and an fsspec object location reached from this
process (see `backend.Backend`). Its parts: `identity` (catalog and location belong
together), `leases` (writers' holds on objects), `commit` (the commit protocol), `collect`
(gc), `verify`, `repair` and `transfer` (push and pull)."""

from .backend import LocalBackend

__all__ = ["LocalBackend"]
