"""xxh3-128 digests of bytes, files and streams, computed in large blocks with flat memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

import xxhash

HASH_ALGORITHM = "xxh3-128"
BLOCK_SIZE = 1 << 20  # 1 MiB blocks stay in cache and measured fastest here

Progress = Callable[[int], None]
"""Called with the number of bytes just processed."""


def new_hasher() -> xxhash.xxh3_128:
    return xxhash.xxh3_128()


def hash_bytes(data: bytes | memoryview) -> str:
    return str(xxhash.xxh3_128_hexdigest(data))


def hash_stream(stream: BinaryIO, progress: Progress | None = None) -> tuple[str, int]:
    """Digest and size of everything left in ``stream``, read block by block."""
    hasher = new_hasher()
    size = 0
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            hasher.update(view[:n])
        else:
            chunk = stream.read(BLOCK_SIZE)
            if not chunk:
                break
            n = len(chunk)
            hasher.update(chunk)
        size += n
        if progress is not None:
            progress(n)
    return hasher.hexdigest(), size


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None) -> tuple[str, int]:
    """Digest and size of a local file."""
    with open(path, "rb", buffering=0) as f:
        return hash_stream(f, progress)


# Files up to this size are read whole in one call; larger ones stream in blocks.
SMALL_FILE = 1 << 20
# Below this many small files, starting worker processes costs more than it saves.
POOL_MIN_FILES = 2000
BATCH_FILES = 500

HashResult = tuple[str, int] | str
"""A file's digest and size, or the reason it could not be read."""


def hash_small_file(path: str | bytes) -> HashResult:
    """Digest and size of one (usually small) file, read whole in one call when it is.

    The read asks for the file's size and a byte more (which shows a file that grew), not
    for `SMALL_FILE` bytes: a buffer that large, allocated and freed for every file, made
    hashing small files three times slower."""
    try:
        with open(path, "rb", buffering=0) as f:
            expected = os.fstat(f.fileno()).st_size
            if expected < SMALL_FILE:
                data = f.read(expected + 1)
                if len(data) <= expected:
                    return str(xxhash.xxh3_128_hexdigest(data)), len(data)
                f.seek(0)  # grew since it was listed: stream it
            return hash_stream(f)
    except OSError as exc:
        return str(exc.strerror or exc)
