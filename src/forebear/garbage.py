"""Garbage collection: deleting objects no committed version needs.

An object is kept when a committed version needs it (as a stored file, a manifest or a
chunk), when a live writer's lease holds it, or when it is younger than the grace period:
a collector must never take what a writer is about to rely on, nor, through a catalog that
is not the location's own (refused before this runs anyway), everything at once.

The catalog's write lock is held while the decision is made and carried out, so no writer
can start relying on an object meanwhile, and no writer can commit after its lease was
taken away.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .db import catalog, writers
from .db.engine import write_session
from .units import describe_duration

if TYPE_CHECKING:
    from .store import Store

DEFAULT_GRACE = dt.timedelta(days=7)
# Temporary files of local writers older than this are leftovers of crashes.
TMP_EXPIRY_SECONDS = 3600.0


@dataclass
class GcReport:
    """What gc removed (or, on a dry run, would remove). Iterating it yields the digests of
    the objects removed."""

    objects: list[str] = field(default_factory=list)
    bytes: int = 0
    versions: list[str] = field(default_factory=list)
    grace: dt.timedelta = DEFAULT_GRACE
    kept_young: int = 0  # unreferenced objects kept because they are younger than grace
    dry_run: bool = False

    def __iter__(self) -> Iterator[str]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def __contains__(self, digest: object) -> bool:
        return digest in self.objects

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "objects": self.objects,
            "bytes": self.bytes,
            "versions": self.versions,
            "grace_seconds": self.grace.total_seconds(),
            "kept_young": self.kept_young,
        }

    def describe(self) -> str:
        from .units import human_size

        verb = "would remove" if self.dry_run else "removed"
        text = f"{verb} {len(self.objects)} unreferenced objects ({human_size(self.bytes)})"
        if self.kept_young:
            text += (
                f"; kept {self.kept_young} younger than {describe_duration(self.grace)} "
                "(the grace period)"
            )
        return text


def collect(store: Store, *, dry_run: bool, grace: dt.timedelta) -> GcReport:
    from .commit import check_catalog

    report = GcReport(grace=grace, dry_run=dry_run)
    cutoff = time.time() - grace.total_seconds()
    objects = store.objects
    with write_session(store.engine) as session:
        writers.lock_for_collection(session)
        check_catalog(store, session)
        keep = catalog.all_object_digests(session)
        keep |= writers.collect_expired(session, dry_run=dry_run)
        garbage: list[str] = []
        for stored in objects.iter_objects():
            if stored.digest in keep:
                continue
            if stored.modified is None or stored.modified > cutoff:
                report.kept_young += 1
                continue
            garbage.append(stored.digest)
            report.bytes += stored.size
        # a chunk list is kept while its file is: by its whole-file digest
        lists = [
            stored.digest
            for stored in objects.iter_objects("chunklists")
            if stored.digest not in keep
            and stored.modified is not None
            and stored.modified <= cutoff
        ]
        if not dry_run:
            for digest in garbage:
                objects.delete(digest)
            for digest in lists:
                objects.delete_chunk_list(digest)
    if not dry_run:
        objects.clean_tmp(TMP_EXPIRY_SECONDS)
    report.objects = sorted({*garbage, *lists})
    return report
