"""Logging an artifact's entries in flat memory, however many there are: they go through
in path-ordered batches, never all at once.

1. `prepare` stats and fingerprints each batch of files (the stat cache first, then every
   core; up to three batches at once, each at its own step), writes the canonical manifest
   as it goes, hashing it on the way, and spools each entry with what storing it needs.
2. `store_objects`: batch by batch, registers the objects as pending, asks the location
   which it lacks (or holds with the wrong size), stores those, and checks that every file
   is still as it was when it was hashed. Large files are cut into content-defined chunks
   and only the chunks the location lacks are stored; a large file already stored (whole,
   or in chunks by a committed version) is not cut at all. Content that a committed
   version has already is only checked, and what went missing is stored again.
3. `Prepared.entries` and `Prepared.chunk_lists` stream the entries and the new chunk lists
   again, for the catalog's batched insert.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from . import progress
from .artifacts import Artifact, PendingFile, refuse_store_files
from .chunk_storing import (
    Catalog,
    cut_files,
    cut_while_storing,
    file_groups,
    reliable,
    store_chunks,
)
from .chunking import MIN_THRESHOLD, Chunking, ChunkList
from .errors import InvalidInput
from .fingerprint import Lookup, check_unchanged, hash_todo, look_up, settle, stat_file
from .hash_workers import HashPool
from .hashing import HashResult
from .manifest import EntryFields, ManifestEntry, ManifestWriter
from .objects import ObjectLocation
from .processes import thread_pool
from .spool import Spool
from .staged import Adoption, Staging
from .stat_worker import StatHelper
from .statcache import FileStat, StatCache
from .treekey import KeyBuilder, TreeKeys

if TYPE_CHECKING:
    from concurrent.futures import Future

# Files fingerprinted (and then stored) per batch: enough to keep every core busy, few
# enough that the batches under way (up to three: see `prepare`) stay a few tens of MB.
# Measured here: with three under way, 12,500 files a batch took a log of 20,000 small
# files into packs on S3 to 149 MiB, 6,250 to 141 MiB; a first log of 50,000 small files
# peaked at 133 and 128 MiB, in 1.89 and 1.93 s (means of four runs).
BATCH = 6_250
# A batch of this many files or more is stated by a helper process (see `_stat_files`).
STATED_APART = 1_000
# Batches stated and not yet recorded, at most (beside the one being stated).
IN_FLIGHT = 2
# The log's rows held in memory before they go to a temporary file (in path order and only
# read back in order, they cost about 0.6 us a row there). Against the 64,000 an artifact
# keeps: first logs of 50,000 and 100,000 small files, 128 -> 112 and 153 -> 134 MiB.
ROWS_IN_MEMORY = 16_000
# A manifest stays in memory up to this size, then goes to a temporary file.
MANIFEST_IN_MEMORY = 8 << 20


@dataclass
class Prepared:
    """A hashed artifact, ready to store and commit."""

    digest: str  # the manifest's
    file_count: int
    size: int
    manifest: BinaryIO
    # (path, digest, size, uri, etag, local path as bytes, device, inode, mtime_ns, ctime_ns,
    # staging file name, offset: where a hashing worker staged its bytes, if it did)
    rows: Spool
    # filled by store_objects: (file digest, size, packed chunks) of each file it cut
    cut: Spool = field(default_factory=lambda: Spool(width=3))
    stored_size: int = 0  # the files' bytes (references are not stored)
    new_bytes: int = 0  # what store_objects added to the object location
    tree: TreeKeys | None = None  # the files' keys, when they are all local files
    staging: Staging | None = None  # the small files' bytes, staged as they were hashed

    @property
    def shared_bytes(self) -> int:
        return self.stored_size - self.new_bytes

    def entries(self) -> Iterator[ManifestEntry]:
        for row in self.rows:
            yield ManifestEntry(row[0], row[1], row[2], row[3], row[4])

    def entry_values(self) -> Iterator[EntryFields]:
        """The entries as the catalog inserts them, straight from the rows."""
        for row in self.rows:
            yield row[:5]

    def chunk_lists(self, chunking: Chunking) -> Iterator[ChunkList]:
        for digest, size, packed in self.cut:
            yield ChunkList.unpack(digest, size, chunking, packed)

    def close(self) -> None:
        self.rows.close()
        self.cut.close()
        self.manifest.close()
        if self.staging is not None:
            self.staging.close()

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare(
    artifact: Artifact,
    cache: StatCache | None,
    show: bool,
    forbidden: frozenset[str] = frozenset(),
    stage_into: str | None = None,
) -> Prepared:
    """Fingerprint every file of ``artifact`` and write its manifest; a file among
    ``forbidden`` (the store's own files) is refused. ``stage_into``: the temporary folder
    of a local store with packs, where the hashing workers stage small files' bytes (see
    `forebear.staged`)."""
    import tempfile  # not for an unchanged re-log, which prepares nothing

    rows = Spool(width=12, spill_rows=ROWS_IN_MEMORY)
    pool = HashPool(stage_into, cache)  # one set of workers for every batch
    staging: Staging | None = None
    # closed by Prepared.close, or below on failure
    manifest = cast(BinaryIO, tempfile.SpooledTemporaryFile(MANIFEST_IN_MEMORY))  # noqa: SIM115
    try:
        writer = ManifestWriter(manifest)
        keys: KeyBuilder | None = KeyBuilder()
        references = 0
        with (
            pool,
            StatHelper(share=1.0, helped=STATED_APART) as stating,
            progress.growing_bar(f"hashing {artifact.name}", show) as (tick, expect),
            thread_pool(1, "forebear-hash") as hashing,
            thread_pool(1, "forebear-record") as recording,
        ):
            # Three steps overlap, each on a thread of its own: this one walks and states a
            # batch and asks the stat cache about it, the next hashes the batch before,
            # the last checks and records the one before that. Before, the workers sat
            # idle while this process stated and recorded.
            in_flight: deque[Future[list[tuple[Any, ...]]]] = deque()
            try:
                for batch in artifact.batches(BATCH):
                    if forbidden:
                        refuse_store_files(batch, forbidden)
                    if keys is not None and not all(isinstance(i, PendingFile) for i in batch):
                        keys = None  # references or kept entries: no stat describes them
                    lookup = _look_up_batch(batch, cache, keys, tick, stating)
                    expect(sum(stat.size for stat in lookup.stats))
                    references += sum(
                        e.size for e in batch if isinstance(e, ManifestEntry) and e.uri is not None
                    )
                    hashed = hashing.submit(hash_todo, lookup, tick, pool)
                    in_flight.append(
                        recording.submit(_record_batch, batch, lookup, hashed, writer, cache)
                    )
                    while len(in_flight) > IN_FLIGHT:
                        rows.add(in_flight.popleft().result())
                while in_flight:
                    rows.add(in_flight.popleft().result())
            except BaseException:  # failing: drop the batches not begun, end those under way
                hashing.shutdown(cancel_futures=True)
                recording.shutdown(cancel_futures=True)
                raise
            if stage_into is not None:
                staging = Staging(pool.finish_staging(), pool.staging_files())
        digest = writer.finish()
    except BaseException:
        rows.close()
        manifest.close()
        Staging({}, pool.staging_files()).close()
        raise
    stored_size = writer.size - references
    tree = keys.keys() if keys is not None else None
    return Prepared(
        digest, writer.count, writer.size, manifest, rows, stored_size=stored_size, tree=tree,
        staging=staging,
    )  # fmt: skip


def _look_up_batch(
    batch: list[PendingFile | ManifestEntry],
    cache: StatCache | None,
    keys: KeyBuilder | None,
    tick: Callable[[int], None],
    stating: StatHelper,
) -> Lookup:
    """State the batch's files and ask the stat cache about them."""
    files = [item for item in batch if isinstance(item, PendingFile)]
    local_paths = [pending.local_path for pending in files]
    stats = _stat_files(local_paths, stating)
    if keys is not None:
        keys.add_paths(files)
        keys.add_stats(zip(files, stats, strict=True))
    return look_up(local_paths, stats, cache, tick)


