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

Remembering (a worker started with ``--remember <stat cache> <key file>``): once a batch
is answered, the worker records its files' digests in the stat cache itself (the parent
then skips them), each under the identity it read and the moment it began the batch, so
a file changed while it was read is racy there and hashed again next time. Done in the
logging process, this was a sixth of its work for a log of many small files (sealing
each row, and SQLite's inserts), while the workers sat idle half of the time.

Staging (a worker started with ``--stage <folder>``): the worker also appends the bytes of
each small file it reads whole to a staging file of that folder (each distinct content
once), so that a log of many small files reads them once, not a second time to store
them. The file's line then ends with `` <staging file name> <offset>``. A staging file
that reaches `STAGE_TARGET` bytes is finished (written, then synced in a thread while
hashing goes on) and, once synced, reported on a line of its own after a batch's lines,
``=<name> <xxh3-128 of its bytes> <size> <objects>``; an empty batch (a lone NUL) asks the
worker to finish its current one, and is answered by the ``=`` lines still due and then
``.``. The parent turns finished staging files into packs (see `forebear.staged`); one
never reported is never used.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import xxhash

from .hashing import (
    BATCH_FILES,
    POOL_MIN_FILES,
    SMALL_FILE,
    Hashed,
    HashResult,
    Progress,
    hash_large_file,
    hash_small_file,
    read_small_file,
)
from .processes import thread_pool

# A staging file is finished once it holds this many bytes: the size of a pack, so that a
# staging file whose every object is wanted becomes one as it is.
STAGE_TARGET = 32 << 20

if TYPE_CHECKING:
    import subprocess

    from .direct import BlockFile
    from .statcache import RememberBehind, StatCache

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


class StagedFile(NamedTuple):
    """A staging file a worker finished: where it is, the digest and size of its bytes,
    and how many objects (distinct contents) it holds."""

    path: str
    digest: str
    size: int
    objects: int


class HashPool:
    """Hashing worker processes kept from one `hash_files` call to the next (a log's
    batches), each started on first use. Starting one costs about 0.1 s here, which a
    log of many files paid again for every batch. Calls run one at a time; `close` (or
    leaving the block) stops the workers.

    ``stage_into``: a folder where the workers stage the small files' bytes as they hash
    them (see the module's docstring); `finish_staging` then says which staging files are
    whole, and `staging_files` names every one they began. ``remember_in``: the stat cache
    where the workers record the digests of the files they hash (see the module's
    docstring)."""

    def __init__(self, stage_into: str | None = None, remember_in: StatCache | None = None) -> None:
        self.size = max(1, min(os.cpu_count() or 1, 8))
        self._children: dict[int, subprocess.Popen[bytes] | None] = {}  # None: unavailable
        self.stage_into = stage_into
        self.remember_in = remember_in
        self.staged: dict[str, StagedFile] = {}  # finished staging files, by name
        self._names: dict[str, str] = {}  # each staging file's name, one string for all

    def staging_name(self, name: str) -> str:
        """``name`` as the one string kept for it (rows of a million files share it)."""
        return self._names.setdefault(name, name)

    def staging_files(self) -> list[str]:
        """The path of every staging file a worker began (finished or not)."""
        assert self.stage_into is not None or not self._names
        return [os.path.join(self.stage_into or "", name) for name in self._names]

    def finished(self, line: str) -> None:
        """Note a worker's ``=<name> <digest> <size> <objects>`` line."""
        name, digest, size, objects = line[1:].split(" ")
        if self.stage_into is None or os.sep in name or name in ("", ".", ".."):
            raise ValueError(f"a hashing worker named a staging file {name!r}")
        path = os.path.join(self.stage_into, name)
        self.staged[self.staging_name(name)] = StagedFile(path, digest, int(size), int(objects))

    def finish_staging(self) -> dict[str, StagedFile]:
        """Have every worker finish its staging file; the finished ones, by name."""
        for slot, child in list(self._children.items()):
            if child is None or self.stage_into is None:
                continue
            try:
                _finish(child, self)
            except (OSError, ValueError):  # its last staging file stays unused
                self.lost(slot)
        return dict(self.staged)

    def child(self, slot: int) -> subprocess.Popen[bytes] | None:
        """The worker of ``slot`` (each slot asked by one thread at a time), or None where
        no process can be started (the caller hashes in this process)."""
        if slot not in self._children:
            try:
                self._children[slot] = _start_worker(*self._worker_options())
            except OSError:
                self._children[slot] = None
        return self._children[slot]

    def _worker_options(self) -> list[str]:
        """A worker's arguments: where it stages, and where it remembers."""
        options = [] if self.stage_into is None else ["--stage", self.stage_into]
        if self.remember_in is not None:
            cache = self.remember_in
            options += ["--remember", str(cache.path), str(cache.key_path)]
        return options

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
                    results = _ask(child, names, pool)
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


def _start_worker(*args: str) -> subprocess.Popen[bytes]:
    return start_worker("forebear.hash_workers", *args)


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


def _ask(child: subprocess.Popen[bytes], names: Sequence[str], pool: HashPool) -> list[HashResult]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"".join(os.fsencode(name) + b"\0" for name in names) + b"\0")
    child.stdin.flush()
    lines: list[bytes] = []
    while len(lines) < len(names):
        line = child.stdout.readline()
        if not line:
            raise OSError("a hashing worker process exited unexpectedly")
        if line.startswith(b"="):
            pool.finished(line.decode().rstrip("\n"))
        else:
            lines.append(line)
    # decoded and split at once, not line by line (a million lines for as many files)
    return [_result(text, pool) for text in b"".join(lines).decode().split("\n")[:-1]]


