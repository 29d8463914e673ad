"""A second process that states files, so that the check of an unchanged re-log of many
files uses two cores: a ``stat`` is a system call the GIL does not keep Python threads
from making, but two threads stating halves of a list were slower than one here (they
take the GIL from each other after every call), while a process beside this one took a
third off. A log's first look at each batch of files is stated by one too, whole: there
the log's other threads (hashing, recording, opening the catalog) took the GIL after
every ``stat``, and 50,000 stats cost 0.55-0.73 s against 0.11 s alone.

`StatHelper` starts this file as a script (``python -I -S stat_worker.py``: no package,
no site, a few milliseconds to start) and sends it lists of paths; it answers each with
five numbers per file (device, inode, size, mtime and ctime in nanoseconds, each as a
signed 8-byte word taken modulo 2**64), or with a refusal when a file cannot be stated.
It imports nothing of forebear: the script runs where the package may not be importable.

A request is an 8-byte length, then the paths (bytes, each ended by NUL); an answer is an
8-byte signed length, then that many bytes of numbers (a negative length: a file could
not be stated). Lengths and numbers are in the machine's byte order.
"""

from __future__ import annotations

import contextlib
import os
import sys
from array import array
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

_WORD = (1 << 64) - 1
_ENCODING, _ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_REFUSED = -1


def stat_numbers(paths: Sequence[str | bytes]) -> array[int]:
    """Five numbers for each path, in order; `OSError` when one cannot be stated."""
    numbers = array("q")
    extend = numbers.extend
    stat = os.stat
    for path in paths:
        info = stat(path)
        row = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        try:
            extend(row)
        except OverflowError:  # rare: see extend_wrapped
            extend_wrapped(numbers, row)
    return numbers


def extend_wrapped(numbers: array[int], row: Sequence[int]) -> None:
    """Add one file's five numbers, each taken modulo 2**64 as a signed 8-byte word holds
    it, after a plain ``extend`` failed on one too large (an inode number can be): the
    numbers of the row it added before that one are taken back first."""
    del numbers[len(numbers) - len(numbers) % 5 :]
    numbers.extend(((n + (1 << 63)) & _WORD) - (1 << 63) for n in row)


# A list of this many paths or more is stated by two processes.
HELPED = 8_000
# The helper's part of such a list: more than half, as the asker also has the rest of its
# work to do while the helper states (measured best here; see docs/speed.md).
SHARE = 0.6


class StatHelper:
    """States lists of files for `numbers`, part of each long list in a helper process
    started on first need; `close` (or leaving the block) stops it. Where no process
    can be started, or the helper ended, every file is stated here. ``share`` and
    ``helped``: the helper's part of a list, and the shortest list it takes part in
    (`SHARE` and `HELPED` unless given)."""

    def __init__(self, share: float | None = None, helped: int | None = None) -> None:
        self._share = share
        self._helped = helped
        self._child: subprocess.Popen[bytes] | None = None
        self._tried = False  # to start the helper
        self._asked = False  # an answer is due
        self._requests = 0  # requests sent so far
        self._gone = False  # it ended, or a request or answer was cut short

    def numbers(self, paths: Sequence[str]) -> array[int]:
        """`stat_numbers` of ``paths``, in their order; `OSError` as it raises it (a
        file the helper could not state is stated here again, to say why)."""
        return self.numbers_later(paths)()

    def numbers_later(self, paths: Sequence[str]) -> Callable[[], array[int]]:
        """`numbers`, in two steps: the helper is asked for the first part of a long list
        and the rest is stated now; the function returned collects the helper's part and
        returns the numbers of every path, in order. The caller can do other work between
        the two (the helper is busy meanwhile), but must call it before the next call."""
        part = SHARE if self._share is None else self._share
        share = int(len(paths) * part) if self.shares(len(paths)) and self._start() else 0
        asked = share > 0 and self._ask(paths[:share])
        request = self._requests
        mine = stat_numbers(paths[share:])
        if not share:
            return lambda: mine

        def collect() -> array[int]:
            # the answer to this request, if it is the one due (not one given up by a
            # later request, nor one of the wrong length)
            due = asked and self._asked and self._requests == request
            theirs = self._answer() if due else None
            if theirs is None or len(theirs) != 5 * share:
                theirs = stat_numbers(paths[:share])  # which says why if it fails
            theirs.extend(mine)
            return theirs

        return collect

    def shares(self, count: int) -> bool:
        """Whether a list of ``count`` paths is shared with the helper."""
        return count >= (HELPED if self._helped is None else self._helped)

    @property
    def pid(self) -> int | None:
        """The helper process's id, once started."""
        return self._child.pid if self._child is not None else None

    def running(self) -> bool:
        """Whether the helper process is there and has not ended."""
        return self._child is not None and self._child.poll() is None

    def _start(self) -> bool:
        if not self._tried:
            self._tried = True
            self._child = _start_helper()
        return self._child is not None and not self._gone

    def _ask(self, paths: Sequence[str]) -> bool:
        child = self._child
        assert child is not None and child.stdin is not None
        if self._asked:
            self._answer()  # an answer left unread (a failure before it) goes first
        if self._gone:
            return False
        # one join and one encoding, as os.fsencode encodes each path (a third of the
        # time it took path by path)
        request = ("\0".join(paths) + "\0").encode(_ENCODING, _ERRORS)
        try:
            child.stdin.write(len(request).to_bytes(8, sys.byteorder) + request)
            child.stdin.flush()
        except OSError:
            self._gone = True
            return False
        self._asked = True
        self._requests += 1
        return True

    def _answer(self) -> array[int] | None:
        """The numbers asked for; None when a file could not be stated or the helper
        ended."""
        assert self._child is not None and self._child.stdout is not None
        self._asked = False
        head = _read_exactly(self._child.stdout, 8)
        if len(head) < 8:
            self._gone = True
            return None
        size = int.from_bytes(head, sys.byteorder, signed=True)
        if size < 0:
            return None
        body = _read_exactly(self._child.stdout, size)
        if len(body) != size:
            self._gone = True
            return None
        numbers = array("q")
        numbers.frombytes(body)
        return numbers

    def close(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        import subprocess

        assert child.stdin is not None and child.stdout is not None
        with contextlib.suppress(OSError):
            child.stdin.close()  # a helper waiting for a request ends
        child.stdout.close()  # one writing an answer no longer wanted ends too
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in a stat (a hung network mount)
            child.kill()
            child.wait()

    def __enter__(self) -> StatHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_helper() -> subprocess.Popen[bytes] | None:
    """This file run as a script by this interpreter; None where that cannot be (no
    interpreter to run: an embedding program, or a frozen one, whose executable is not
    Python)."""
    if not sys.executable or getattr(sys, "frozen", False):
        return None
    import subprocess  # here: a command that states few files starts no helper

    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its failures are handled here, not shown
        )
    except OSError:
        return None


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts = []
    while size > 0:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer requests until the input ends, or the answers are no longer read."""
    with contextlib.suppress(BrokenPipeError):
        _serve(requests, answers)


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    while True:
        head = _read_exactly(requests, 8)
        if len(head) < 8:
            return
        body = _read_exactly(requests, int.from_bytes(head, sys.byteorder))
        try:
            data = stat_numbers(body.split(b"\0")[:-1]).tobytes()
        except OSError:  # the asker states the files itself, and says why
            answers.write(_REFUSED.to_bytes(8, sys.byteorder, signed=True))
        else:
            answers.write(len(data).to_bytes(8, sys.byteorder, signed=True) + data)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