def _stat_files(paths: list[str], stating: StatHelper) -> list[FileStat]:
    """Each file's `FileStat`: a long list stated by ``stating``'s helper process, while
    this one waits. Stated here, each ``stat`` gave the GIL to this process's other threads
    (hashing, recording, opening the catalog) and waited to get it back: a first log of
    50,000 small files spent 0.55-0.73 s on them, against 0.11 s for the same stats alone.
    Where the helper cannot state one, they are stated here, which says why."""
    if stating.shares(len(paths)):
        with contextlib.suppress(OSError):
            numbers = stating.numbers(paths)
            if min(numbers[0::5], default=0) >= 0 and min(numbers[1::5], default=0) >= 0:
                return list(map(FileStat, *(numbers[i::5] for i in range(5))))
            # a device or inode number past 2**63, which the helper sends wrapped: rare
    return [stat_file(path) for path in paths]


def _record_batch(
    batch: list[PendingFile | ManifestEntry],
    lookup: Lookup,
    hashed: Future[list[HashResult]],
    writer: ManifestWriter,
    cache: StatCache | None,
) -> list[tuple[Any, ...]]:
    """The batch's rows, once its files are hashed, its entries added to the manifest."""
    prints = iter(settle(lookup, hashed.result(), cache))
    rows: list[tuple[Any, ...]] = []
    for item in batch:
        if isinstance(item, ManifestEntry):  # a reference: described when it was added
            rows.append((item.path, item.digest, item.size, item.uri, item.etag,
                         None, None, None, None, None, None, None))  # fmt: skip
            continue
        found = next(prints)
        assert found is not None  # not tolerant: a file that cannot be read raised
        stat = found.stat
        staged = found.staged or (None, None)
        rows.append((item.path, found.digest, found.size, None, None,
                     os.fsencode(item.local_path),
                     stat.device, stat.inode, stat.mtime_ns, stat.ctime_ns, *staged))  # fmt: skip
    writer.add_rows(row[:5] for row in rows)  # the batch's entries in one write
    return rows


