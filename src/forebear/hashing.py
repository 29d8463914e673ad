"""xxh3-128 digests of bytes, files and streams, computed in large blocks with flat memory."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

import xxhash

HASH_ALGORITHM = "xxh3-128"
BLOCK_SIZE = 1 << 20  # read from an aligned buffer, 128 KiB to 1 MiB blocks measured alike here


# Anonymous mappings private to the process (Python maps shared ones by default): a child
# forked while one is in use (a data loader's workers) gets its own copy when it writes,
# as with any other memory, instead of writing into its parent's.
_PRIVATE = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}


def page_aligned_memory(size: int) -> mmap.mmap:
    """``size`` bytes (at least one) of zeroed memory starting on a page, private to this
    process and its forks."""
    return mmap.mmap(-1, max(size, 1), **_PRIVATE)


def read_buffer(size: int = BLOCK_SIZE) -> memoryview:
    """A page-aligned buffer of ``size`` bytes to read local files into.

    Not a ``bytearray``: the allocator puts a buffer this large 16 bytes into a page, and a
    copy out of the page cache whose destination lies a few bytes past its source, modulo
    the 4 KiB page, takes the processor's slow path (false 4K aliasing; measured here on
    AMD EPYC: 2 GiB hashed from the cache in 0.93 s through a ``bytearray``, 0.25 s through
    an aligned buffer). The memory is returned when the view is no longer referenced."""
    return memoryview(page_aligned_memory(size))[:size]  # no mapping is empty


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
    view = read_buffer()
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

Identity = tuple[int, int, int, int, int]
"""A file's device, inode, size, mtime and ctime (nanoseconds): what says it is the same
file, unchanged (the order of `forebear.statcache.FileStat`)."""

READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # a local file opened to be read


class Hashed(NamedTuple):
    """A file's digest and size, and its identity once read (from the open file: the
    caller compares it with a stat from before, without looking the path up again)."""

    digest: str
    size: int
    after: Identity
    # where a hashing worker staged the file's bytes: (staging file's name, offset)
    staged: tuple[str, int] | None = None
    # whether the worker that hashed it recorded it in the stat cache already
    remembered: bool = False


HashResult = Hashed | str
"""A file hashed, or the reason it could not be read."""


def identity(info: os.stat_result) -> Identity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def hash_small_file(path: str | bytes) -> HashResult:
    """Digest and size of one (usually small) file, read whole in one call when it is.

    The read asks for the file's size and a byte more (which shows a file that grew), not
    for `SMALL_FILE` bytes: a buffer that large, allocated and freed for every file, made
    hashing small files three times slower. Plain descriptors, not file objects: opening
    a file object costs twice the system calls it makes (measured: 10.5 against 4.5 µs a
    file here)."""
    return read_small_file(path)[0]


def read_small_file(path: str | bytes) -> tuple[HashResult, bytes | None]:
    """`hash_small_file`, with the bytes it hashed when it read them whole in one call
    (None for a file streamed in blocks, or not read): a worker that stages them."""
    try:
        fd = os.open(path, READ_FLAGS)
        try:
            expected = os.fstat(fd).st_size
            if expected < SMALL_FILE:
                data = os.read(fd, expected + 1)
                if len(data) <= expected:
                    digest = str(xxhash.xxh3_128_hexdigest(data))
                    return Hashed(digest, len(data), identity(os.fstat(fd))), data
                os.lseek(fd, 0, os.SEEK_SET)  # grew since it was listed: stream it
            return _hash_open(fd, None), None
        finally:
            os.close(fd)
    except OSError as exc:
        return str(exc.strerror or exc), None


def hash_large_file(path: str, progress: Progress | None = None) -> HashResult:
    """`hash_small_file` for a file read in blocks."""
    try:
        fd = os.open(path, READ_FLAGS)
        try:
            return _hash_open(fd, progress)
        finally:
            os.close(fd)
    except OSError as exc:
        return str(exc.strerror or exc)


def _hash_open(fd: int, progress: Progress | None) -> Hashed:
    with open(fd, "rb", buffering=0, closefd=False) as stream:
        digest, size = hash_stream(stream, progress)
    return Hashed(digest, size, identity(os.fstat(fd)))
