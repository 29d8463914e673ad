"""Keeping a server's resident memory flat under glibc: two malloc arenas instead of eight
per core (threads otherwise keep memory they freed), and freed memory handed back to the
system after a burst of large buffers (checked uploads)."""

from __future__ import annotations

import ctypes
import functools
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def fewer_malloc_arenas() -> None:
    """What ``MALLOC_ARENA_MAX=2`` does, for threads started from now on."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 2)


def give_back() -> None:
    """Return freed memory at the top of the heaps to the system (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
