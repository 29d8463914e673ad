"""Values each process makes for itself: threads, connections and clients that a forked
child (a data loader's worker, a multiprocessing pool's) must not share with its parent;
and a pause of its cyclic garbage collector (`collector_paused`).

Threads do not survive ``fork``, and a connection used by two processes at once mixes their
requests and answers. A `PerProcess` value is made again on first use in any process other
than the one that made it, and only its maker closes it. This module knows nothing of
stores."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")

_pauses = 0  # collector pauses under way in this process
_resume = False  # whether the collector runs again once the last pause ends
_pause_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while the block runs: a log of many
    files. The collector looks at every new container object (a tuple, say) once 700
    more were made, and at every live one now and then; a log makes a few such objects
    a file, and the collector took 18 s of 87 s of a log of a million files here (a
    tenth of a log of 50,000). Reference counting still frees all the log's objects that
    are not in a cycle; the few cycles it makes wait for the collector's next run.
    Pauses may nest and overlap (two threads logging): the collector runs again once the
    last ends, if it ran before the first began."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            # never below none: a child forked inside the block ends it with a count of 0
            _pauses = max(_pauses - 1, 0)
            if _pauses == 0 and _resume:
                gc.enable()


def _collector_back_in_child() -> None:
    """A child forked while this process logged (a data loader's worker started by
    another thread) is not logging: it gets the collector back, and a lock of its own
    (the parent's may have been held by a thread the child does not have)."""
    global _pauses, _pause_lock
    _pause_lock = threading.Lock()
    if _pauses:
        _pauses = 0
        if _resume:
            gc.enable()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_collector_back_in_child)


def thread_pool(workers: int, name: str = "") -> ThreadPoolExecutor:
    """A pool of ``workers`` threads (named ``name``_N when ``name`` is given).
    ``concurrent.futures`` is imported here, when a pool is first needed, and not by every
    module that may use one: with ``logging``, which it imports, it took about 5 ms of the
    start-up of a command that uses none (an unchanged re-log)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(workers, thread_name_prefix=name)


class PerProcess(Generic[T]):
    """``make()``'s value, made on first use by each process that uses it (``value``: one
    already made by this process)."""

    def __init__(self, make: Callable[[], T], value: T | None = None) -> None:
        self._make = make
        self._value = value
        self._maker = os.getpid() if value is not None else 0

    def get(self) -> T:
        if self._value is None or self._maker != os.getpid():
            self._value = self._make()
            self._maker = os.getpid()
        return self._value

    def inherited(self) -> bool:
        """Whether the value was made by another process (before a fork)."""
        return self._value is not None and self._maker != os.getpid()

    def made_here(self) -> T | None:
        """The value, if this process made it: what this process may close. Forgotten
        either way, so that the next `get` makes a new one."""
        value = None if self.inherited() else self._value
        self._value = None
        return value
