"""The conformance suite for object locations (`forebear.testing.ObjectLocationTests`)
run on every backend we support here, plus what only one backend does.

A backend is done when it passes every test of the suite.
"""

from __future__ import annotations

import gc
import os
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule

from forebear.errors import StoreError
from forebear.hashing import hash_bytes
from forebear.objects import SMALL_BATCH, ObjectLocation, local_root, open_location
from forebear.testing import ObjectLocationTests


class TestLocalFolder(ObjectLocationTests):
    @pytest.fixture
    def location(self, tmp_path: Path) -> ObjectLocation:
        return open_location(str(tmp_path / "objects-root"))

    def test_objects_are_read_only(self, location: ObjectLocation) -> None:
        digest = location.put_bytes(b"frozen")
        mode = os.stat(location.path_of(digest)).st_mode
        assert mode & 0o222 == 0

    def test_no_temporary_files_left(self, location: ObjectLocation, tmp_path: Path) -> None:
        source = tmp_path / "f"
        source.write_bytes(b"data")
        location.put_file(source, hash_bytes(b"data"))
        assert os.listdir(Path(location.root) / "tmp") == []

    def test_unwritable_location_is_a_store_error(self, tmp_path: Path) -> None:
        if os.geteuid() == 0:
            # root ignores permissions; use a path below a regular file instead
            blocker = tmp_path / "file"
            blocker.write_text("x")
            location = open_location(str(blocker / "sub"))
        else:  # pragma: no cover - depends on who runs the tests
            ro = tmp_path / "ro"
            ro.mkdir(mode=0o500)
            location = open_location(str(ro))
        with pytest.raises(StoreError):
            location.put_bytes(b"x")


class TestMemory(ObjectLocationTests):
    @pytest.fixture
    def location(self, tmp_path: Path) -> ObjectLocation:
        return open_location(f"memory://forebear-test-{uuid.uuid4().hex}")


class TestS3(ObjectLocationTests):
    """A real S3 server that checks credentials (SeaweedFS)."""

    @pytest.fixture
    def location(self, s3_url: str) -> ObjectLocation:
        return open_location(s3_url)

    def test_objects_found_absent_leave_no_frame_of_ours_in_a_reference_cycle(
        self, location: ObjectLocation
    ) -> None:
        # A log holds the garbage collector off. fsspec keeps the error it raises in a frame
        # of its own, which the error's traceback holds: a cycle that, while nothing
        # collects it, keeps the frames that asked alive, and their locals (a batch's sets
        # of digests).
        many = [f"{i:032x}" for i in range(SMALL_BATCH + 1)]  # listed, not looked up
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            assert location.sizes(many) == {}
            assert location.sizes(many[:2]) == {}  # looked up one by one
            assert location.read_chunk_list(many[0]) is None
            gc.collect()
            held = [
                frame.f_code.co_name
                for frame in gc.garbage
                if isinstance(frame, types.FrameType)
                and str(frame.f_globals.get("__name__", "")).startswith("forebear.")
            ]
        finally:
            gc.garbage.clear()
            gc.set_debug(0)
            gc.enable()
        assert held == []

    def test_wrong_credentials_are_one_clear_error(
        self, s3_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        location = open_location(s3_url, {"skip_instance_cache": True})
        with pytest.raises(StoreError, match="permission denied") as caught:
            location.ensure_format()
        assert "not-the-secret" not in str(caught.value)

    def test_listings_are_not_kept(self, location: ObjectLocation) -> None:
        """A long-running server lists its objects again and again: fsspec would keep
        every listing (a store of a million objects, in memory) unless told not to."""
        digests = [location.put_bytes(f"object {n}\n".encode()) for n in range(300)]
        assert set(location.sizes(digests)) == set(digests)  # listed, prefix by prefix
        assert sum(1 for _ in location.iter_objects()) == 300
        assert len(location.fs.dircache) == 0

    def test_large_object_is_one_multipart_upload(
        self, location: ObjectLocation, tmp_path: Path
    ) -> None:
        source = tmp_path / "large.bin"
        with source.open("wb") as f:
            for _ in range(12):
                f.write(os.urandom(1 << 20))
        digest = hash_bytes(source.read_bytes())
        location.fs.default_block_size = 5 * 1024 * 1024  # force several parts
        assert location.put_file(source, digest)
        assert location.read_bytes(digest) == source.read_bytes()
        info = location.fs.info(location.path_of(digest))
        assert "-" in str(info.get("ETag", ""))  # assembled from parts


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def moto_options(endpoint: str) -> dict[str, object]:
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint},
        "skip_instance_cache": True,
    }


