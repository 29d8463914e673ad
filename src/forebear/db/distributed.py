"""Distributed versions in the catalog: one row per version in the making, its parts (the
entries each process contributed), and the lease holding their objects.

Nothing here is visible as a version until `finish` commits one; parts are added in the
transaction of each contribution, so a process that dies mid-way contributes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, StoreError
from ..manifest import ManifestEntry
from . import writers
from .schema import Base, DistributedPartRow, DistributedRow, utcnow

PAGE = 5000


def find(session: Session, project: str, name: str, distributed_id: str) -> DistributedRow | None:
    return session.execute(
        select(DistributedRow)
        .where(
            DistributedRow.project == project,
            DistributedRow.name == name,
            DistributedRow.distributed_id == distributed_id,
        )
        .with_for_update()
    ).scalar_one_or_none()


def open_draft(
    session: Session,
    project: str,
    name: str,
    type_: str,
    distributed_id: str,
    writer: str,
    hold: dt.timedelta,
) -> DistributedRow:
    """The unfinished distributed version, made (with its lease) if new; its lease renewed."""
    row = find(session, project, name, distributed_id)
    label = f"{project}/{name} (distributed id {distributed_id!r})"
    if row is None:
        writers.take(session, writer, hold, "distributed", 0)
        row = DistributedRow(
            project=project, name=name, type=type_, distributed_id=distributed_id,
            writer=writer, revision=0, created_at=utcnow(),
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row
    if row.finished_at is not None:
        raise InvalidInput(
            f"{label} was finished already; a new version needs a new distributed id"
        )
    if row.type != type_:
        raise InvalidInput(f"{label} has type {row.type!r}, not {type_!r}")
    if not writers.renew(session, row.writer, hold):
        raise StoreError(
            f"{label} was abandoned (nothing was added for longer than its hold) and gc may "
            "have removed its parts; start again with a new distributed id"
        )
    return row


def add_parts(
    session: Session, row: DistributedRow, entries: Sequence[ManifestEntry], run_id: str
) -> None:
    """Add one process's entries: the same path again must hold the same bytes."""
    existing: dict[str, tuple[str | None, str | None, str]] = {}
    paths = [e.path for e in entries]
    for start in range(0, len(paths), PAGE):
        chunk = paths[start : start + PAGE]
        for path, digest, uri, other in session.execute(
            select(
                DistributedPartRow.path,
                DistributedPartRow.digest,
                DistributedPartRow.uri,
                DistributedPartRow.run_id,
            ).where(DistributedPartRow.distributed == row.id, DistributedPartRow.path.in_(chunk))
        ):
            existing[path] = (digest, uri, other)
    fresh: list[dict[str, Any]] = []
    for entry in entries:
        found = existing.get(entry.path)
        if found is None:
            fresh.append(
                {
                    "distributed": row.id, "path": entry.path, "digest": entry.digest,
                    "size": entry.size, "uri": entry.uri, "etag": entry.etag, "run_id": run_id,
                }
            )  # fmt: skip
        elif found[:2] != (entry.digest, entry.uri):
            raise InvalidInput(
                f"{entry.path!r} is in {row.project}/{row.name} (distributed id "
                f"{row.distributed_id!r}) already with other content, from run {found[2]}; "
                "each path belongs to one process"
            )
    table = Base.metadata.tables[DistributedPartRow.__tablename__]
    for start in range(0, len(fresh), PAGE):
        session.execute(insert(table), fresh[start : start + PAGE])
    row.revision += 1
    session.flush()


def parts(session: Session, row_id: int) -> Iterator[list[ManifestEntry]]:
    """The parts in path order, a page at a time."""
    last = ""
    while True:
        page = list(
            session.execute(
                select(
                    DistributedPartRow.path,
                    DistributedPartRow.digest,
                    DistributedPartRow.size,
                    DistributedPartRow.uri,
                    DistributedPartRow.etag,
                )
                .where(DistributedPartRow.distributed == row_id, DistributedPartRow.path > last)
                .order_by(DistributedPartRow.path)
                .limit(PAGE)
            )
        )
        if not page:
            return
        yield [ManifestEntry(*values) for values in page]
        last = page[-1][0]


def contributors(session: Session, row_id: int) -> list[str]:
    """The runs that contributed, in the order of their first part's path."""
    return sorted(
        set(
            session.execute(
                select(DistributedPartRow.run_id).where(DistributedPartRow.distributed == row_id)
            ).scalars()
        )
    )


def finish(session: Session, row: DistributedRow, version_id: int) -> None:
    """Mark it finished as that version, drop its parts and give its lease up."""
    row.finished_at = utcnow()
    row.version_id = version_id
    session.execute(delete(DistributedPartRow).where(DistributedPartRow.distributed == row.id))
    writers.release(session, row.writer)
    session.flush()
