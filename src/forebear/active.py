"""The runs this process has started and not finished, newest last: the "active run" that
module-level calls act on, and the default project of refs without one."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .views import Run

_active: list[Run] = []
_lock = threading.Lock()


def current() -> Run | None:
    """The active run: the newest one started and not finished."""
    return _active[-1] if _active else None


def all_runs() -> list[Run]:
    with _lock:
        return list(_active)


def add(run: Run) -> None:
    with _lock:
        _active.append(run)


def remove(run: Run) -> None:
    with _lock:
        if run in _active:
            _active.remove(run)
