"""Readers that never hand over a byte that has not been checked against its digest.

Two shapes, for two kinds of caller:

- `CheckedAtEnd` re-hashes a stream as it is read and raises `IntegrityError` on the read
  that reaches its end. Only for callers that keep nothing until the stream ended without
  error: a copy to a temporary file renamed into place afterwards, or ``read()`` of the
  whole object at once.
- `verified_copy` reads the whole stream first (into memory while small, else a private
  temporary file), checks it, and only then returns a seekable stream of those bytes: what
  `ArtifactVersion.open` hands to users, who may read a few bytes, seek, and stop.

This module knows nothing of stores, versions or runs.
"""

from __future__ import annotations

import io
from typing import IO, Any, BinaryIO, cast

from .errors import IntegrityError
from .hashing import BLOCK_SIZE, new_hasher

# Verified copies stay in memory up to this size, then move to a temporary file.
IN_MEMORY = 8 << 20


def corrupted(label: str, actual: str, expected: str) -> IntegrityError:
    return IntegrityError(
        f"{label}: stored bytes hash to {actual}, expected {expected}; the data is "
        "corrupted (run 'forebear verify')"
    )


class CheckedAtEnd(io.RawIOBase):
    """A read-only stream over one object's bytes that raises `IntegrityError` on the read
    that reaches the end if they do not hash to ``digest`` (or are not ``size`` bytes
    long). It cannot seek: a check needs every byte from the first."""

    def __init__(self, raw: BinaryIO, digest: str, label: str, size: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._label = label
        self._size = size
        self._hasher = new_hasher()
        self._read = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        if n:
            self._hasher.update(data)
            self._read += n
        elif not self._checked and len(view):
            self._checked = True
            actual = self._hasher.hexdigest()
            if actual != self._digest:
                raise corrupted(self._label, actual, self._digest)
            if self._size is not None and self._read != self._size:
                raise IntegrityError(
                    f"{self._label}: {self._read} bytes stored, {self._size} expected; the "
                    "data is corrupted (run 'forebear verify')"
                )
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def checked_at_end(raw: BinaryIO, digest: str, label: str) -> io.BufferedReader:
    return io.BufferedReader(CheckedAtEnd(raw, digest, label), BLOCK_SIZE)


class _Copy(io.RawIOBase):
    """A seekable read-only view of a private temporary copy, closed with it (and quietly
    when dropped unclosed, like any file object)."""

    def __init__(self, copy: IO[bytes]) -> None:
        super().__init__()
        self._copy = copy

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._copy.read(len(view))
        view[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._copy.seek(offset, whence)

    def tell(self) -> int:
        return self._copy.tell()

    def close(self) -> None:
        if not self.closed:
            self._copy.close()
        super().close()


def verified_copy(raw: BinaryIO, digest: str, label: str) -> BinaryIO:
    """Every byte of ``raw``, checked against ``digest`` before the first is handed over,
    as a seekable stream (``raw`` is read to its end and closed)."""
    import tempfile  # a command that reads nothing this way does not import it

    copy = tempfile.SpooledTemporaryFile(IN_MEMORY)  # noqa: SIM115 - closed by _Copy
    hasher = new_hasher()
    try:
        with raw:
            while block := raw.read(BLOCK_SIZE):
                hasher.update(block)
                copy.write(block)
        actual = hasher.hexdigest()
        if actual != digest:
            raise corrupted(label, actual, digest)
        copy.seek(0)
    except BaseException:
        copy.close()
        raise
    return cast(BinaryIO, io.BufferedReader(_Copy(cast(IO[bytes], copy)), BLOCK_SIZE))