class TestS3Moto(ObjectLocationTests):
    """moto's in-process S3: quick, but it accepts any credentials."""

    @pytest.fixture
    def location(self, moto_endpoint: str) -> ObjectLocation:
        options = moto_options(moto_endpoint)
        bucket = f"moto-{uuid.uuid4().hex[:10]}"
        location = open_location(f"s3://{bucket}/store", options)
        location.fs.mkdir(bucket)
        return location

    def test_missing_bucket_is_a_clear_error(self, moto_endpoint: str) -> None:
        location = open_location("s3://no-such-bucket-here/store", moto_options(moto_endpoint))
        with pytest.raises(StoreError, match="create the bucket"):
            location.ensure_format()

    def test_many_objects_are_checked_by_listing(self, location: ObjectLocation) -> None:
        stored = {location.put_bytes(str(i).encode()) for i in range(60)}
        absent = {hash_bytes(f"absent {i}".encode()) for i in range(60)}
        calls: list[str] = []
        original = location.fs.exists
        location.fs.exists = lambda path, **kw: calls.append(path) or original(path, **kw)
        assert location.has_many(stored | absent) == stored
        assert calls == []  # no request per object


class ObjectLocationMachine(RuleBasedStateMachine):
    """The object layer behaves like a dict from digest to bytes."""

    stored = Bundle("stored")

    def __init__(self) -> None:
        super().__init__()
        self.location = open_location(f"memory://forebear-machine-{uuid.uuid4().hex}")
        self.model: dict[str, bytes] = {}

    @rule(target=stored, data=st.binary(max_size=64))
    def put(self, data: bytes) -> str:
        digest = self.location.put_bytes(data)
        assert digest == hash_bytes(data)
        self.model[digest] = data
        return digest

    @rule(digest=stored)
    def read(self, digest: str) -> None:
        if digest in self.model:
            assert self.location.read_bytes(digest) == self.model[digest]
        else:
            assert not self.location.has(digest)

    @rule(digest=stored)
    def delete(self, digest: str) -> None:
        self.location.delete(digest)
        self.model.pop(digest, None)

    @rule()
    def listing_matches(self) -> None:
        assert set(self.location.iter_digests()) == set(self.model)


TestObjectLocationMachine = ObjectLocationMachine.TestCase
TestObjectLocationMachine.settings = settings(
    max_examples=30, stateful_step_count=20, suppress_health_check=[HealthCheck.too_slow]
)


@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=97))
def test_streamed_digest_equals_digest_of_bytes(data: bytes, block: int) -> None:
    import io

    from forebear.hashing import hash_stream

    class Chunky(io.RawIOBase):
        def __init__(self) -> None:
            self.buffer = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self.buffer.read(min(block, len(b)))
            b[: len(chunk)] = chunk
            return len(chunk)

    assert hash_stream(Chunky()) == (hash_bytes(data), len(data))


@pytest.mark.parametrize(
    "path",
    ["store", "./store/", "a//b/", "a/../b", "../x", ".", "./", "~", "~/s", "/", "/tmp/x/",
     "/tmp//a/../b", "/tmp/x/.", "a b/c", "~nobody-here/x", "", "file:", "local:x", "a:b/c"],
)  # fmt: skip
def test_a_plain_folder_opens_where_fsspec_would_put_it(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local folders are opened without fsspec (start-up time): the root must be the one
    fsspec's local filesystem gives, or a store would move between commands."""
    import fsspec

    monkeypatch.chdir(tmp_path)
    location = open_location(path)
    assert location.root == fsspec.core.url_to_fs(path)[1]
    if ":" not in path:
        assert local_root(path) == location.root
    assert location.root == open_location(f"file://{location.root}").root
    assert location.fs.protocol == fsspec.filesystem("file").protocol  # made on first use
