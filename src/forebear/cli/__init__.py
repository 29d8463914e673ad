"""The `forebear` command: thin commands over the public Python API (see `app`)."""

from __future__ import annotations

from . import lifecycle, registry, runs, store, versions  # each registers its commands on the group
from .app import cli, main

__all__ = ["cli", "lifecycle", "main", "registry", "runs", "store", "versions"]
