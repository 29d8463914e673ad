"""Packs written around the page cache: the same bytes on disk whichever way they went."""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import pytest

from forebear.direct import BLOCK, DIRECT_MINIMUM, O_DIRECT, BlockFile, copy_to_new_file
from forebear.hashing import hash_bytes

# pieces that straddle blocks every way: empty, one byte, one short of a block, exactly
# a block, several blocks and a tail, an odd tail
PIECES = (0, 1, BLOCK - 1, BLOCK, 3, 2 * BLOCK + 5, 4095)


def takes_direct_writes(folder: Path) -> bool:
    """Whether this filesystem opens a file for direct writes at all."""
    if not O_DIRECT:
        return False
    try:
        fd = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(folder / "probe")
    return True


def write_pieces(folder: Path, direct: bool) -> tuple[BlockFile, bytes, Path]:
    fd, name = tempfile.mkstemp(dir=folder)
    out = BlockFile(fd, direct=direct)
    pieces = [os.urandom(n) for n in PIECES]
    for piece in pieces:
        out.write(piece)
    out.write(memoryview(b"the end"))
    out.finish(sync=True)
    out.close()
    out.close()  # twice is harmless (a failed seal discards the writer)
    return out, b"".join(pieces) + b"the end", Path(name)


@pytest.mark.parametrize("direct", [True, False])
def test_a_block_file_holds_exactly_what_was_written(tmp_path: Path, direct: bool) -> None:
    fd, _ = tempfile.mkstemp(dir=tmp_path)
    probe = BlockFile(fd, direct=direct)
    probe.write(bytes(BLOCK))
    # direct from the first whole block, exactly where asked for and the filesystem takes it
    assert probe.direct == (direct and takes_direct_writes(tmp_path))
    probe.close()
    out, expected, path = write_pieces(tmp_path, direct)
    assert path.read_bytes() == expected
    assert not out.direct  # the tail went through the page cache


def test_a_device_that_refuses_a_direct_write_gets_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a filesystem that takes the flag but not the alignment does (EINVAL on the
    # write): the file carries on through the page cache, nothing lost or doubled
    fcntl = pytest.importorskip("fcntl")
    if not takes_direct_writes(tmp_path):
        pytest.skip("this filesystem takes no direct writes at all (the test above covers it)")
    real_write = os.write
    refused: list[int] = []

    def refusing_direct_writes(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refusing_direct_writes)
    _, expected, path = write_pieces(tmp_path, True)
    assert refused == [BLOCK]  # it tried once, then wrote every block through the cache
    assert path.read_bytes() == expected


@pytest.mark.parametrize("size", [0, 5, DIRECT_MINIMUM - 1, DIRECT_MINIMUM + 4097, 3 * BLOCK + 1])
@pytest.mark.parametrize("readable", ["file", "reads only"])
def test_a_copy_into_a_new_file_keeps_and_hashes_every_byte(
    tmp_path: Path, size: int, readable: str
) -> None:
    data = os.urandom(size)
    source = tmp_path / "source"
    source.write_bytes(data)

    class ReadsOnly:  # a stream without readinto (a chunk of a file, an HTTP body)
        def __init__(self, stream: io.BufferedReader) -> None:
            self.read = stream.read

    target = tmp_path / "target"
    with open(source, "rb") as stream:
        src = stream if readable == "file" else ReadsOnly(stream)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        found = copy_to_new_file(src, fd)  # type: ignore[arg-type]
    assert found == (hash_bytes(data), size)
    assert target.read_bytes() == data


def test_a_copy_whose_source_stores_another_file_as_it_is_read_keeps_both(
    tmp_path: Path,
) -> None:
    # a caching reader stores what it fetches while it is read: the copy inside the copy
    # must not fill the block the outer copy is still filling
    outer_data = os.urandom(3 * DIRECT_MINIMUM + 123)
    inner_data = os.urandom(2 * DIRECT_MINIMUM + 7)

    class Caching:
        def __init__(self) -> None:
            self.stream = io.BytesIO(outer_data)
            self.stored: tuple[str, int] | None = None

        def read(self, size: int) -> bytes:
            if self.stream.tell() and self.stored is None:  # halfway: store something
                fd = os.open(tmp_path / "inner", os.O_WRONLY | os.O_CREAT, 0o600)
                self.stored = copy_to_new_file(io.BytesIO(inner_data), fd)
            return self.stream.read(min(size, 100_000))

    source = Caching()
    fd = os.open(tmp_path / "outer", os.O_WRONLY | os.O_CREAT, 0o600)
    assert copy_to_new_file(source, fd) == (hash_bytes(outer_data), len(outer_data))  # type: ignore[arg-type]
    assert source.stored == (hash_bytes(inner_data), len(inner_data))
    assert (tmp_path / "outer").read_bytes() == outer_data
    assert (tmp_path / "inner").read_bytes() == inner_data
