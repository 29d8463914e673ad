"""Which store a catalog belongs to: the store id it shares with the object location's
format file, and the facts needed to tell whether an unbound pair belongs together."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .bulk import insert_ignoring_duplicates
from .schema import StoreInfoRow, VersionRow

STORE_ID = "store_id"


def store_id(session: Session) -> str | None:
    row = session.get(StoreInfoRow, STORE_ID)
    return row.value if row is not None else None


def record_store_id(session: Session, value: str) -> str:
    """Record the store id unless one is recorded already; the one that stays."""
    insert_ignoring_duplicates(session, StoreInfoRow, [{"key": STORE_ID, "value": value}])
    found = store_id(session)
    assert found is not None
    return found


def newest_manifests(session: Session, count: int = 3) -> list[str]:
    """The manifest digests of the newest versions: objects the store's location must hold."""
    return list(
        session.execute(
            select(VersionRow.digest).order_by(VersionRow.id.desc()).limit(count)
        ).scalars()
    )
