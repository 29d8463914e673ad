"""The pack index (storage format 3): which pack holds each packed object, at what offset
and length. Rows are added only once a pack is written whole, so the index never names
bytes that are not there; gc forgets a pack's rows before it deletes the pack."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from typing import NamedTuple

from sqlalchemy import Integer, Text, and_, cast, delete, exists, select, update
from sqlalchemy.orm import Session

from . import bulk
from .bulk import insert_ignoring_duplicates
from .schema import (
    ChunkListRow,
    ChunkMemberRow,
    EntryRow,
    PackedObjectRow,
    PackRow,
    StoreInfoRow,
    utcnow,
)

# How many times forebear removed stored objects or forgot packed ones (a `StoreInfoRow`):
# while it has not moved, a version found whole is still whole (see `forget_count`).
FORGET_COUNT = "objects_forgotten"


class PackUsage(NamedTuple):
    """One pack as gc weighs it: its objects, and which of them something still needs."""

    digest: str
    size: int
    created_at: dt.datetime
    slots: dict[str, tuple[int, int]]
    live: set[str]

    @property
    def live_bytes(self) -> int:
        return sum(self.slots[d][1] for d in self.live)


def record_pack(
    session: Session, pack: str, size: int, slots: Mapping[str, tuple[int, int]]
) -> None:
    """Remember a pack and its objects (a pack written twice is remembered once)."""
    record_packs(session, [(pack, size, slots)])


def record_packs(
    session: Session, packs: Iterable[tuple[str, int, Mapping[str, tuple[int, int]]]]
) -> None:
    """`record_pack` for several (pack, size, slots) at once. Their objects go in in digest
    order, all packs' together: digests are random, and in order each lands beside the one
    before in the index's B-tree. Measured on SQLite, 50,000 objects of eight packs: 0.28-0.35 s
    one pack after the other, 0.26-0.28 s together in order (and now, on SQLite, 0.20 s from
    JSON: `_record_slots_from_json`)."""
    packs = list(packs)
    insert_ignoring_duplicates(  # each its own moment, in order: the newest pack wins
        session,
        PackRow,
        [{"digest": pack, "size": size, "created_at": utcnow()} for pack, size, _ in packs],
    )
    if session.get_bind().dialect.name == "sqlite":
        _record_slots_from_json(session, packs)
        return
    bulk.insert_values(
        session,
        PackedObjectRow.__table__,  # type: ignore[arg-type]
        ("digest", "pack", "offset", "length"),
        sorted(
            (digest, pack, offset, length)
            for pack, _, slots in packs
            for digest, (offset, length) in slots.items()
        ),
        ignore_duplicates=True,
    )


# Objects given to SQLite in one statement, about (a statement takes whole packs): the JSON
# and SQLite's sorter hold them all at once. Measured: 50,000 raised the peak of a first
# log of a million files of 1 KiB from 255 to 274 MiB, 16,384 kept it at 262 MiB, and the
# pack index of 50,000 objects took 0.20-0.26 s either way.
_SLOTS_A_STATEMENT = 16_384
_SLOTS_FROM_JSON = (
    'INSERT INTO packed_objects (digest, pack, "offset", length) '
    "SELECT slot.key, pack.key, json_extract(slot.value, '$[0]'), "
    "json_extract(slot.value, '$[1]') "
    "FROM json_each(?) AS pack, json_each(pack.value) AS slot WHERE true ORDER BY slot.key "
    "ON CONFLICT DO NOTHING"
)


def _record_slots_from_json(
    session: Session, packs: Sequence[tuple[str, int, Mapping[str, tuple[int, int]]]]
) -> None:
    """The packs' slots on SQLite, as `record_packs` wants them: the slots of many packs as
    one JSON object ({pack: {digest: [offset, length]}}, which is how they are held
    already) and SQLite puts them in digest order. Measured, 50,000 objects of twelve
    packs: 0.20 s, against 0.24-0.30 s making, sorting and binding a row for each."""
    connection = session.connection()
    group: dict[str, Mapping[str, tuple[int, int]]] = {}
    count = 0
    with bulk.large_cache(session):
        for pack, _, slots in packs:
            group[pack] = slots
            count += len(slots)
            if count >= _SLOTS_A_STATEMENT:
                connection.exec_driver_sql(_SLOTS_FROM_JSON, (json.dumps(group),))
                group, count = {}, 0
        if group:
            connection.exec_driver_sql(_SLOTS_FROM_JSON, (json.dumps(group),))


def locate(session: Session, digests: Collection[str]) -> dict[str, tuple[str, int, int]]:
    """(pack, offset, length) of each of ``digests`` that is packed; of an object in
    several packs, the newest (a repair stores damaged objects again, in a new pack)."""
    if not digests:
        return {}
    query = (
        select(
            PackedObjectRow.digest,
            PackedObjectRow.pack,
            PackedObjectRow.offset,
            PackedObjectRow.length,
        )
        .join(PackRow, PackRow.digest == PackedObjectRow.pack)
        .where(PackedObjectRow.digest.in_(bulk.string_list(session)))
        .order_by(PackRow.created_at, PackRow.digest)  # the newest last: it wins
    )
    found: dict[str, tuple[str, int, int]] = {}
    for digest, pack, offset, length in bulk.rows_for_strings(session, query, digests):
        found[digest] = (pack, offset, length)
    return found


def slots_in(session: Session, pack: str) -> dict[str, tuple[int, int]]:
    """Each object the index says ``pack`` holds: digest -> (offset, length)."""
    rows = session.execute(
        select(PackedObjectRow.digest, PackedObjectRow.offset, PackedObjectRow.length).where(
            PackedObjectRow.pack == pack
        )
    )
    return {digest: (offset, length) for digest, offset, length in rows}


def unpacked_files(
    session: Session, version_id: int, after: str | None, limit: int
) -> list[tuple[str, str, int]]:
    """(path, digest, size) of the version's next ``limit`` stored files in path order
    (after path ``after``) that packs do not hold whole: loose objects, and files stored
    in chunks of which at least one is not packed. A file packed whole counts when a pack
    holds its digest with its size; a chunked file when it has a chunk list and no chunk
    of it (`ChunkMemberRow`, complete for every chunk list) is missing from the index.
    One statement a page, so a version held by packs costs one statement and no row,
    however many files and chunks it has."""
    packed_whole = exists().where(
        PackedObjectRow.digest == EntryRow.digest, PackedObjectRow.length == EntryRow.size
    )
    chunk_unpacked = exists().where(
        ChunkMemberRow.file == EntryRow.digest,
        ~exists().where(PackedObjectRow.digest == ChunkMemberRow.chunk),
    )
    packed_in_chunks = and_(exists().where(ChunkListRow.digest == EntryRow.digest), ~chunk_unpacked)
    query = select(EntryRow.path, EntryRow.digest, EntryRow.size).where(
        EntryRow.version_id == version_id,
        EntryRow.uri.is_(None),
        EntryRow.digest.is_not(None),
        ~packed_whole,
        ~packed_in_chunks,
    )
    if after is not None:
        query = query.where(EntryRow.path > after)
    rows = session.connection().execute(query.order_by(EntryRow.path).limit(limit))
    return [(path, str(digest), size) for path, digest, size in rows]


def all_packed(session: Session) -> set[str]:
    """Every packed object's digest."""
    rows = session.connection().execute(select(PackedObjectRow.digest))
    return {digest for (digest,) in rows}


