"""Packs in a store: the catalog as the pack index, `forebear upgrade` to format 3,
`forebear rebuild-index` from the index copies beside the packs, and what gc does with
packs (delete the dead, repack the sparse).

gc decides with the catalog's write lock held, as it does for loose objects, so no writer
can start relying on an object of a pack it is about to delete. A pack is rewritten as a
new pack (its live objects, each checked), recorded, and only then forgotten and deleted:
a reader that looked up the old slot finds the pack gone and looks the object up again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import partial

from ..chunking import DEFAULT_CHUNKING, PACKED_CHUNKING, Chunking
from ..db import packs as db_packs
from ..db.engine import Engine, Session, read_session, write_session
from ..errors import StoreError
from ..hashing import hash_bytes
from ..objects import PACKED_FORMAT, ObjectLocation
from ..objects.listing import StoredObject
from ..objects.packs import (
    INDEX_SUFFIX,
    PackIndex,
    Packs,
    PackSlot,
    WrittenPack,
    possible_slot,
)
from ..reports import GcReport

REPACK_BELOW = 0.5  # a pack is rewritten once less than this fraction of its bytes is live
STRAY_SECONDS = 3600.0  # a pack file the index does not know is a crashed writer's after this


class CatalogPackIndex(PackIndex):
    """The pack index in the store's catalog."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def locate(self, digests: Collection[str]) -> dict[str, PackSlot]:
        with read_session(self.engine) as session:
            found = db_packs.locate(session, digests)
        return {digest: PackSlot(*where) for digest, where in found.items()}

    def record(self, pack: str, size: int, slots: Mapping[str, tuple[int, int]]) -> None:
        with write_session(self.engine) as session:
            db_packs.record_pack(session, pack, size, slots)

    def record_many(self, packs: Sequence[WrittenPack]) -> None:
        with write_session(self.engine) as session:
            db_packs.record_packs(session, [(p.digest, p.size, p.slots) for p in packs])


class LocalPacks:
    """What a local backend does with packs (a mixin of `LocalBackend`)."""

    objects: ObjectLocation
    engine: Engine
    chunking: Chunking
    require_writable: Callable[[], None]

    def attach_packs(self) -> None:
        """Keep small objects in packs if the location is in format 3 (and, unless other
        settings were chosen, cut files into the smaller chunks packs make cheap)."""
        if self.objects.format_version >= PACKED_FORMAT and self.objects.packs is None:
            self.objects.attach_packs(CatalogPackIndex(self.engine))
            if self.chunking is DEFAULT_CHUNKING:
                self.chunking = PACKED_CHUNKING
        elif self.objects.format_version < PACKED_FORMAT:  # until another process upgrades
            self.objects.on_packed = self.attach_packs

    def upgrade(self) -> tuple[int, int]:
        """Mark the store as format 3 (packs): (format before, format now). Loose objects
        stay where they are and are read as before; what is stored from now on goes into
        packs."""
        self.require_writable()
        before = self.objects.format_version
        self.objects.upgrade_format(PACKED_FORMAT)
        self.attach_packs()
        return before, self.objects.format_version

    def rebuild_index(self) -> tuple[int, int]:
        """Replace the catalog's pack index with what the packs hold: (packs, objects)
        indexed. Each pack's objects are those its index copy lists and those the catalog
        listed in it, so a copy damaged, cut short or lying loses nothing the catalog knew;
        each is kept only if its bytes in the pack hash to its name (writers rely on
        indexed objects unread). A pack whose copy missed some of them gets a new copy. A
        pack neither describes is left out (gc deletes it once it is old). Writers may
        work meanwhile: what they record while the packs are read is kept."""
        self.require_writable()
        packs = self.objects.packs
        if packs is None:
            raise StoreError(
                f"the store at {self.objects.url!r} has no packs (format "
                f"{self.objects.format_version}); 'forebear upgrade' makes it format 3"
            )
        found: dict[str, tuple[int, dict[str, tuple[int, int]]]] = {}
        examined: set[str] = set()
        unknown: set[str] = set()  # examined, but neither its copy nor the catalog knew it
        for stored in self.objects.iter_packs():
            examined.add(stored.digest)
            try:
                _size, listed = packs.read_index(stored.digest)
            except StoreError:  # unreadable, or not a pack's index: the catalog may know
                listed = {}
            with read_session(self.engine) as session:
                recorded = db_packs.slots_in(session, stored.digest)
            held = _whole(packs, stored, listed)
            held.update(_whole(packs, stored, {d: s for d, s in recorded.items() if d not in held}))
            if not held:
                if not recorded:  # its writer may not have written its copy yet
                    unknown.add(stored.digest)
                continue
            found[stored.digest] = (stored.size, held)
            if any(listed.get(digest) != slot for digest, slot in held.items()):
                packs.write_index(stored.digest, stored.size, held)
        with write_session(self.engine) as session:
            # a pack a writer recorded since it was read (or listed) is left as it is:
            # its writer may be about to commit a version that needs it
            now = db_packs.recorded(session)
            since = now - examined
            if since:
                since &= {stored.digest for stored in self.objects.iter_packs()}
            db_packs.forget(session, now - since - unknown)
            for pack, (size, slots) in found.items():
                db_packs.record_pack(session, pack, size, slots)
        packs.known.clear()
        return len(found), sum(len(slots) for _, slots in found.values())


