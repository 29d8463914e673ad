"""Copying bytes with their hash computed on the way, every byte written."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import IO, Any, BinaryIO

from ..hashing import BLOCK_SIZE, READ_FLAGS, Progress, new_hasher, read_buffer


def copy_hashing(src: BinaryIO, dst: IO[bytes], progress: Progress | None) -> tuple[str, int]:
    """Copy ``src`` to its end into ``dst``, hashing on the way: the digest and length of
    what was written (every byte of it: short writes are finished or fail)."""
    hasher = new_hasher()
    total = 0
    readinto = getattr(src, "readinto", None)
    if readinto is None:
        while block := src.read(BLOCK_SIZE):
            hasher.update(block)
            write_all(dst, memoryview(block))
            total += len(block)
            if progress is not None:
                progress(len(block))
        return str(hasher.hexdigest()), total
    view = read_buffer()
    direct = isinstance(dst, io.FileIO)  # other writers may keep what they are given
    while n := readinto(view):
        hasher.update(view[:n])
        write_all(dst, view[:n] if direct else memoryview(bytes(view[:n])))
        total += n
        if progress is not None:
            progress(n)
    return str(hasher.hexdigest()), total


def write_all(dst: IO[bytes], view: memoryview) -> None:
    """Write all of ``view``: raw files may accept fewer bytes than given (a disk filling
    up), and then the rest must be written again or the error surfaces."""
    while len(view):
        written = dst.write(view)
        if written is None:  # a buffered writer took everything
            return
        if written <= 0:
            raise OSError(28, "No space left on device")  # ENOSPC: nothing more accepted
        view = view[written:]


class Joined(io.RawIOBase):
    """Bytes already read, then the rest of the stream they came from."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self.head = memoryview(head)
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if len(self.head):
            n = min(len(view), len(self.head))
            view[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        readinto = getattr(self.rest, "readinto", None)
        if readinto is not None:
            return int(readinto(view) or 0)
        data = self.rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def zero_rest(view: memoryview, filled: int) -> None:
    """Zero ``view`` after its first ``filled`` bytes: where stored bytes ended early, the
    caller's check then fails on zeros, never on what the buffer held before."""
    if filled < len(view):
        view[filled:] = bytes(len(view) - filled)


def read_file_head(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a local file, fewer only at its end: through a plain
    descriptor, which costs half the system calls of a file object (what matters when
    packing many small files)."""
    fd = os.open(path, READ_FLAGS)
    try:
        return read_descriptor(fd, size)
    finally:
        os.close(fd)


def read_descriptor(fd: int, size: int) -> bytes:
    """`read_file_head` of a file open as ``fd``, from where it is."""
    return _read_up_to(lambda wanted: os.read(fd, wanted), size)


def read_up_to(src: BinaryIO, size: int) -> bytes:
    """``size`` bytes of ``src``, fewer only at its end (a stream may return short reads)."""
    return _read_up_to(src.read, size)


def _read_up_to(read: Callable[[int], bytes], size: int) -> bytes:
    parts = []
    wanted = size
    while wanted > 0 and (part := read(wanted)):
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)  # one part is returned as it is, not copied