def usage(session: Session, needed: Collection[str]) -> Iterator[PackUsage]:
    """Every recorded pack with its objects, those in ``needed`` marked live."""
    packs = {row.digest: row for row in session.scalars(select(PackRow))}
    rows = session.connection().execute(
        select(
            PackedObjectRow.pack,
            PackedObjectRow.digest,
            PackedObjectRow.offset,
            PackedObjectRow.length,
        ).order_by(PackedObjectRow.pack)
    )
    seen: set[str] = set()
    for pack, members in groupby(rows, key=lambda row: row[0]):
        slots = {digest: (offset, length) for _, digest, offset, length in members}
        seen.add(pack)
        row = packs.get(pack)
        if row is not None:
            live = {digest for digest in slots if digest in needed}
            yield PackUsage(pack, row.size, row.created_at, slots, live)
    for pack, row in packs.items():  # a pack whose objects were all forgotten
        if pack not in seen:
            yield PackUsage(pack, row.size, row.created_at, {}, set())


def forget_count(session: Session) -> int | None:
    """How many times objects were forgotten or removed, by gc, repacking, purges and
    rebuilding the index: a version that held every object it needs when the count was N
    still holds them while it is N (forebear itself removes nothing else). None: never
    counted in this store (`start_counting` first)."""
    row = session.get(StoreInfoRow, FORGET_COUNT)
    return int(row.value) if row is not None and row.value.isdigit() else None


def start_counting(session: Session) -> None:
    insert_ignoring_duplicates(session, StoreInfoRow, [{"key": FORGET_COUNT, "value": "0"}])


def count_forgetting(session: Session) -> None:
    """One more forgetting, in the transaction that forgets (an atomic increment: two at
    once both count)."""
    start_counting(session)
    session.execute(
        update(StoreInfoRow)
        .where(StoreInfoRow.key == FORGET_COUNT)
        .values(value=cast(cast(StoreInfoRow.value, Integer) + 1, Text))
    )


def forget(session: Session, packs: Iterable[str]) -> None:
    """Drop packs and their objects from the index (before the files are deleted)."""
    forgotten = sorted(set(packs))
    if forgotten:
        count_forgetting(session)
    for batch in _batches(forgotten):
        session.execute(delete(PackedObjectRow).where(PackedObjectRow.pack.in_(batch)))
        session.execute(delete(PackRow).where(PackRow.digest.in_(batch)))


def recorded(session: Session) -> set[str]:
    """Every pack the index knows."""
    return set(session.execute(select(PackRow.digest)).scalars())


def _batches(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def holding(session: Session, digests: Collection[str]) -> list[PackUsage]:
    """Every pack holding any of ``digests``, with all its objects (none marked live)."""
    query = select(PackedObjectRow.pack).where(
        PackedObjectRow.digest.in_(bulk.string_list(session))
    )
    names = {pack for (pack,) in bulk.rows_for_strings(session, query, digests)}
    found = []
    for pack in sorted(names):
        row = session.get(PackRow, pack)
        rows = session.execute(
            select(PackedObjectRow.digest, PackedObjectRow.offset, PackedObjectRow.length).where(
                PackedObjectRow.pack == pack
            )
        )
        slots = {digest: (offset, length) for digest, offset, length in rows}
        if row is not None:
            found.append(PackUsage(pack, row.size, row.created_at, slots, set()))
    return found
