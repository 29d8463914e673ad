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


def hash_bytes(data: bytes) -> str:
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
