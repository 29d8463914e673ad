"""A second process that states files, so that the check of an unchanged re-log uses two
cores: a ``stat`` is a system call the GIL does not keep Python threads from making, but
two threads stating halves of a list were slower than one here (they take the GIL from
each other after every call), while a process beside this one took a third off.

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
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

_WORD = (1 << 64) - 1
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
        except OverflowError:  # an inode number can be that large: see wrapped
            del numbers[len(numbers) - len(numbers) % 5 :]
            numbers.extend(wrapped(row))
    return numbers


def wrapped(row: Sequence[int]) -> list[int]:
    """Each number modulo 2**64, as a signed 8-byte word holds it."""
    return [((n + (1 << 63)) & _WORD) - (1 << 63) for n in row]


class StatHelper:
    """The helper process, started on first use; ``None`` from `start` when it cannot be
    (then the caller states every file itself)."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        self._asked = False  # an answer is due
        self._gone = False  # it ended, or a request or answer was cut short

    @classmethod
    def start(cls) -> StatHelper | None:
        import subprocess  # here: a re-log of a few files starts no helper

        try:
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # its failures are handled here, not shown
            )
        except OSError:
            return None
        return cls(child)

    @property
    def pid(self) -> int:
        return self._child.pid

    def exited(self) -> bool:
        """Whether the helper process has ended (and been waited for)."""
        return self._child.poll() is not None

    def ask(self, paths: Sequence[str]) -> bool:
        """Send ``paths`` to state; False if the helper is gone (then `answer` is None)."""
        assert self._child.stdin is not None
        if self._asked:
            self.answer()  # an answer left unread (the asker failed before it) goes first
        if self._gone:
            return False
        request = b"".join(os.fsencode(path) + b"\0" for path in paths)
        try:
            self._child.stdin.write(len(request).to_bytes(8, sys.byteorder) + request)
            self._child.stdin.flush()
        except OSError:
            self._gone = True
            return False
        self._asked = True
        return True

    def answer(self) -> array[int] | None:
        """The numbers asked for; None when a file could not be stated or the helper
        ended (the caller then states the files itself, and says why if it fails too)."""
        assert self._child.stdout is not None
        if not self._asked:
            return None
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
        import subprocess

        assert self._child.stdin is not None and self._child.stdout is not None
        with contextlib.suppress(OSError):
            self._child.stdin.close()  # a helper waiting for a request ends
        self._child.stdout.close()  # one writing an answer no longer wanted ends too
        try:
            self._child.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in a stat (a hung network mount)
            self._child.kill()
            self._child.wait()

    def __enter__(self) -> StatHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
