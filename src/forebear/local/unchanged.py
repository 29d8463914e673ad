"""An unchanged re-log in one look: when an artifact's files have the stats key recorded
the last time a version was logged from them (see `forebear.treekey`), they make that
version's manifest again, so nothing is hashed, no manifest is written and no entry is
compared one by one. What stays is what the guarantees need: the version must still be
live, keep every byte (nothing purged), and every object it needs must still be stored
(otherwise the full log runs and stores again what went missing).

That last check looks every entry up, so in a store with packs the record also keeps a
*whole mark*: the store's id and its count of forgettings (`db.packs.forget_count`)
read before the log that made or checked the version. While the count has not moved,
forebear has removed nothing since the version held all its objects, and only its
manifest is looked for; a count that moved (a gc, a repack, a purge, a rebuilt index)
means one full check, after which the record carries the new mark."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from .. import ingest, treekey
from ..chunking import MIN_THRESHOLD, ChunkList
from ..records import VersionData
from ..statcache import StatCache, TreeRecord

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from ..objects import ObjectLocation
    from .backend import LocalBackend

# Files stated per batch by the check: a batch of `stat_worker.HELPED` files or more is
# stated by two processes (a log's own batches are smaller: it holds more for each file).
CHECK_BATCH = 12_500


class Questions(Protocol):
    """What this check asks the catalog, each in a short read: answered through
    SQLAlchemy by the full backend (`commit.CatalogQuestions`) and through ``sqlite3``
    by a store not opened in full yet (`db.lite_log.LiteLog`), to the same answers."""

    def live_version(self, project: str, name: str, digest: str) -> VersionData | None:
        """The artifact's live version with this manifest digest, if any."""

    def redacted(self, version_id: int) -> bool:
        """Whether a purge took any of the version's bytes."""

    def unpacked_files(
        self, version_id: int, after: str | None, limit: int
    ) -> list[tuple[str, str, int]]:
        """`db.packs.unpacked_files`."""

    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        """The chunk lists of the files among ``digests`` stored in chunks."""


def logged_before(
    catalog: Questions,
    stat_cache: StatCache,
    objects: ObjectLocation,
    artifact: Artifact,
    project: str,
    mark: str | None,
) -> VersionData | None:
    """The live version of ``project/artifact.name`` that these very files made, when that
    can be known without reading them; None means: log them in full. ``mark``: the
    store's whole mark, read before this log looked at any object."""
    roots_key = treekey.roots_key(artifact)
    if roots_key is not None:  # no entry read unless these folders were logged before
        paths_key = stat_cache.paths_key_at(roots_key)
    else:
        paths_key = treekey.paths_key(artifact, CHECK_BATCH)
    record = stat_cache.remembered_tree(paths_key) if paths_key else None
    if record is None:
        return None
    keys = treekey.tree_keys(artifact, CHECK_BATCH)  # both keys, in one pass
    if keys is None or (keys.paths_key, keys.stats_key) != (paths_key, record.stats_key):
        return None
    version = catalog.live_version(project, artifact.name, record.digest)
    if version is None or catalog.redacted(version.id):
        return None
    if mark is not None and record.whole_at == mark:  # nothing removed since it was whole
        return version if objects.has(version.digest) else None
    if not is_whole(catalog, objects, version):
        return None
    if mark is not None:
        stat_cache.remember_tree(
            keys.paths_key, record._replace(whole_at=mark), treekey.roots_key(artifact)
        )
    return version


def is_whole(catalog: Questions, objects: ObjectLocation, version: VersionData) -> bool:
    """Whether every object ``version`` needs is stored with its size: its manifest, its
    whole files and the chunks of its chunked ones. What packs hold (a file packed whole,
    or every chunk of a chunked file) is known from the pack index in one statement a
    page; only the rest is looked up object by object."""
    if not objects.has(version.digest):
        return False
    after: str | None = None
    while True:
        page = catalog.unpacked_files(version.id, after, ingest.BATCH)
        if not page:
            return True
        after = page[-1][0]
        stored = {digest: size for _, digest, size in page}
        lists = catalog.chunk_lists(d for d, size in stored.items() if size >= MIN_THRESHOLD)
        sizes = {d: size for d, size in stored.items() if d not in lists}
        for chunks in lists.values():
            sizes.update(zip(chunks.digests, chunks.sizes, strict=True))
        if len(objects.present(sizes)) < len(sizes):
            return False


def remember(
    backend: LocalBackend, artifact: Artifact, prepared: ingest.Prepared, mark: str | None
) -> None:
    """After a log: what these files made, for the next log of the same files (the log
    found or stored every object after reading ``mark``)."""
    if prepared.tree is not None:
        tree = prepared.tree
        record = TreeRecord(
            tree.stats_key, prepared.digest, tree.changed_ns, tree.taken_ns, mark or ""
        )
        roots_key = treekey.roots_key(artifact)
        backend.stat_cache.remember_tree(tree.paths_key, record, roots_key)