def _whole(
    packs: Packs, pack: StoredObject, slots: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """Those of ``slots`` (in ``pack``) whose bytes there hash to their digest; a slot
    reaching past the pack's end (a copy or a row that lies) is not even read."""
    places = {
        digest: PackSlot(pack.digest, offset, length)
        for digest, (offset, length) in slots.items()
        if possible_slot(offset, length, pack.size)
    }
    return {
        digest: slots[digest]
        for digest, data in packs.read_many(places)
        if data is not None and hash_bytes(data) == digest
    }


def collect_packs(
    objects: ObjectLocation,
    session: Session,
    keep: set[str],
    cutoff: float,
    report: GcReport,
    *,
    dry_run: bool,
) -> list[str]:
    """Within gc, with the write lock held: forget packs none of whose objects is needed,
    and rewrite those mostly dead (both once older than the grace period); find pack
    files the index does not know, left by a writer killed before it recorded them (once
    older than an hour: a writer records its packs before its commit). Returns the
    pack files to delete once the catalog has committed forgetting them."""
    packs = objects.packs
    if packs is None:
        return []
    known = set()
    dead: list[str] = []
    sparse: list[db_packs.PackUsage] = []
    for pack in db_packs.usage(session, keep):
        known.add(pack.digest)
        if pack.created_at.timestamp() > cutoff:  # its unneeded objects: kept, and said so
            report.kept_young += len(pack.slots.keys() - pack.live)
            continue
        if not pack.live:
            dead.append(pack.digest)
        elif pack.live_bytes < REPACK_BELOW * pack.size:
            sparse.append(pack)
        else:
            continue
        gone = set(pack.slots) - pack.live
        report.objects.extend(sorted(gone))
        report.bytes += pack.size - pack.live_bytes
    stray_cutoff = min(cutoff, time.time() - STRAY_SECONDS)
    strays = [
        stored.digest
        for stored in objects.iter_packs()
        if stored.digest not in known
        and stored.modified is not None
        and stored.modified <= stray_cutoff
    ]
    rewritten = [pack.digest for pack in sparse]
    report.packs = sorted(dead + strays + rewritten)
    report.repacked = sorted(rewritten)
    if dry_run:
        return []
    for pack in sparse:
        _rewrite(objects, session, pack)
    db_packs.forget(session, dead + rewritten)
    return dead + strays + rewritten


def purge_packed(objects: ObjectLocation, session: Session, digests: Collection[str]) -> list[str]:
    """Within a purge, with the write lock held: rewrite every pack that holds any of
    ``digests`` without them. Returns the old packs, to delete once the catalog has
    committed forgetting them."""
    if objects.packs is None:
        return []
    old = db_packs.holding(session, digests)
    purged = set(digests)
    for pack in old:
        kept = set(pack.slots) - purged
        if kept:
            _rewrite(objects, session, pack._replace(live=kept))
    db_packs.forget(session, [pack.digest for pack in old])
    return [pack.digest for pack in old]


def _rewrite(objects: ObjectLocation, session: Session, pack: db_packs.PackUsage) -> None:
    """Copy a pack's live objects, each checked, into a new pack, recorded in the index."""
    packs = objects.packs
    assert packs is not None
    slots = {d: PackSlot(pack.digest, *pack.slots[d]) for d in pack.live}
    writer = packs.new_writer()
    try:
        for digest, data in packs.read_many(slots):
            if data is None or hash_bytes(data) != digest:
                raise StoreError(
                    f"pack {pack.digest} holds corrupted bytes for object {digest}; run "
                    "'forebear verify' and 'forebear repair' before gc repacks it"
                )
            writer.add(digest, data, f"pack {pack.digest}")
        packs.publish(writer.seal(), partial(db_packs.record_pack, session))
    finally:
        writer.discard()


def delete_packs(objects: ObjectLocation, digests: Iterable[str]) -> None:
    """Delete pack files and their index copies (already forgotten by the catalog)."""
    packs = objects.packs
    if packs is None:
        return
    paths = [packs.path(d, suffix) for d in digests for suffix in ("", INDEX_SUFFIX)]
    if paths:
        objects.remove_files(paths)
    packs.known.clear()
