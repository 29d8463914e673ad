"""Deleting, restoring, pruning and purging in a local backend: the catalog changes (in
`db.lifecycle` and `db.purges`) and, for a purge, the bytes that leave the object location
and every local cache at once.

A purge holds the same lock as gc while it decides and removes, and refuses bytes a live
writer is storing: no writer can start relying on an object that is being removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..db import lifecycle as db_lifecycle
from ..db import packs as db_packs
from ..db import purges as db_purges
from ..db import retention as db_retention
from ..db import versions as db_versions
from ..db import writers
from ..db.engine import read_session, write_session
from ..errors import InvalidInput, StoreError
from ..reports import PruneReport, PurgeReport
from . import packs
from .commit import check_catalog

if TYPE_CHECKING:
    from .backend import LocalBackend


def prune(backend: LocalBackend, *, dry_run: bool) -> PruneReport:
    """Soft-delete the versions TTL and retention policies say have expired."""
    report = PruneReport(dry_run=dry_run)
    with write_session(backend.engine) as session:
        candidates = db_retention.prune_candidates(session, writers.now(session))
        ids = [version.id for version, _rule in candidates]
        loaded = db_versions.load_versions(session, ids)
        report.bytes = db_retention.unique_bytes(session, ids)
        for version, rule in candidates:
            data = loaded[version.id]
            report.versions.append(f"{data.project}/{data.ref}")
            report.rules[f"{data.project}/{data.ref}"] = rule
            report.size += data.size
        if dry_run:
            session.rollback()
        else:
            reasons = {version.id: rule for version, rule in candidates}
            db_lifecycle.delete_many(session, [v for v, _ in candidates], backend.actor, reasons)
    return report


def purge(backend: LocalBackend, digest: str, reason: str) -> PurgeReport:
    """Remove these bytes from the object location and the local caches now; every entry
    that held them stays listed, redacted."""
    if not reason or not reason.strip():
        raise InvalidInput("a purge needs a reason (it is kept in the audit trail)")
    objects = backend.objects
    with write_session(backend.engine) as session:
        writers.lock_for_collection(session)
        check_catalog(backend, session)
        held = db_purges.holders(session, digest)
        if not held:
            if db_purges.is_purged(session, digest):
                raise InvalidInput(f"the bytes {digest} were purged already")
            raise InvalidInput(
                f"no version holds the bytes {digest}; check the digest or path "
                "('forebear which PATH')"
            )
        chunks = db_purges.chunks_only_of(session, digest)
        pending = writers.collect_expired(session, dry_run=True)
        busy = pending & {digest, *chunks}
        if busy:
            raise StoreError(
                f"a writer is storing the bytes {digest} right now; run the purge again once "
                "it has finished"
            )
        db_purges.purge(session, digest, reason.strip(), backend.actor)
        loaded = db_versions.load_versions(session, {version_id for version_id, _ in held})
        db_purges.forget_chunk_list(session, digest)
        db_packs.count_forgetting(session)
        size = 0
        # the bytes go while the lock is held: no writer may find them meanwhile
        for object_digest in [digest, *chunks]:
            found = objects.sizes([object_digest]).get(object_digest)
            if found is not None:
                size += found
                objects.delete(object_digest)
        objects.delete_chunk_list(digest)
        rewritten = packs.purge_packed(objects, session, [digest, *chunks])
    packs.delete_packs(objects, rewritten)  # the old packs, once forgotten
    removed_cached = backend.cache.forget_objects([digest, *chunks])
    removed_cached += backend.cache.forget_entries(
        (loaded[v].project, loaded[v].name, f"v{loaded[v].number}", path) for v, path in held
    )
    entries = [(f"{loaded[v].project}/{loaded[v].ref}", path) for v, path in held]
    return PurgeReport(digest, reason.strip(), entries, size, removed_cached)


def which(backend: LocalBackend, digest: str) -> list[tuple[int, str]]:
    with read_session(backend.engine) as session:
        return db_purges.holders(session, digest)
