"""What a listing of an object location says about each object it finds."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, NamedTuple


def modified_time(entry: Mapping[str, Any]) -> float | None:
    """When a listed object was last written, from whichever field its backend fills."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = entry.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    return None


class StoredObject(NamedTuple):
    """An object as a listing of the location sees it; ``modified`` in seconds since the
    epoch (None where the backend does not say)."""

    digest: str
    size: int
    modified: float | None
