"""Writers' holds on objects they are storing: a lease per writer, renewed while it works,
and the digests it registered under it (`pending_batches`, a row per registration).

gc keeps the objects of every lease that has not expired, by the database's clock, never
by asking whether a process id is alive (a process in another PID namespace, container or
host cannot be asked). A writer whose lease gc took away may not commit: its objects may
be gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .schema import LeaseRow, PendingBatchRow, PendingObjectRow, utcnow

# Digests per registration row: a million-file log's registration stays in rows of a
# few MB.
_PER_ROW = 100_000
# Pending rows from before leases existed have none; they count as live this long.
LEGACY_PENDING = dt.timedelta(hours=24)


def now(session: Session) -> dt.datetime:
    """The database's clock (PostgreSQL's, shared by every host; SQLite's host is this
    one), so writers and collectors on different machines agree on what has expired."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(select(func.now())).scalar_one()
        assert isinstance(value, dt.datetime)
        return value.astimezone(dt.timezone.utc)
    return utcnow()


def take(session: Session, writer: str, duration: dt.timedelta, host: str, pid: int) -> None:
    start = now(session)
    session.add(
        LeaseRow(writer=writer, expires_at=start + duration, host=host, pid=pid, created_at=start)
    )
    session.flush()


def renew(session: Session, writer: str, duration: dt.timedelta) -> bool:
    """Push the lease's expiry out; False when it is gone (gc took it)."""
    done = session.execute(
        update(LeaseRow).where(LeaseRow.writer == writer).values(expires_at=now(session) + duration)
    )
    return bool(getattr(done, "rowcount", 0))


def holds(session: Session, writer: str) -> bool:
    """Whether the writer still holds its lease, locking it until the transaction ends so
    gc cannot take it meanwhile (a commit asks this first)."""
    found = session.execute(
        select(LeaseRow.writer).where(LeaseRow.writer == writer).with_for_update()
    ).first()
    return found is not None


def register(session: Session, writer: str, digests: Iterable[str]) -> None:
    """Hold ``digests`` under the writer's lease (a row per `_PER_ROW` of them), each once,
    in the caller's order (sorting them helped only a row per object find its place in the
    index; for a joined row it cost three times the rest)."""
    unique = list(dict.fromkeys(digests))
    stamp = utcnow()
    for start in range(0, len(unique), _PER_ROW):
        joined = "\n".join(unique[start : start + _PER_ROW])
        session.add(PendingBatchRow(writer=writer, digests=joined, created_at=stamp))
    session.flush()


def release(session: Session, writer: str) -> None:
    # the lease first, as every writer's transaction touches it before its registrations
    # (see `lock_for_collection`)
    session.execute(delete(LeaseRow).where(LeaseRow.writer == writer))
    session.execute(delete(PendingBatchRow).where(PendingBatchRow.writer == writer))
    session.execute(delete(PendingObjectRow).where(PendingObjectRow.writer == writer))


def lock_for_collection(session: Session) -> None:
    """Hold off new registrations and commits while gc decides what is garbage (SQLite's
    write transaction does so already). The leases first: a writer locks its lease row
    before it registers objects or releases them, so gc waits for such a writer holding
    nothing it needs (locked the other way round, each waited for the other until
    PostgreSQL broke the deadlock by failing one of them)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("LOCK TABLE leases IN EXCLUSIVE MODE"))
        session.execute(text("LOCK TABLE pending_batches IN EXCLUSIVE MODE"))
        session.execute(text("LOCK TABLE pending_objects IN EXCLUSIVE MODE"))


def collect_expired(session: Session, *, dry_run: bool) -> set[str]:
    """The digests held by live leases; expired leases and their registrations are
    removed (unless ``dry_run``)."""
    current = now(session)
    live = set(
        session.execute(select(LeaseRow.writer).where(LeaseRow.expires_at > current)).scalars()
    )
    leased = set(session.execute(select(LeaseRow.writer)).scalars())
    keep: set[str] = set()
    dead: set[str] = set()
    legacy_cutoff = current - LEGACY_PENDING
    for writer, joined in session.execute(select(PendingBatchRow.writer, PendingBatchRow.digests)):
        if writer in live:
            keep.update(joined.split("\n"))
        elif writer not in leased:  # left without its lease (registered under one)
            dead.add(writer)
    for writer, digest, created in session.execute(
        select(PendingObjectRow.writer, PendingObjectRow.digest, PendingObjectRow.created_at)
    ):
        alive = writer in live if writer in leased else created > legacy_cutoff
        if alive:
            keep.add(digest)
        else:
            dead.add(writer)
    if not dry_run:
        expired = (leased - live) | dead
        for writer in sorted(expired):
            release(session, writer)
    return keep