def store_objects(
    prepared: Prepared,
    objects: ObjectLocation,
    register: Callable[[list[str]], None],
    catalog: Catalog,
    chunking: Chunking,
    label: str,
    show: bool,
    *,
    relog: bool = False,
    withheld: frozenset[str] = frozenset(),
    with_manifest: bool = True,
) -> None:
    """Store the objects the location lacks, batch by batch, each registered as pending
    (through ``register``) before it is written, then the manifest itself (unless not
    ``with_manifest``: a draft's files are not its whole manifest).

    Files of ``chunking.threshold`` bytes or more are stored as chunks, unless the location
    holds them whole already. A file whose chunk list a committed version recorded is not
    cut again: only chunks gone missing are stored again, and the list's own copy where
    no version needs the file any more (gc may have taken it). An object found stored counts
    only with the right size, and a local one no committed version needs (a leftover of a
    failed log) only once its bytes hash to its name.

    ``relog``: a version with this content is committed, so every object it needs should be
    stored; they are only checked (no registration, nothing cut), and those gone missing
    are stored again. ``withheld``: bytes that must not be stored (purged ones, when a
    version that held them is logged again).
    """
    with progress.growing_bar(f"storing {label}", show) as (tick, expect):
        adoption = _adoption(prepared, objects, tick)
        for batch in prepared.rows.batches(BATCH):
            kept = {
                digest: path
                for path, digest, _size, uri, _etag, local, *_ in batch
                if local is None and uri is None and digest is not None
            }
            if kept and not relog:
                _hold_stored(kept, register, catalog)
            sizes: dict[str, int] = {}  # each distinct digest's size
            first: dict[str, bytes] = {}  # and a local file holding it
            for _path, digest, size, _uri, _etag, local, *_ in batch:
                if local is not None and digest not in sizes and digest not in withheld:
                    sizes[digest] = size
                    first[digest] = local
            if not sizes:
                continue
            # a file stored in chunks before (under any chunking) stays so: reads go by
            # its chunk list, so a chunk gone missing is stored again, not the whole file
            large = [d for d, size in sizes.items() if size >= MIN_THRESHOLD]
            known = catalog.chunk_lists(large) if large else {}
            whole_sizes = {d: size for d, size in sizes.items() if d not in known}
            if not relog:
                register(list(sizes))
            present = reliable(objects, objects.present(whole_sizes), catalog, relog)
            sources = {  # decode the paths of only the files to read
                d: (os.fsdecode(first[d]), sizes[d])
                for d in sizes
                if d in known or d not in present
            }
            absent = {d: sources[d] for d in whole_sizes if d not in present}
            if relog and absent:
                register(list(absent))
            whole = [(p, d) for d, (p, size) in absent.items() if not chunking.applies_to(size)]
            expect(sum(absent[d][1] for _, d in whole))
            unstaged = adoption.take(batch, whole, sizes) if adoption is not None else whole
            objects.put_files(unstaged, tick, sizes={d: absent[d][1] for _, d in unstaged})
            prepared.new_bytes += sum(absent[d][1] for _, d in whole)
            if known:
                chunked = [(sources[d][0], chunks) for d, chunks in known.items()]
                prepared.new_bytes += store_chunks(
                    objects, chunked, register, catalog, True, tick, expect
                )
                if not relog:  # a list no version needs may have gone with its chunks
                    for digest in sorted(set(known) - catalog.committed(list(known))):
                        objects.put_chunk_list(digest, known[digest].to_bytes())
            to_cut = [
                (absent[d][0], d)
                for d in absent
                if chunking.applies_to(absent[d][1]) and d not in prepared.cut
            ]
            # the bar counts each file once: its new chunks as they are written, the rest
            # once they are found stored (cutting itself moves it no further)
            if objects.is_local:  # cut and stored at once, a file after the other
                for path, digest in to_cut:
                    expect(absent[digest][1])
                    chunks, new = cut_while_storing(
                        objects, path, digest, chunking, register, catalog, tick
                    )
                    prepared.new_bytes += new
                    _keep_chunk_list(objects, prepared, chunks)
            else:
                for group in file_groups(to_cut, absent):
                    group_bytes = sum(absent[d][1] for _, d in group)
                    expect(group_bytes)
                    cut = cut_files(group, chunking)
                    register([d for _, chunks in cut for d in chunks.digests])
                    new = store_chunks(objects, cut, register, catalog, False, tick, None)
                    tick(group_bytes - new)
                    prepared.new_bytes += new
                    for _, chunks in cut:
                        _keep_chunk_list(objects, prepared, chunks)
            stored = set(absent) | set(known)
            # a file read whole into a pack was hashed again as it went in: no stat needed
            packs = objects.packs
            verified = {first[d] for _, d in whole if packs is not None and packs.takes(sizes[d])}
            for _path, digest, size, _uri, _etag, local, device, inode, mtime, ctime, *_ in batch:
                # unchanged since they were hashed (a re-log reads only what it stores)
                if local is not None and (not relog or digest in stored) and local not in verified:
                    stat = FileStat(device, inode, size, mtime, ctime)
                    check_unchanged(os.fsdecode(local), stat)
        if adoption is not None:
            adoption.finish()
    if not with_manifest:
        return
    size = prepared.manifest.seek(0, os.SEEK_END)
    if not relog:
        register([prepared.digest])
    manifest = reliable(objects, objects.present({prepared.digest: size}), catalog, relog)
    if not manifest:
        if relog:
            register([prepared.digest])
        prepared.manifest.seek(0)
        objects.put_stream(prepared.manifest, prepared.digest, source="the manifest")


