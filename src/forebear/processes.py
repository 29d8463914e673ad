"""Values each process makes for itself: threads, connections and clients that a forked
child (a data loader's worker, a multiprocessing pool's) must not share with its parent.

Threads do not survive ``fork``, and a connection used by two processes at once mixes their
requests and answers. A `PerProcess` value is made again on first use in any process other
than the one that made it, and only its maker closes it. This module knows nothing of
stores."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")


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
