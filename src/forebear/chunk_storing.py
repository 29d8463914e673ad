"""Storing large files as chunks, and which stored objects a writer may rely on (for
`ingest.store_objects`).

A local file is cut on one thread while the chunks found so far are stored on another, a
window at a time (`cut_while_storing`); files bound for an object store are cut first, many
at a time, so one listing answers for all their chunks (`cut_files`, `store_chunks`). Each
chunk stored is read again from its file and re-hashed as it is copied. Every chunk is
held before it is looked for: registered through the caller's ``register``, or, for a
file whose chunk list is committed, through the file itself (gc keeps a held file's
chunks).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .chunking import Chunking, ChunkList, ChunkRange
from .cutting import FileCut, ahead, cut_file
from .errors import InvalidPath
from .hash_workers import hash_files
from .objects import TRANSFER_WORKERS, ObjectLocation
from .processes import thread_pool


class Catalog(NamedTuple):
    """What storing objects asks the catalog: which files are stored in chunks already
    (their chunk lists), which objects committed versions need (so they are known to
    have been complete and durable), and which bytes a purge removed."""

    chunk_lists: Callable[[list[str]], dict[str, ChunkList]]
    committed: Callable[[list[str]], set[str]]
    purged: Callable[[list[str]], set[str]] = lambda digests: set()


def reliable(
    objects: ObjectLocation, present: set[str], catalog: Catalog, committed: bool
) -> set[str]:
    """`trusted`, unless the objects are ``committed`` ones, which are relied on as found."""
    return present if committed else trusted(objects, present, catalog.committed)


def trusted(
    objects: ObjectLocation, present: set[str], committed: Callable[[list[str]], set[str]]
) -> set[str]:
    """The objects among ``present`` (stored with the right size) that a writer may rely
    on. A remote object is judged by its size. A local one that no committed version needs
    was left by a writer that failed (maybe before its objects were durable): it is relied
    on only if its bytes still hash to its name, and otherwise stored again."""
    if not objects.is_local or not present:
        return present
    suspects = sorted(present - committed(sorted(present)))
    if suspects:  # a packed object's pack was whole and durable before it was indexed
        suspects = sorted(set(suspects) - objects.packed(suspects).keys())
    if not suspects:
        return present
    results = hash_files([objects.path_of(d) for d in suspects], [0] * len(suspects))
    bad = {
        digest
        for digest, found in zip(suspects, results, strict=True)
        if isinstance(found, str) or found[0] != digest
    }
    return present - bad


# Large files cut before their chunks are stored: enough for one listing of the location to
# answer for many files, few enough that their chunk lists stay small (about 7,000 chunks).
GROUP_BYTES = 4 << 30


def file_groups(
    files: list[tuple[str, str]], sources: dict[str, tuple[str, int]]
) -> Iterator[list[tuple[str, str]]]:
    group: list[tuple[str, str]] = []
    size = 0
    for item in files:
        group.append(item)
        size += sources[item[1]][1]
        if size >= GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def put_chunk(
    objects: ObjectLocation,
    descriptor: int,
    offset: int,
    size: int,
    digest: str,
    source: str,
    tick: Callable[[int], None],
) -> None:
    """Store one chunk of an open file, read again and re-hashed as it is copied (into
    a pack, straight into its block)."""
    packs = objects.packs
    if packs is not None and packs.takes(size):
        packs.add_chunk(descriptor, offset, size, digest, source)
        tick(size)
        return
    objects.put_stream(
        ChunkRange(descriptor, offset, size),  # type: ignore[arg-type]  # read() is all it uses
        digest,
        tick,
        source=source,
    )


def cut_files(files: list[tuple[str, str]], chunking: Chunking) -> list[tuple[str, ChunkList]]:
    """Cut each (path, digest) file, each on one thread (chunks and the whole file hashed
    from the same bytes), half as many files as cores at once."""

    def cut(item: tuple[str, str]) -> tuple[str, ChunkList]:
        return item[0], cut_file(item[0], item[1], chunking)

    with thread_pool(max(1, (os.cpu_count() or 1) // 2)) as pool:
        return list(pool.map(cut, files))


# Bytes of chunks cut ahead of those being stored (two windows wait at most): enough that
# each window's registration and lookup cost little beside its bytes.
WINDOW_BYTES = 64 << 20


def cut_while_storing(
    objects: ObjectLocation,
    path: str,
    digest: str,
    chunking: Chunking,
    register: Callable[[list[str]], None],
    catalog: Catalog,
    tick: Callable[[int], None],
) -> tuple[ChunkList, int]:
    """Cut a local file on one thread while the new chunks found so far are stored on
    this one, a window at a time: its chunk list, and the bytes stored. Each window's
    chunks are registered before they are looked up and stored, and each is read again
    and checked as it is copied, as `store_chunks` does."""
    cut = FileCut(path, digest, chunking)
    new = 0
    seen: set[str] = set()
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise InvalidPath(f"cannot read {path!r}: {exc.strerror or exc}") from exc

    def put(item: tuple[str, int]) -> None:
        chunk, index = item
        source = f"{path} ({cut.describe(index)})"
        put_chunk(objects, descriptor, cut.offsets[index], cut.sizes[index], chunk, source, tick)

    # chunks are appended to one pack in turn (threads would only wait); files of their
    # own gain from two threads (each waits for the device while the other copies)
    writers = thread_pool(2) if objects.packs is None else None
    try:
        for window in ahead(cut.windows(WINDOW_BYTES), 2):
            first: dict[str, int] = {}  # each chunk not seen before in the file: its index
            for index in window:
                if cut.digests[index] not in seen:
                    first.setdefault(cut.digests[index], index)
            seen.update(first)
            register(list(first))
            sizes = {d: cut.sizes[index] for d, index in first.items()}
            present = trusted(objects, objects.present(sizes), catalog.committed)
            missing = [(chunk, index) for chunk, index in first.items() if chunk not in present]
            for _ in map(put, missing) if writers is None else writers.map(put, missing):
                pass
            stored = sum(cut.sizes[index] for _, index in missing)
            new += stored
            tick(sum(cut.sizes[index] for index in window) - stored)  # the rest: found stored
    finally:
        if writers is not None:
            writers.shutdown()
        os.close(descriptor)
    return cut.chunk_list(), new


def _streamed(
    objects: ObjectLocation,
    files: list[tuple[str, ChunkList]],
    missing: set[str],
    tick: Callable[[int], None],
) -> bool:
    """Send each new chunk list with its missing chunks as one stream, where the location
    takes that (a server, which proves the list as the bytes arrive); False if it does not.
    A chunk two files share is sent with the first."""
    for path, chunks in files:
        mine = missing.intersection(chunks.digests)
        if not objects.put_chunked_file(path, chunks, mine, tick):
            return False  # the location takes no streams: it says so at the first file
        missing -= mine
    return True


def store_chunks(
    objects: ObjectLocation,
    files: list[tuple[str, ChunkList]],
    register: Callable[[list[str]], None],
    catalog: Catalog,
    committed: bool,
    tick: Callable[[int], None],
    expect: Callable[[int], None] | None,
) -> int:
    """Store the chunks of these (path, chunk list) files that the location lacks, each
    re-hashed as it is copied from its file; returns the bytes stored. ``committed``: the
    chunk lists are committed, so their chunks need no registration unless missing.
    ``expect`` is told the bytes to store (None: the caller counted them already)."""
    first: dict[str, tuple[str, ChunkList, int]] = {}  # each chunk: where to copy it from
    for path, chunks in files:
        for index, digest in enumerate(chunks.digests):
            first.setdefault(digest, (path, chunks, index))
    sizes = {d: chunks.sizes[i] for d, (_, chunks, i) in first.items()}
    present = reliable(objects, objects.present(sizes), catalog, committed)
    missing = [(d, where) for d, where in first.items() if d not in present]
    if committed and missing:
        register([d for d, _ in missing])
    new = sum(chunks.sizes[index] for _, (_, chunks, index) in missing)
    if expect is not None:
        expect(new)
    if not committed and _streamed(objects, files, {d for d, _ in missing}, tick):
        return new
    descriptors: dict[str, int] = {}
    try:
        for path, _ in files:
            if path not in descriptors:
                descriptors[path] = os.open(path, os.O_RDONLY)

        def put(item: tuple[str, tuple[str, ChunkList, int]]) -> None:
            digest, (path, chunks, index) = item
            offset, size = chunks.offsets[index], chunks.sizes[index]
            source = f"{path} ({chunks.describe(index)})"
            put_chunk(objects, descriptors[path], offset, size, digest, source, tick)

        if objects.packs is not None:  # appended to one pack in turn: threads only wait
            for item in missing:
                put(item)
            return new
        # local writes gain from two threads (the GIL is released while copying and
        # hashing); object stores from several requests in flight
        workers = min(os.cpu_count() or 1, 2) if objects.is_local else TRANSFER_WORKERS
        with thread_pool(workers) as pool:
            for _ in pool.map(put, missing):
                pass
    finally:
        for descriptor in descriptors.values():
            os.close(descriptor)
    return new