def _adoption(
    prepared: Prepared, objects: ObjectLocation, tick: Callable[[int], None]
) -> Adoption | None:
    """Where the hashing workers staged small files' bytes for a local store with packs:
    what takes them (see `forebear.staged`)."""
    if prepared.staging is None or objects.packs is None or not objects.is_local:
        return None

    def put(files: list[tuple[str, str]], sizes: dict[str, int]) -> None:
        objects.put_files(files, None, sizes=sizes)

    return Adoption(prepared.staging, objects.packs, put, tick)


def _hold_stored(
    kept: dict[str, str], register: Callable[[list[str]], None], catalog: Catalog
) -> None:
    """Entries kept from a stored version (a draft's): register their objects (and their
    chunks) first, so gc keeps them from now on, then make sure a committed version still
    needs them and no purge removed them (otherwise they may be gone already)."""
    digests = sorted(kept)
    lists = catalog.chunk_lists(digests)
    register(digests + sorted({c for chunks in lists.values() for c in chunks.digests}))
    gone = (set(digests) - catalog.committed(digests)) | catalog.purged(digests)
    if gone:
        paths = ", ".join(sorted(kept[d] for d in gone)[:5])
        raise InvalidInput(
            f"{len(gone)} files kept from a stored version are no longer in the store (a gc "
            f"or a purge removed them): {paths}; add them again from local copies"
        )


def _keep_chunk_list(objects: ObjectLocation, prepared: Prepared, chunks: ChunkList) -> None:
    """Store a file's new chunk list beside its chunks, and spool it for the catalog."""
    objects.put_chunk_list(chunks.digest, chunks.to_bytes())
    prepared.cut.add([(chunks.digest, chunks.size, chunks.pack())])
