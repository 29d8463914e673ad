"""Keeping a server's resident memory flat under glibc: two malloc arenas instead of eight
per core (threads otherwise keep memory they freed), and freed memory handed back to the
system after a burst of large buffers (checked uploads)."""

from __future__ import annotations

import ctypes
import functools
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3
MMAP_FROM = 256 << 10  # buffers from this size get pages of their own, returned when freed


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def fewer_malloc_arenas() -> None:
    """What ``MALLOC_ARENA_MAX=2`` does, for threads started from now on; and buffers of
    256 KiB or more (chunks, bundles, groups of a file upload) mapped on their own, so that
    freeing one gives its memory back at once (glibc would otherwise raise that threshold
    after the first such buffer is freed, and keep the later ones in its heaps)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 2)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_FROM)


def give_back() -> None:
    """Return freed memory at the top of the heaps to the system (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
