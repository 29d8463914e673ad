"""Storing damaged objects again from local files whose bytes match, found by content
whatever their names: what `repair --from` does, for a store reached directly or through a
server (whose client sends what it finds)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from .chunking import ChunkList, ChunkRange
from .errors import InvalidPath
from .fingerprint import fingerprint_if_readable
from .objects import ObjectLocation
from .reports import RepairReport
from .statcache import FileStat, StatCache
from .walk import is_store_folder

BATCH = 5000  # files fingerprinted at once


def restore_from(
    source: str | os.PathLike[str],
    objects: ObjectLocation,
    whole: dict[str, int],
    chunks: dict[str, tuple[ChunkList, int]],
    stat_cache: StatCache | None,
    report: RepairReport,
) -> None:
    """Store again, from files under ``source``: the ``whole`` objects (digest → size) and
    the ``chunks`` (chunk digest → its file's chunk list and its place). What is restored
    goes into ``report`` and leaves the two mappings; what is left was not found."""
    wanted = set(whole) | {chunk_list.digest for chunk_list, _ in chunks.values()}
    if not wanted:
        return
    for digest, path in matching_files(source, wanted, stat_cache):
        if digest in whole:
            objects.put_file(path, digest, known_missing=True)
            report.restored[digest] = path
            report.restored_bytes += whole.pop(digest)
        for chunk, (chunk_list, index) in list(chunks.items()):
            if chunk_list.digest != digest:
                continue
            restore_chunk(objects, path, chunk_list, index)
            report.restored[chunk] = f"{path} ({chunk_list.describe(index)})"
            report.restored_bytes += chunk_list.sizes[index]
            del chunks[chunk]


def restore_chunk(objects: ObjectLocation, path: str, chunks: ChunkList, index: int) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        stream = ChunkRange(descriptor, chunks.offsets[index], chunks.sizes[index])
        objects.put_stream(
            stream,  # type: ignore[arg-type]  # read() is all put_stream uses
            chunks.digests[index],
            source=f"{path} ({chunks.describe(index)})",
        )
    finally:
        os.close(descriptor)


def matching_files(
    source: str | os.PathLike[str], wanted: set[str], stat_cache: StatCache | None
) -> Iterator[tuple[str, str]]:
    """(digest, path) of files under ``source`` (or ``source`` itself) whose bytes are one
    of ``wanted``: each digest once."""
    root = os.path.abspath(os.fspath(source))
    if not os.path.exists(root):
        raise InvalidPath(f"cannot repair from {root!r}: no such file or folder")
    paths = [root] if os.path.isfile(root) else files_under(root)
    left = set(wanted)
    batch: list[str] = []

    def flush() -> Iterator[tuple[str, str]]:
        stats: list[FileStat] = []
        readable: list[str] = []
        for path in batch:
            try:
                stats.append(FileStat.of(os.stat(path)))
                readable.append(path)
            except OSError:
                continue
        for path, found in zip(
            readable, fingerprint_if_readable(readable, stats, stat_cache), strict=True
        ):
            if found is not None and found.digest in left:
                left.discard(found.digest)
                yield found.digest, path

    for path in paths:
        batch.append(path)
        if len(batch) >= BATCH:
            yield from flush()
            batch = []
            if not left:
                return
    yield from flush()


def files_under(root: str) -> Iterator[str]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [s for s in subfolders if not is_store_folder(os.path.join(folder, s))]
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                yield path
