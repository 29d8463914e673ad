"""A writer's lease on the objects it stores before its commit makes them reachable.

The lease is taken before any object is registered, renewed in the background while the
writer works, and checked (and locked) in the transaction that commits: gc collects only
the registrations of expired leases, so a writer that gc may have robbed (one paused, or
cut off from the catalog, for longer than its lease) never commits a version whose objects
could be missing.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterable
from types import TracebackType

from .. import settings as config
from ..db import writers
from ..db.engine import Engine, Session, write_session
from ..errors import StoreError
from ..heartbeat import Heartbeat


class LeaseLost(StoreError):
    """A writer's lease expired and gc took it: its objects may be gone."""


class Lease:
    """Use as a context manager around storing objects; `release` inside the committing
    transaction (after `check`), or leave the block to give the objects up."""

    def __init__(self, engine: Engine, duration: dt.timedelta | None = None) -> None:
        self.engine = engine
        self.duration = duration or config.lease_duration()
        self.writer = uuid.uuid4().hex
        self._beat: Heartbeat | None = None
        self._released = False

    def __enter__(self) -> Lease:
        with write_session(self.engine) as session:
            writers.take(session, self.writer, self.duration, config.host_name(), os.getpid())
        self._beat = Heartbeat(
            self.duration.total_seconds() / 4, self._renew, f"forebear-lease-{self.writer[:8]}"
        )
        return self

    def _renew(self) -> bool:
        with write_session(self.engine) as session:
            return writers.renew(session, self.writer, self.duration)

    def register(self, digests: Iterable[str]) -> None:
        """Hold these objects from gc until the commit (or until the lease expires)."""
        wanted = list(digests)
        if not wanted:
            return
        with write_session(self.engine) as session:
            self.check(session)
            writers.register(session, self.writer, wanted)

    def check(self, session: Session) -> None:
        """Fail unless the lease is still held, locking it for the rest of ``session``'s
        transaction (call it first in the committing transaction)."""
        if not writers.holds(session, self.writer):
            raise LeaseLost(
                "this writer's lease on the objects it stored expired (it was paused, or cut "
                "off from the catalog, for longer than "
                f"{self.duration.total_seconds():.0f} s) and gc may have removed some of "
                "them; nothing was committed: run it again"
            )

    def release(self, session: Session) -> None:
        """Give up the lease and its registrations in ``session``'s transaction."""
        writers.release(session, self.writer)
        self._released = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._beat is not None:
            self._beat.stop()
        if not self._released:
            try:
                with write_session(self.engine) as session:
                    writers.release(session, self.writer)
            except Exception:  # gc removes an expired lease anyway
                if kind is None:
                    raise
