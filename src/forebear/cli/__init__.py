"""The `forebear` command: thin commands over the public Python API (see `app`)."""

from __future__ import annotations

from . import (  # each registers its commands on the group
    imports,
    lifecycle,
    registry,
    runs,
    server,
    store,
    versions,
)
from .app import cli, main

__all__ = ["cli", "imports", "lifecycle", "main", "registry", "runs", "server", "store", "versions"]
