"""Conformance tests for object locations, shipped with forebear so that any backend can
prove itself: subclass `ObjectLocationTests`, give it a ``location`` fixture (an empty
location) and, where the filesystem needs it, a ``raw_put`` that writes bytes behind the
location's back. forebear runs it on a local folder, ``memory://``, SeaweedFS and moto::

    class TestMyBackend(ObjectLocationTests):
        @pytest.fixture
        def location(self, tmp_path):
            return open_location("myfs://bucket/store", {...})

Needs pytest (``pip install forebear[test]``); nothing else in forebear imports this.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from .errors import IntegrityError, ObjectNotFound, StoreError, StoreVersionError
from .hashing import hash_bytes
from .objects import (
    CHUNKED_FORMAT,
    FORMAT_FILE,
    SMALL_BATCH,
    ObjectLocation,
    object_key,
)


class ObjectLocationTests:
    """Behaviour every object location must have: whole objects under their digest,
    checked reads, listings that ignore what is not an object, chunk lists, the format
    file. A subclass gives the ``location`` fixture every test here takes: an empty
    location of its kind."""

    def raw_put(self, location: ObjectLocation, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` under the location's root, bypassing its checks (to
        corrupt an object, or leave a foreign file)."""
        path = f"{location.root}/{key}"
        location.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if location.is_local and os.path.exists(path):
            os.chmod(path, 0o644)
        location.fs.pipe_file(path, data)

    # -- objects -------------------------------------------------------------------------

    def test_round_trip_bytes(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"hello")
        assert digest == hash_bytes(b"hello")
        assert location.has(digest)
        assert location.has(digest, 5) and not location.has(digest, 6)
        assert location.read_bytes(digest) == b"hello"
        assert location.size_of(digest) == 5

    def test_layout_is_two_hex_fanout(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"layout")
        assert location.path_of(digest).endswith(f"objects/{digest[:2]}/{digest[2:]}")
        assert object_key(digest) == f"objects/{digest[:2]}/{digest[2:]}"
        assert location.fs.exists(location.path_of(digest))

    def test_put_file_and_get_file(self, location: ObjectLocation, tmp_path: Path) -> None:
        source = tmp_path / "big.bin"
        data = os.urandom(3 * 1024 * 1024 + 17)  # several read blocks
        source.write_bytes(data)
        digest = hash_bytes(data)
        assert location.put_file(source, digest) is True
        assert location.put_file(source, digest) is False  # already stored: nothing written
        dest = tmp_path / "out" / "copy.bin"
        location.get_file(digest, dest)
        assert dest.read_bytes() == data

    def test_put_files_stores_each(self, location: ObjectLocation, tmp_path: Path) -> None:
        items: list[tuple[str | os.PathLike[str], str]] = []
        for i in range(5):
            path = tmp_path / f"f{i}"
            path.write_bytes(f"file {i}".encode())
            items.append((path, hash_bytes(f"file {i}".encode())))
        location.put_files(items)
        location.flush()
        for i in range(5):
            assert location.read_bytes(hash_bytes(f"file {i}".encode())) == f"file {i}".encode()

    def test_put_file_refuses_a_file_that_changed(
        self, location: ObjectLocation, tmp_path: Path
    ) -> None:
        source = tmp_path / "f.txt"
        source.write_bytes(b"original")
        stale_digest = hash_bytes(b"something else")
        with pytest.raises(IntegrityError, match="changed while it was being logged"):
            location.put_file(source, stale_digest)
        assert not location.has(stale_digest)

    def test_put_stream_publishes_only_matching_bytes(self, location: ObjectLocation) -> None:
        digest = hash_bytes(b"streamed")
        location.put_stream(io.BytesIO(b"streamed"), digest)
        assert location.read_bytes(digest) == b"streamed"
        wrong = hash_bytes(b"promised")
        with pytest.raises(IntegrityError):
            location.put_stream(io.BytesIO(b"delivered"), wrong)
        assert not location.has(wrong)
        assert wrong not in set(location.iter_digests())

    def test_missing_object(self, location: ObjectLocation) -> None:
        digest = hash_bytes(b"never stored")
        assert not location.has(digest)
        assert location.has_many([digest]) == set()
        with pytest.raises(ObjectNotFound):
            location.open(digest)
        with pytest.raises(ObjectNotFound):
            location.size_of(digest)
        assert location.actual_digest(digest) is None
        assert location.raw_bytes(digest) is None

    def test_corrupted_object_is_refused(self, location: ObjectLocation, tmp_path: Path) -> None:
        digest = location.put_bytes(b"precious bytes")
        self.raw_put(location, object_key(digest), b"precious bytez")
        with pytest.raises(IntegrityError, match="corrupted"):
            location.read_bytes(digest)
        with pytest.raises(IntegrityError), location.stream(digest) as stream:
            stream.read()
        dest = tmp_path / "dest.bin"
        with pytest.raises(IntegrityError):
            location.get_file(digest, dest)
        assert not dest.exists()  # no bad file handed over
        assert location.actual_digest(digest) == hash_bytes(b"precious bytez")
        assert location.actual_digests([digest]) == {digest: hash_bytes(b"precious bytez")}

    def test_a_short_object_is_not_relied_on(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"twelve bytes")
        self.raw_put(location, object_key(digest), b"twelve")
        assert location.present({digest: 12}) == set()
        assert location.put_bytes(b"twelve bytes") == digest  # stored again, whole
        assert location.read_bytes(digest) == b"twelve bytes"

    def test_delete(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"bye")
        location.delete(digest)
        assert not location.has(digest)
        location.delete(digest)  # deleting twice is fine

    def test_delete_many(self, location: ObjectLocation) -> None:
        digests = [location.put_bytes(f"object {i}".encode()) for i in range(40)]
        gone, kept = digests[:30], digests[30:]
        location.delete_many([*gone, hash_bytes(b"never stored")])  # missing ones are fine
        assert set(location.iter_digests()) == set(kept)
        location.delete_many([])

    def test_seek_and_partial_read(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"0123456789")
        with location.open(digest) as f:
            f.seek(4)
            assert f.read(3) == b"456"
            f.seek(0)
            assert f.read() == b"0123456789"

    # -- listings ------------------------------------------------------------------------

    def test_iter_digests_ignores_foreign_files(self, location: ObjectLocation) -> None:
        digests = {location.put_bytes(b"a"), location.put_bytes(b"b")}
        self.raw_put(location, "objects/zz/not-an-object", b"x")
        self.raw_put(location, "objects/ab/short", b"x")
        self.raw_put(location, "objects/README", b"x")
        assert set(location.iter_digests()) == digests
        assert {(o.digest, o.size) for o in location.iter_objects()} == {(d, 1) for d in digests}
        skipped = sorted(digests)[0]
        assert {o.digest for o in location.iter_objects(skip={skipped})} == digests - {skipped}

    def test_sizes_of_many_objects(self, location: ObjectLocation) -> None:
        """More objects than are checked one by one: the listing path, which must find
        exactly the stored ones, with their sizes, however many share a prefix."""
        count = 4 * SMALL_BATCH
        stored = {location.put_bytes(b"x" * i): i for i in range(1, count + 1)}
        absent = {hash_bytes(f"absent {i}".encode()) for i in range(count)}
        assert location.sizes(set(stored) | absent) == stored
        assert location.has_many(set(stored) | absent) == set(stored)
        wrong = dict(stored)
        first = next(iter(wrong))
        wrong[first] += 1
        assert location.present(wrong) == set(stored) - {first}

    def test_holds_objects(self, location: ObjectLocation) -> None:
        location.ensure_format()
        assert not location.holds_objects()
        location.put_bytes(b"something")
        assert location.holds_objects()

    # -- chunk lists ---------------------------------------------------------------------

    def test_chunk_lists(self, location: ObjectLocation) -> None:
        location.ensure_format()
        file_digest = hash_bytes(b"a file cut into chunks")
        assert location.read_chunk_list(file_digest) is None
        location.put_chunk_list(file_digest, b"first list")
        assert location.read_chunk_list(file_digest) == b"first list"
        assert list(location.iter_chunk_lists()) == [file_digest]
        assert list(location.iter_digests()) == []  # chunk lists are not objects
        location.put_chunk_list(file_digest, b"other list")  # same length: kept
        assert location.read_chunk_list(file_digest) == b"first list"
        location.put_chunk_list(file_digest, b"other list", replace=True)  # a repair
        assert location.read_chunk_list(file_digest) == b"other list"
        location.delete_chunk_list(file_digest)
        assert location.read_chunk_list(file_digest) is None
        assert list(location.iter_chunk_lists()) == []
        location.put_chunk_list(file_digest, b"first list")
        location.delete_chunk_lists([file_digest, hash_bytes(b"no list")])
        assert list(location.iter_chunk_lists()) == []

    def test_first_chunk_list_marks_the_format(self, location: ObjectLocation) -> None:
        self.raw_put(location, FORMAT_FILE, b'{"format_version": 1, "hash": "xxh3-128"}')
        assert location.ensure_format().format_version == 1
        location.put_chunk_list(hash_bytes(b"chunked"), b"list")
        found = location.read_format()
        assert found is not None and found.format_version == CHUNKED_FORMAT

    # -- the format file -----------------------------------------------------------------

    def test_format_file(self, location: ObjectLocation) -> None:
        assert location.read_format() is None
        made = location.ensure_format("0" * 32)
        assert made.store_id == "0" * 32
        assert location.ensure_format() == made  # idempotent
        self.raw_put(location, FORMAT_FILE, b'{"format_version": 99, "hash": "xxh3-128"}')
        with pytest.raises(StoreVersionError, match="format version 99"):
            location.ensure_format()
        self.raw_put(location, FORMAT_FILE, b"not json")
        with pytest.raises(StoreError, match="not a forebear format file"):
            location.ensure_format()

    def test_store_id_recorded_later(self, location: ObjectLocation) -> None:
        self.raw_put(location, FORMAT_FILE, b'{"format_version": 2, "hash": "xxh3-128"}')
        assert location.ensure_format().store_id is None
        location.record_store_id("1" * 32)
        found = location.read_format()
        assert found is not None and found.store_id == "1" * 32

    # -- capabilities --------------------------------------------------------------------

    def test_local_objects_only_where_local(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"on this machine?")
        if location.is_local:
            assert Path(location.local_object(digest)).read_bytes() == b"on this machine?"
        else:
            with pytest.raises(StoreError):
                location.local_object(digest)