def _result(text: str, pool: HashPool) -> HashResult:
    """One file's answer line, without its newline."""
    if text.startswith("!"):
        return text[1:]
    digest, size, device, inode, stat_size, mtime, ctime, *staging = text.split(" ")
    staged = None
    if len(staging) == 2:
        staged = (pool.staging_name(staging[0]), int(staging[1]))
    identity = (int(device), int(inode), int(stat_size), int(mtime), int(ctime))
    return Hashed(digest, int(size), identity, staged, pool.remember_in is not None)


def _finish(child: subprocess.Popen[bytes], pool: HashPool) -> None:
    """Ask a worker to finish its staging file, and note it."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"\0")
    child.stdin.flush()
    while (line := child.stdout.readline()) != b".\n":
        if not line.startswith(b"="):
            raise OSError("a hashing worker process exited unexpectedly")
        pool.finished(line.decode().rstrip("\n"))


class Stager:
    """A worker's staging file: small files' bytes appended as they are hashed, each
    distinct content once, written in aligned blocks around the page cache (a `BlockFile`:
    a block goes out on a thread while the next fills); a full one is synced in a thread
    of its own (hashing goes on meanwhile), and only then reported (it may become a pack as
    it is, renamed into place). Written through the page cache instead, every staged MiB
    took fresh pages of memory first: a log of 50,000 small files spent 0.3 s more in
    system calls that way. A write that fails (a full disk) ends staging for this worker:
    the file is removed and never reported, so the parent stores those files from their
    sources."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.failed = False
        self.syncing: list[threading.Thread] = []
        self.synced: list[bytes] = []  # the ``=`` lines of the files synced
        self.lock = threading.Lock()
        self._begin()

    def _begin(self) -> None:
        self.name = f"{os.getpid()}-stage-{os.urandom(8).hex()}"
        self.file: BlockFile | None = None  # opened with the first bytes staged
        self.size = 0
        self.hasher = xxhash.xxh3_128()
        self.offsets: dict[str, int] = {}

    def add(self, digest: str, data: bytes) -> tuple[str, int] | None:
        """Stage ``data`` (whose digest is ``digest``): its place, or None if not staged."""
        if self.failed:
            return None
        if self.size >= STAGE_TARGET:
            self.finish()
            if self.failed:
                return None
        offset = self.offsets.get(digest)
        if offset is None:
            if not self._write(data):
                return None
            offset = self.offsets[digest] = self.size
            self.hasher.update(data)
            self.size += len(data)
        return self.name, offset

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _write(self, data: bytes | None) -> bool:
        """Append ``data``, or (None) write out all that is still held."""
        try:
            if self.file is None:
                self.file = self._open()
            if data is None:
                self.file.finish(sync=False)
            else:
                self.file.write(data)
        except OSError:
            self.failed = True
            if self.file is not None:
                self.file.close()
                with contextlib.suppress(OSError):
                    os.unlink(self._path(self.name))
            return False
        return True

    def _open(self) -> BlockFile:
        from .direct import BlockFile  # the worker needs it only to stage

        os.makedirs(self.folder, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        return BlockFile(os.open(self._path(self.name), flags, 0o600), direct=True)

    def finish(self) -> None:
        """Write out the staging file, sync it in a thread, and begin the next."""
        if self.failed or self.file is None or not self._write(None):
            return
        line = f"={self.name} {self.hasher.hexdigest()} {self.size} {len(self.offsets)}\n"
        thread = threading.Thread(target=self._sync, args=(self.file, self.name, line.encode()))
        thread.start()
        self.syncing.append(thread)
        self._begin()

    def _sync(self, file: BlockFile, name: str, line: bytes) -> None:
        try:
            os.fsync(file.fd)
        except OSError:  # a write-back error: the file cannot be trusted
            with contextlib.suppress(OSError):
                os.unlink(self._path(name))
            return
        finally:
            file.close()
        with self.lock:
            self.synced.append(line)

    def lines(self, wait: bool = False) -> bytes:
        """The ``=`` lines of the files synced since last asked (``wait``: all of them)."""
        if wait:
            for thread in self.syncing:
                thread.join()
        self.syncing = [thread for thread in self.syncing if thread.is_alive()]
        with self.lock:
            found, self.synced = b"".join(self.synced), []
        return found


def _answer(name: bytes, stager: Stager | None) -> tuple[bytes, Hashed | None]:
    """A worker's line for one file, and what it found (None: the file could not be
    read)."""
    result, data = read_small_file(name)
    if isinstance(result, str):
        return b"!" + result.replace("\n", " ").encode() + b"\n", None
    digest, size, after, *_ = result
    fields = " ".join(map(str, (size, *after)))
    place = stager.add(digest, data) if stager is not None and data is not None else None
    if place is None:
        return f"{digest} {fields}\n".encode(), result
    return f"{digest} {fields} {place[0]} {place[1]}\n".encode(), result


def _answer_batch(
    writer: BinaryIO, names: list[bytes], stager: Stager | None, behind: RememberBehind | None
) -> None:
    """Hash a batch and answer it, then have its digests recorded in the stat cache (when
    ``behind`` is given): each under the identity read once hashed, and the moment the
    batch was begun."""
    began_ns = time.time_ns()
    answers = [_answer(name, stager) for name in names]
    writer.write(b"".join(line for line, _ in answers))
    if stager is not None:
        writer.write(stager.lines())
    writer.flush()
    if behind is not None:
        from .statcache import FileStat

        behind.add(
            [
                (FileStat(*found.after), found.digest, began_ns)
                for _, found in answers
                if found is not None and found.size == found.after[2]
            ]
        )


def _serve(
    stdin: int = 0,
    stdout: int = 1,
    stage_into: str | None = None,
    remember_in: tuple[str, str] | None = None,
) -> None:
    """The worker's loop: hash each batch it is sent, until its input closes."""
    stager = Stager(stage_into) if stage_into is not None else None
    behind = None
    if remember_in is not None:
        from .statcache import RememberBehind, StatCache

        behind = RememberBehind(StatCache(Path(remember_in[0]), Path(remember_in[1])))
    try:
        _answer_batches(stdin, stdout, stager, behind)
    finally:
        if behind is not None:
            behind.close()


def _answer_batches(
    stdin: int, stdout: int, stager: Stager | None, behind: RememberBehind | None
) -> None:
    """Answer every batch that comes in, until the input closes."""
    with os.fdopen(stdin, "rb") as reader, os.fdopen(stdout, "wb") as writer:
        pending = b""
        while True:
            block = reader.read1(1 << 16)
            if not block:
                return
            pending += block
            while (end := pending.find(b"\0\0")) >= 0 or pending.startswith(b"\0"):
                if pending.startswith(b"\0"):  # an empty batch: finish the staging file
                    pending = pending[1:]
                    if stager is not None:
                        stager.finish()
                        writer.write(stager.lines(wait=True))
                    writer.write(b".\n")
                    writer.flush()
                    continue
                names, pending = pending[:end].split(b"\0"), pending[end + 2 :]
                _answer_batch(writer, names, stager, behind)


def _options(args: list[str]) -> dict[str, Any]:
    """`_serve`'s keywords from a worker's arguments (see `HashPool.child`)."""
    options: dict[str, Any] = {}
    while args:
        if args[0] == "--stage" and len(args) >= 2:
            options["stage_into"], args = args[1], args[2:]
        elif args[0] == "--remember" and len(args) >= 3:
            options["remember_in"], args = (args[1], args[2]), args[3:]
        else:
            raise SystemExit(f"unknown arguments for a hashing worker: {args}")
    return options


if __name__ == "__main__":
    _serve(**_options(sys.argv[1:]))
