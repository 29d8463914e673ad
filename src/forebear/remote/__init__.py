"""A store reached through a forebear server: `RemoteBackend` and its objects."""

from .backend import RemoteBackend

__all__ = ["RemoteBackend"]
