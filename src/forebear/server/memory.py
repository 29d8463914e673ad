"""Keeping a server's resident memory flat under glibc: two malloc arenas instead of eight
per core (threads otherwise keep memory they freed), buffers of a MiB or more mapped on
their own, and freed memory handed back to the system after a burst of large buffers
(checked uploads)."""

from __future__ import annotations

import ctypes
import functools
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters
M_ARENA_MAX = -8
LARGE_BUFFER = 1 << 20  # buffers this large are mapped, and unmapped once freed


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def keep_memory_flat() -> None:
    """What ``MALLOC_ARENA_MAX=2`` does, for threads started from now on; and buffers of a
    MiB or more (parts, groups of chunks) mapped on their own, so that the memory goes
    back to the system when they are freed (glibc would otherwise raise this threshold to
    32 MiB after the first such buffer it frees, and keep later ones in its heaps)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 2)
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER)


def give_back() -> None:
    """Return freed memory at the top of the heaps to the system (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
