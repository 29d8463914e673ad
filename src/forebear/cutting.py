"""Cutting a local file into chunks while the chunks found so far are being stored.

A large file's first log cuts it (hashing each chunk and the whole file) and stores its
new chunks, each read again and checked as it is copied. `FileCut` reads the file once to
cut it, hashing the chunks and the whole from the same bytes, and hands the chunks over a
window at a time; with `ahead`, the next window is cut on one core while the last one is
stored on the other, instead of one step after the other. The cutting of a file of
`CUT_ELSEWHERE_FROM` bytes or more runs in a worker process (``python -m
forebear.cutting``), which reports each chunk's digest and size:
on a thread of this process, its Python-level steps a chunk (and those of the storing)
waited for each other's turn at the GIL, and a 2 GiB file took 3.6 s to log instead of 3.0.

This module knows nothing of stores, versions or runs.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator
from typing import TypeVar

from .chunking import Chunking, ChunkList, cutter, describe_chunk
from .errors import IntegrityError, InvalidPath
from .hash_workers import start_worker, stop_worker
from .hashing import hash_bytes, new_hasher

T = TypeVar("T")


class FileCut:
    """One local file, logged with ``digest``, being cut into chunks.

    `windows` yields the chunks a window at a time (the indexes of the new ones in
    `digests`, `sizes` and `offsets`, which only grow); once it is exhausted, the chunks
    are known to make up the file that was logged, and `chunk_list` is its list. A file
    changed since it was hashed is refused with `IntegrityError` at the end of the cut:
    each chunk handed over is what its digest says (it was hashed from the bytes cut),
    so storing them before is safe, only useless."""

    def __init__(self, path: str, digest: str, chunking: Chunking) -> None:
        self.path = path
        self.digest = digest
        self.chunking = chunking
        self.digests: list[str] = []
        self.sizes: list[int] = []
        self.offsets: list[int] = []
        self._list: ChunkList | None = None

    def windows(self, window_bytes: int) -> Iterator[range]:
        start = pending = offset = 0
        actual = None
        for digest, size in _cut(self.path, self.chunking):
            if size < 0:  # the end: the whole file's digest
                actual = digest
                break
            self.digests.append(digest)
            self.sizes.append(size)
            self.offsets.append(offset)
            offset += size
            pending += size
            if pending >= window_bytes:
                yield range(start, len(self.digests))
                start, pending = len(self.digests), 0
        if actual != self.digest:
            raise IntegrityError(
                f"{self.path!r} changed while it was being logged (hashed {self.digest}, "
                f"then read {actual}); log it again once nothing is writing to it"
            )
        self._list = ChunkList(
            self.digest, sum(self.sizes), tuple(self.digests), tuple(self.sizes), self.chunking
        )
        if start < len(self.digests):
            yield range(start, len(self.digests))

    def chunk_list(self) -> ChunkList:
        """The file's chunk list: all of `windows` must have been taken."""
        if self._list is None:
            raise RuntimeError(f"{self.path!r} is not cut to its end yet")
        return self._list

    def describe(self, index: int) -> str:
        """How errors name one chunk cut so far (how many there are is not known yet)."""
        return describe_chunk(
            index, self.offsets[index], self.sizes[index], self.digests[index], None
        )


# Files at least this large are cut in a worker process. Starting one (an interpreter and
# the cutter's imports) takes about 60 ms here, which smaller files do not win back: a
# 512 MiB table logged in the same time either way (first log 0.69-0.77 s, a version with
# rows appended 0.48-0.51 s); a 2 GiB file's first log took 0.5 s less.
CUT_ELSEWHERE_FROM = 1 << 30


def _cut(path: str, chunking: Chunking) -> Iterator[tuple[str, int]]:
    """Each chunk's digest and size, then the whole file's digest with size -1."""
    try:
        large = os.stat(path).st_size >= CUT_ELSEWHERE_FROM
    except OSError:
        large = False  # cutting it says why it cannot be read
    return _cut_elsewhere(path, chunking) if large else _cut_here(path, chunking)


