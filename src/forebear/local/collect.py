"""Garbage collection: deleting objects no committed version needs.

Versions deleted longer ago than the grace period are purged first: their entries go, and
they stay in the lineage, marked deleted, never to be restored. Then an object is kept when
a version that is not purged needs it (as a stored file, a manifest or a chunk), when a
live writer's lease holds it (a file held with its chunks), when a client sent it to a
server and no commit named it yet, within a lease period (`db.access.held_by_uploads`), or
when it is younger than the grace period:
a collector must never take what a writer is about to rely on, nor, through a catalog that
is not the location's own (refused before this runs anyway), everything at once.

The catalog's write lock is held while the decision is made and carried out, so no writer
can start relying on an object meanwhile, and no writer can commit after its lease was
taken away. In a store with packs the same decision is made per pack (`packs.collect_packs`):
dead packs are forgotten, sparse ones rewritten, and their files deleted after the commit;
a loose copy of a packed object is garbage like an unneeded one.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

from ..db import access as db_access
from ..db import chunks as db_chunks
from ..db import packs as db_packs
from ..db import retention as db_retention
from ..db import versions as db_versions
from ..db import writers
from ..db.engine import write_session
from ..objects import CHUNK_LISTS
from ..reports import GcReport
from . import packs
from .commit import check_catalog

if TYPE_CHECKING:
    from .backend import LocalBackend

# Temporary files of local writers older than this are leftovers of crashes.
TMP_EXPIRY_SECONDS = 3600.0


def collect(backend: LocalBackend, *, dry_run: bool, grace: dt.timedelta) -> GcReport:
    report = GcReport(grace=grace, dry_run=dry_run)
    cutoff = time.time() - grace.total_seconds()
    objects = backend.objects
    with write_session(backend.engine) as session:
        writers.lock_for_collection(session)
        check_catalog(backend, session)
        expired = db_retention.versions_to_purge(session, writers.now(session) - grace)
        loaded = db_versions.load_versions(session, [v.id for v in expired])
        report.versions = sorted(f"{v.project}/{v.ref}" for v in loaded.values())
        if dry_run:  # what the purge would leave: the same set, computed without it
            keep = db_chunks.all_object_digests(session, purging=[v.id for v in expired])
        else:
            db_retention.mark_purged(session, expired, backend.actor)
            keep = db_chunks.all_object_digests(session)
        held = writers.collect_expired(session, dry_run=dry_run)
        held |= db_access.held_by_uploads(session)
        # a file a writer holds is held whole: a log that finds its chunk list committed
        # relies on its chunks without registering each
        keep |= held | db_chunks.chunks_of_files(session, held)
        garbage: list[str] = []
        # a loose object that is also packed is garbage too: readers look in packs first
        packed = db_packs.all_packed(session) if objects.packs is not None else set()
        loose_keep = keep - packed
        for stored in objects.iter_objects(skip=loose_keep):
            if stored.modified is None or stored.modified > cutoff:
                report.kept_young += 1
                continue
            garbage.append(stored.digest)
            report.bytes += stored.size
        # a chunk list is kept while its file is: by its whole-file digest
        lists = [
            stored.digest
            for stored in objects.iter_objects(CHUNK_LISTS, skip=keep)
            if stored.modified is not None and stored.modified <= cutoff
        ]
        if not dry_run:  # the lock is still held: no writer can rely on these meanwhile
            if garbage or lists:
                db_packs.count_forgetting(session)
            objects.delete_many(garbage)
            objects.delete_chunk_lists(lists)
        report.objects.extend(d for d in garbage if d not in packed)  # those are still there
        report.objects.extend(lists)
        dead_packs = packs.collect_packs(objects, session, keep, cutoff, report, dry_run=dry_run)
    # pack files go once the catalog has forgotten them: readers look objects up again
    packs.delete_packs(objects, dead_packs)
    if not dry_run:
        objects.clean_tmp(TMP_EXPIRY_SECONDS)
    report.objects = sorted(set(report.objects))
    return report
