"""Logging a draft: a version made from another by a few changes, in time that follows the
changes, not the size of the version.

Only the files the draft added are hashed and stored (under the writer's lease, as any
log). The new manifest is written from the base's entries, read a page at a time, merged
with the added ones, and stored with them; then one transaction checks the base is still
live and unchanged (no purge since), inserts the version, copies the kept entries inside
the catalog, and inserts the added ones. The base's objects need no lease: a live version
holds them, and gc never takes what a live version holds.
"""

from __future__ import annotations

import datetime as dt
import heapq
import os
import tempfile
from collections.abc import Iterator, Sequence
from itertools import islice
from operator import itemgetter
from typing import IO, TYPE_CHECKING, BinaryIO, cast

from .. import ingest, progress
from ..db import drafts as db_drafts
from ..db import versions as db_versions
from ..db.engine import Engine, Session, read_session
from ..errors import InvalidInput, StoreError
from ..manifest import EntryFields, ManifestEntry, ManifestWriter
from ..paths import check_alias, check_name
from ..records import VersionData
from .commit import catalog_of, commit_logged
from .leases import Lease

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from .backend import LocalBackend


class LocalDrafts:
    """What a draft asks of `LocalBackend` about the version it starts from."""

    engine: Engine

    def entries_at(self, version_id: int, paths: Sequence[str]) -> dict[str, ManifestEntry]:
        with read_session(self.engine) as session:
            return db_drafts.entries_at(session, version_id, list(paths))

    def entry_count(self, version_id: int, folder: str = "") -> int:
        with read_session(self.engine) as session:
            return db_drafts.entry_count(session, version_id, folder)


def log_draft(
    backend: LocalBackend,
    artifact: Artifact,
    *,
    project: str,
    run_id: str | None,
    aliases: Sequence[str] = (),
    tags: Sequence[str] = (),
    ttl: dt.timedelta | None = None,
    show_progress: bool | None = None,
) -> VersionData:
    """`commit.log` for an artifact with a ``base``: the same guarantees, and work in
    proportion to what changed (plus one pass over the base's entries to hash them)."""
    base = artifact.base
    assert base is not None
    check_name(project, "project")
    aliases = [check_alias(a) for a in aliases]
    tags = [check_alias(t, "tag") for t in tags]
    backend.require_writable()
    dropped, dropped_folders = artifact.removed()
    show = progress.wanted(show_progress)
    with read_session(backend.engine) as session:
        require_live(db_drafts.base_state(session, base.version_id), base.label)
        redacted = db_drafts.redacted_paths(session, base.version_id)

    def kept() -> Iterator[EntryFields]:
        """The base's entries the draft keeps, a page at a time from the catalog."""
        last: str | None = None
        while True:
            with read_session(backend.engine) as session:
                page = db_drafts.entry_rows_after(session, base.version_id, last)
            if not page:
                return
            last = page[-1][0]
            for row in page:
                path = row[0]
                if path in dropped or path in redacted:
                    continue
                if dropped_folders and any(path.startswith(f) for f in dropped_folders):
                    continue
                yield row

    with artifact.own_entries() as added:
        prepared = ingest.prepare(added, backend.stat_cache, show, backend.own_files())
        count_added = len(added)
    with prepared, tempfile.SpooledTemporaryFile(ingest.MANIFEST_IN_MEMORY) as manifest:
        writer = ManifestWriter(cast(IO[bytes], manifest))
        own = prepared.entry_values()
        merged = heapq.merge(kept(), own, key=itemgetter(0))
        while page := list(islice(merged, 5_000)):
            writer.add_rows(page)
        digest = writer.finish()
        if not writer.count:
            raise InvalidInput(
                f"artifact {artifact.name!r} is empty: the draft removed every file of "
                f"{base.label}; add files before logging it"
            )
        with Lease(backend.engine) as lease:
            if count_added:
                ingest.store_objects(
                    prepared, backend.objects, lease.register, catalog_of(backend),
                    backend.chunking, artifact.name, show, with_manifest=False,
                )  # fmt: skip
            lease.register([digest])
            size = manifest.seek(0, os.SEEK_END)
            if not backend.objects.present({digest: size}):
                manifest.seek(0)
                backend.objects.put_stream(cast(BinaryIO, manifest), digest, source="the manifest")
            backend.objects.flush()
            contents = db_versions.Contents(
                writer.size,
                writer.count,
                prepared.entry_values(),
                prepared.chunk_lists(backend.chunking),
                backend.chunking,
                prepared.new_bytes,
                writer.size - prepared.new_bytes,
                copied_from=db_drafts.EntryCopy(
                    base.version_id, dropped, dropped_folders, redacted
                ),
            )

            def base_unchanged(session: Session) -> None:
                require_live(db_drafts.base_state(session, base.version_id), base.label)
                if db_drafts.redacted_paths(session, base.version_id) != redacted:
                    raise StoreError(
                        f"files of {base.label} were purged while this draft was logged; "
                        "nothing was committed: log it again"
                    )

            return commit_logged(
                backend, lease, artifact, contents, digest, project=project, run_id=run_id,
                aliases=aliases, tags=tags, ttl=ttl, before=base_unchanged,
            )  # fmt: skip


def require_live(state: str, label: str) -> None:
    """Refuse a draft whose base is deleted: its objects are no longer held."""
    if state == "deleted":
        raise InvalidInput(
            f"{label} was deleted after this draft was made from it; restore it ('forebear "
            f"restore {label}') and log the draft again"
        )
    if state == "purged":
        raise InvalidInput(
            f"{label} was deleted and gc purged it: its bytes are no longer in the store, so "
            "a draft of it cannot be logged; start a draft from a live version"
        )
