"""Drafts: versions made from another one by a few changes. Their unchanged entries are
looked up and copied inside the catalog, so a change to one file of a million costs about
as much as that file."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from ..manifest import EntryFields, ManifestEntry, checked_entry, checked_rows
from . import bulk
from .schema import EntryRow, RedactionRow, VersionRow

_BATCH = 500  # paths per IN (...) list


class EntryCopy(NamedTuple):
    """The entries of version ``base_id`` a new version keeps: all but the ``dropped``
    paths, the entries under the ``dropped_folders`` (``a/``), and the ``redacted`` ones
    (whose bytes were purged)."""

    base_id: int
    dropped: frozenset[str]
    dropped_folders: frozenset[str]
    redacted: frozenset[str]


def entries_at(session: Session, version_id: int, paths: Sequence[str]) -> dict[str, ManifestEntry]:
    """The entries of a version at these paths (those it has)."""
    found: dict[str, ManifestEntry] = {}
    for start in range(0, len(paths), _BATCH):
        rows = session.execute(
            select(EntryRow.path, EntryRow.digest, EntryRow.size, EntryRow.uri, EntryRow.etag)
            .where(EntryRow.version_id == version_id)
            .where(EntryRow.path.in_(paths[start : start + _BATCH]))
        ).all()
        found.update((row[0], checked_entry(*row)) for row in rows)
    return found


def entry_rows_after(
    session: Session, version_id: int, after: str | None, limit: int = 20_000
) -> list[EntryFields]:
    """One page of a version's entries as checked rows, in path order, after ``after``."""
    query = select(
        EntryRow.path, EntryRow.digest, EntryRow.size, EntryRow.uri, EntryRow.etag
    ).where(EntryRow.version_id == version_id)
    if after is not None:
        query = query.where(EntryRow.path > after)
    rows = session.connection().execute(query.order_by(EntryRow.path).limit(limit)).all()
    return checked_rows([tuple(row) for row in rows])  # type: ignore[misc]


def entry_count(session: Session, version_id: int, folder: str = "") -> int:
    """How many entries a version has (under ``folder``, which ends in ``/``)."""
    query = select(func.count()).select_from(EntryRow).where(EntryRow.version_id == version_id)
    if folder:
        query = query.where(_under(folder))
    return int(session.execute(query).scalar_one())


def copy_entries(session: Session, copy: EntryCopy, version_id: int) -> None:
    """Give version ``version_id`` the entries of ``copy.base_id`` it keeps, in one
    statement inside the catalog (plus one per batch of paths it drops)."""
    columns = (EntryRow.path, EntryRow.digest, EntryRow.size, EntryRow.uri, EntryRow.etag)
    with bulk.large_cache(session):  # the digest index takes the rows in random order
        session.execute(
            insert(EntryRow).from_select(
                ["version_id", "path", "digest", "size", "uri", "etag"],
                select(literal(version_id), *columns).where(EntryRow.version_id == copy.base_id),
            )
        )
    for folder in copy.dropped_folders:
        session.execute(delete(EntryRow).where(EntryRow.version_id == version_id, _under(folder)))
    for paths in _batches(sorted(copy.dropped | copy.redacted)):
        session.execute(
            delete(EntryRow).where(EntryRow.version_id == version_id, EntryRow.path.in_(paths))
        )


def base_state(session: Session, version_id: int) -> str:
    """``live``, ``deleted`` (it can be restored) or ``purged`` (its bytes may be gone)."""
    found = session.execute(
        select(VersionRow.deleted_at, VersionRow.purged_at).where(VersionRow.id == version_id)
    ).first()
    if found is None or found[1] is not None:
        return "purged"
    return "live" if found[0] is None else "deleted"


def redacted_paths(session: Session, version_id: int) -> frozenset[str]:
    """The paths of a version whose bytes were purged."""
    return frozenset(
        session.execute(
            select(RedactionRow.path).where(RedactionRow.version_id == version_id)
        ).scalars()
    )


def _under(folder: str) -> ColumnElement[bool]:
    """Paths under ``folder`` (``a/``) as a range of the path index: ``a/`` <= path <
    ``a0`` (``0`` follows ``/``)."""
    return and_(EntryRow.path >= folder, EntryRow.path < folder[:-1] + "0")


def _batches(paths: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
