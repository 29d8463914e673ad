"""xxh3-128 catches accidents, not attackers: two inputs that hash alike are built in
microseconds (`colliding_pair`). A server never lets an upload replace an object it holds
intact, so the bytes of a committed version cannot be swapped for their twin by a writer
of another project. Real server processes over SQLite + a folder and over
PostgreSQL + S3."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx2 as httpx
import pytest

import forebear
from forebear import wire
from forebear.hashing import hash_bytes

from .conftest import format_2
from .serving import ForebearServer

pytestmark = pytest.mark.server

# XXH3's default secret, first 16 bytes: its first two stripes mix each 8-byte lane with
# a lane of the secret, and the low halves of two lanes can be chosen to cancel
SECRET_LANES = struct.unpack("<QQ", bytes.fromhex("b8fe6c3923a44bbe7c01812cf721ad1c"))


def colliding_pair(size: int) -> tuple[bytes, bytes]:
    """Two different inputs of ``size`` bytes with one xxh3-128 digest."""

    def built(high_0: int, high_1: int) -> bytes:
        data = bytearray(b"A" * size)
        struct.pack_into("<Q", data, 0, (high_0 << 32) | (SECRET_LANES[0] & 0xFFFFFFFF))
        struct.pack_into("<Q", data, 64, (high_1 << 32) | (SECRET_LANES[1] & 0xFFFFFFFF))
        return bytes(data)

    first, twin = built(0x11111111, 0x22222222), built(0x11111112, 0x22222221)
    assert first != twin and hash_bytes(first) == hash_bytes(twin)
    return first, twin


def test_an_upload_cannot_replace_the_bytes_of_a_committed_version(tmp_path: Path) -> None:
    format_2(tmp_path / "store")  # a small object is a file of its own, written by an upload
    server = ForebearServer.over_folder(tmp_path)
    try:
        alice = server.user("alice", {"iris": "writer"})
        mallory = server.user("mallory", {"other": "writer"})
        genuine, twin = colliding_pair(2048)
        digest = hash_bytes(genuine)
        (tmp_path / "weights.bin").write_bytes(genuine)
        store = forebear.Store(server.url, token=alice, cache_dir=tmp_path / "cache")
        with store, forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(tmp_path / "weights.bin", name="weights")
        stored = Path(server.direct.objects.path_of(digest))
        before = stored.stat().st_ino
        auth = {"authorization": f"Bearer {mallory}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
            answer = client.put(f"/api/v1/objects/{digest}", content=twin)
        assert answer.status_code == 201  # it does hash to the digest: taken, not stored
        assert stored.stat().st_ino == before
        assert server.direct.artifact(version.qualified_ref).open("weights.bin").read() == genuine
        # a damaged copy is still replaced by an upload that hashes to its digest
        stored.write_bytes(b"x" * len(genuine))
        auth = {"authorization": f"Bearer {alice}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
            assert client.put(f"/api/v1/objects/{digest}", content=genuine).status_code == 201
        assert server.direct.verify() == []
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("size", [2 << 20, 17 << 20], ids=["in-memory", "copied"])
def test_a_staged_upload_cannot_replace_an_object_on_s3(
    team_server: ForebearServer, size: int
) -> None:
    """Both ways a staged upload is published: read whole, or (over 16 MiB) copied to a
    key no URL was signed for and hashed there."""
    genuine, twin = colliding_pair(size)
    digest = hash_bytes(genuine)
    for name, project, data in (("alice", "iris", genuine), ("mallory", "other", twin)):
        token = team_server.user(name, {project: "writer"})
        auth = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=team_server.url, headers=auth, timeout=120) as client:
            asked = client.post("/api/v1/uploads", content=wire.dumps({"sizes": {digest: size}}))
            upload = wire.loads(asked.content)["uploads"][digest]
            assert httpx.put(upload["url"], content=data, timeout=120).status_code == 200
            staged = wire.dumps({"staged": {digest: upload["id"]}})
            assert client.post("/api/v1/uploads/publish", content=staged).status_code == 200
    assert team_server.direct.objects.read_bytes(digest) == genuine
    assert team_server.direct.objects.clean_tmp(0) == []  # no staged or private copy left
