"""Hashing many local files on every core: threads for large files, worker processes for
batches of small ones.

Workers are plain ``python -m forebear.hash_workers`` children speaking a tiny pipe
protocol, not `multiprocessing`: its "spawn" and "forkserver" methods re-run the caller's
main script in every worker (a training script without a ``__main__`` guard would run
again), and "fork" is unsafe in a process that has threads.

Protocol: the parent writes a batch as NUL-terminated file names followed by one extra
NUL; the worker answers one line per file, ``<digest> <size> <device> <inode> <stat size>
<mtime_ns> <ctime_ns>`` (the `Hashed` result, its identity read from the open file once
hashed) or ``!<reason>``.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .hashing import (
    BATCH_FILES,
    POOL_MIN_FILES,
    SMALL_FILE,
    Hashed,
    HashResult,
    Progress,
    hash_large_file,
    hash_small_file,
)
from .processes import thread_pool

if TYPE_CHECKING:
    import subprocess

Record = Callable[[Sequence[int], Sequence[HashResult]], None]


def hash_files(
    paths: Sequence[str],
    sizes: Sequence[int],
    progress: Progress | None = None,
    pool: HashPool | None = None,
) -> list[HashResult]:
    """Digest and size of many local files, on every core.

    Large files are hashed by threads (xxhash releases the GIL on 1 MiB blocks). Many
    small files go to worker processes in batches: per-file work is short system calls
    that threads serialise on the GIL (measured here: 2 threads slower than one, 2
    processes about twice as fast). ``pool``: workers kept for several calls (otherwise
    started for this one).
    """
    if pool is None:
        with HashPool() as own:
            return hash_files(paths, sizes, progress, own)
    results: list[HashResult] = [""] * len(paths)
    small = [i for i, size in enumerate(sizes) if size < SMALL_FILE]
    large = [i for i, size in enumerate(sizes) if size >= SMALL_FILE]

    def hash_large(index: int) -> None:
        results[index] = hash_large_file(paths[index], progress)

    def record(indices: Sequence[int], batch: Sequence[HashResult]) -> None:
        for index, result in zip(indices, batch, strict=True):
            results[index] = result
        if progress is not None:
            progress(sum(r[1] for r in batch if not isinstance(r, str)))

    with thread_pool(pool.size) as threads:
        done_large = threads.map(hash_large, large)
        if pool.size > 1 and len(small) >= POOL_MIN_FILES:
            hash_in_processes(paths, small, pool, record)
        else:
            for start in range(0, len(small), BATCH_FILES):
                indices = small[start : start + BATCH_FILES]
                record(indices, [hash_small_file(paths[i]) for i in indices])
        list(done_large)
    return results


class HashPool:
    """Hashing worker processes kept from one `hash_files` call to the next (a log's
    batches), each started on first use. Starting one costs about 0.1 s here, which a
    log of many files paid again for every batch. Calls run one at a time; `close` (or
    leaving the block) stops the workers."""

    def __init__(self) -> None:
        self.size = max(1, min(os.cpu_count() or 1, 8))
        self._children: dict[int, subprocess.Popen[bytes] | None] = {}  # None: unavailable

    def child(self, slot: int) -> subprocess.Popen[bytes] | None:
        """The worker of ``slot`` (each slot asked by one thread at a time), or None where
        no process can be started (the caller hashes in this process)."""
        if slot not in self._children:
            try:
                self._children[slot] = _start_worker()
            except OSError:
                self._children[slot] = None
        return self._children[slot]

    def lost(self, slot: int) -> None:
        """The worker of ``slot`` died: hash its share in this process from now on."""
        child = self._children.get(slot)
        if child is not None:
            stop_worker(child)
        self._children[slot] = None

    def close(self) -> None:
        """Stop the workers (idle between calls: each ends once its input closes)."""
        for child in self._children.values():
            if child is not None:
                stop_worker(child)
        self._children.clear()

    def __enter__(self) -> HashPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hash_in_processes(
    paths: Sequence[str], indices: Sequence[int], pool: HashPool, record: Record
) -> None:
    """Hash ``paths[i]`` for every i in ``indices`` in ``pool``'s processes, calling
    ``record(batch_indices, results)`` as batches finish. Where a worker cannot be
    started (or dies), its share is hashed in this process."""
    batches: queue.SimpleQueue[Sequence[int]] = queue.SimpleQueue()
    for start in range(0, len(indices), BATCH_FILES):
        batches.put(indices[start : start + BATCH_FILES])
    lock = threading.Lock()

    def serve(slot: int) -> None:
        while True:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                return
            names = [paths[i] for i in batch]
            results: list[HashResult] | None = None
            child = pool.child(slot)
            if child is not None:
                try:
                    results = _ask(child, names)
                except (OSError, ValueError):  # it died, or its answer made no sense:
                    # carry on in this process
                    pool.lost(slot)
            if results is None:
                results = [hash_small_file(name) for name in names]
            with lock:
                record(batch, results)

    with thread_pool(pool.size) as threads:
        for done in [threads.submit(serve, slot) for slot in range(pool.size)]:
            done.result()


def _start_worker() -> subprocess.Popen[bytes]:
    return start_worker("forebear.hash_workers")


def start_worker(module: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m module args...`` with this package importable, over pipes; `OSError`
    where no Python can be run (an embedding or frozen program, whose executable is not an
    interpreter): the caller then does the work in this process."""
    if not sys.executable or getattr(sys, "frozen", False):
        raise OSError("no Python interpreter to start a worker with")
    import subprocess  # a log that hashes nothing (an unchanged re-log) starts no worker

    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def stop_worker(child: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """Close a worker's input and wait for it to end (``kill``: end it first, for a
    worker whose answers are no longer wanted, if it has not ended already)."""
    import subprocess  # imported already: the child was started with it

    assert child.stdin is not None and child.stdout is not None
    try:
        if kill and child.poll() is None:
            child.kill()
        child.stdin.close()
        child.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()
    finally:
        child.stdout.close()


def _ask(child: subprocess.Popen[bytes], names: Sequence[str]) -> list[HashResult]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"".join(os.fsencode(name) + b"\0" for name in names) + b"\0")
    child.stdin.flush()
    results: list[HashResult] = []
    for _ in names:
        line = child.stdout.readline()
        if not line:
            raise OSError("a hashing worker process exited unexpectedly")
        text = line.decode().rstrip("\n")
        if text.startswith("!"):
            results.append(text[1:])
        else:
            digest, size, *after = text.split(" ")
            device, inode, stat_size, mtime, ctime = map(int, after)
            results.append(Hashed(digest, int(size), (device, inode, stat_size, mtime, ctime)))
    return results


def _serve(stdin: int = 0, stdout: int = 1) -> None:
    """The worker's loop: hash each batch it is sent, until its input closes."""
    with os.fdopen(stdin, "rb") as reader, os.fdopen(stdout, "wb") as writer:
        pending = b""
        while True:
            block = reader.read1(1 << 16)
            if not block:
                return
            pending += block
            while (end := pending.find(b"\0\0")) >= 0 or pending.startswith(b"\0"):
                if pending.startswith(b"\0"):  # an empty batch
                    pending = pending[1:]
                    continue
                names, pending = pending[:end].split(b"\0"), pending[end + 2 :]
                out = []
                for name in names:
                    result = hash_small_file(name)
                    if isinstance(result, str):
                        out.append(b"!" + result.replace("\n", " ").encode() + b"\n")
                    else:
                        digest, size, after = result
                        fields = " ".join(map(str, (size, *after)))
                        out.append(f"{digest} {fields}\n".encode())
                writer.write(b"".join(out))
                writer.flush()


if __name__ == "__main__":
    _serve()