def _cut_elsewhere(path: str, chunking: Chunking) -> Iterator[tuple[str, int]]:
    """`_cut` in a worker process (``python -m forebear.cutting``): cutting and hashing
    are mostly Python-level steps a chunk, which on a thread would wait for the GIL while
    this process stores the chunks cut before (and make it wait in turn). Cut here when
    no worker can be started."""
    settings = (chunking.threshold, chunking.avg_size, chunking.min_size, chunking.max_size)
    try:
        child = start_worker("forebear.cutting", path, *map(str, settings))
    except OSError:
        yield from _cut_here(path, chunking)
        return
    assert child.stdout is not None
    try:
        for line in child.stdout:
            kind = line[:1]
            if kind == b"!":  # the worker's own InvalidPath
                raise InvalidPath(line[1:].decode(errors="replace").rstrip("\n"))
            if kind == b"=":
                yield line[1:].decode().rstrip("\n"), -1
                return
            try:
                digest, size = line.split(b" ")
                yield digest.decode(), int(size)
            except ValueError:
                break
        raise InvalidPath(f"cannot cut {path!r}: the process cutting it ended early")
    finally:
        stop_worker(child, kill=True)


def _cut_here(path: str, chunking: Chunking) -> Iterator[tuple[str, int]]:
    """`_cut_elsewhere` in this process."""
    whole = new_hasher()
    try:
        with open(path, "rb", buffering=0) as stream:
            for chunk in cutter(chunking).cut_stream(stream):
                whole.update(chunk.data)
                yield hash_bytes(chunk.data), chunk.length
    except OSError as exc:
        raise InvalidPath(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    yield str(whole.hexdigest()), -1


def _serve(path: str, threshold: int, avg_size: int, min_size: int, max_size: int) -> None:
    """The worker: the chunks of ``path`` cut with these `Chunking` settings as lines
    ``<digest> <size>``, then ``=<whole file's digest>`` (or ``!<reason>`` when it cannot be
    read)."""
    chunking = Chunking(threshold, avg_size, min_size, max_size)
    out = sys.stdout.buffer
    lines: list[bytes] = []
    try:
        for digest, size in _cut_here(path, chunking):
            if size < 0:
                lines.append(f"={digest}\n".encode())
            else:
                lines.append(f"{digest} {size}\n".encode())
            if len(lines) >= _LINES_AT_ONCE:
                out.write(b"".join(lines))
                out.flush()
                lines = []
    except InvalidPath as exc:
        lines.append(b"!" + str(exc).replace("\n", " ").encode() + b"\n")
    out.write(b"".join(lines))
    out.flush()


# Chunks a worker reports at once (about 4 MiB of the file at the default chunk size).
_LINES_AT_ONCE = 64


def cut_file(path: str, digest: str, chunking: Chunking) -> ChunkList:
    """Cut a local file into chunks at once: its chunk list, if it still is the file
    hashed as ``digest`` (`IntegrityError` otherwise)."""
    cut = FileCut(path, digest, chunking)
    for _ in cut.windows(1 << 62):
        pass
    return cut.chunk_list()


def ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the one being
    handed over (so at most that many wait in memory). An error producing them is raised
    here, where the next item would have come; a consumer that stops early stops the
    producer after the item it is working on."""
    handed: queue.Queue[tuple[bool, object]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(handed, (True, item), stop):
                    return
            _offer(handed, (False, None), stop)
        except BaseException as exc:  # noqa: BLE001  # raised in the consumer's thread
            _offer(handed, (False, exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="forebear-ahead", daemon=True)
    producer.start()
    try:
        while True:
            more, item = handed.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()


def _offer(
    handed: queue.Queue[tuple[bool, object]], item: tuple[bool, object], stop: threading.Event
) -> bool:
    """Put ``item`` once there is room, unless the consumer stopped: whether it was put."""
    while not stop.is_set():
        try:
            handed.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


if __name__ == "__main__":
    _serve(sys.argv[1], *(int(setting) for setting in sys.argv[2:6]))
