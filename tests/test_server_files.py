"""A large file goes to a forebear server as one stream: its chunk list, then the chunks the
server lacks, each checked as it arrives, and the chunk list proven end to end before it
is written. Real server processes over SQLite + a folder, and over PostgreSQL + S3."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy

import forebear
from forebear import wire
from forebear.chunking import ChunkList, cut_bytes
from forebear.hashing import hash_bytes
from forebear.objects.file_streams import encode_header
from forebear.remote.staged_files import split_parts

from .conftest import format_2
from .serving import ForebearServer
from .test_server_bundles import requests_to

pytestmark = pytest.mark.server


def chunk_list(server: ForebearServer, file: bytes, *parts: bytes) -> ChunkList:
    """A chunk list claiming ``parts`` make up ``file`` (true or not)."""
    return ChunkList(
        hash_bytes(file), len(file), tuple(hash_bytes(p) for p in parts),
        tuple(len(p) for p in parts), server.direct.chunking,
    )  # fmt: skip


def upload(client: httpx.Client, chunks: ChunkList, sent: list[int], body: bytes) -> httpx.Response:
    return client.post("/api/v1/files", content=encode_header(chunks, sent) + b"\n" + body)


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_gc_beside_a_log_through_the_server_keeps_what_the_client_sent(
    server: ForebearServer,
    tmp_path: Path,
    make_tree: Callable[..., Path],
    packed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client's objects (bundles, a file's chunks, the manifest) are committed later, in
    one request, under no writer's lease: a gc with no grace period run just before the
    commit keeps what the client sent, and the log commits whole. The hold ends at that
    commit: once the version is deleted, the same gc takes its bytes."""
    if packed:
        with server.store() as admin:
            admin.upgrade()
    token = server.user("alice", {"iris": "writer"})
    data = make_tree("data", {f"f{n:02d}.txt": f"row {n}\n" * 50 for n in range(40)})
    (data / "table.bin").write_bytes(os.urandom(20 << 20))
    from forebear.remote import client as remote_client

    real_post = remote_client.ServerClient.post
    collected: list[forebear.GcReport] = []

    def collect_then_post(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        if path == "/api/v1/commit":
            with forebear.Store(server.db_url, server.objects_url) as direct:
                collected.append(direct.gc(grace=dt.timedelta(0)))
        return real_post(self, path, *args, **kwargs)

    monkeypatch.setattr(remote_client.ServerClient, "post", collect_then_post)
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(data, name="data")
        assert requests_to(tmp_path / "server.log", "/api/v1/files") == 1  # chunks sent
        assert [report.objects for report in collected] == [[]]  # nothing sent was taken
        out = version.download(tmp_path / "out")
    assert (out / "table.bin").read_bytes() == (data / "table.bin").read_bytes()
    assert (out / "f07.txt").read_text() == "row 7\n" * 50
    with forebear.Store(server.db_url, server.objects_url) as direct:
        assert direct.verify() == []
        direct.artifact("data:v0", project="iris").delete()
        report = direct.gc(grace=dt.timedelta(0))
        assert report.bytes >= 20 << 20  # the file's chunks, not held any more
        assert direct.objects.sizes([version.digest]) == {}


def test_a_receipt_holds_its_bytes_until_their_commit_renewed_while_its_sender_uploads(
    tmp_path: Path,
) -> None:
    """The hold a receipt puts on bytes a client sent: renewed by the sender's next upload
    once half of it has passed (a long upload keeps what it sent first), never by another
    user's upload, and ended by the commit that names the bytes, which leaves the receipt
    itself (the proof the user holds them)."""
    from sqlalchemy import select, update

    from forebear.db import access as db_access
    from forebear.db.engine import read_session, write_session
    from forebear.db.schema import UploadRow, UserRow

    store = forebear.open(tmp_path / "store")
    store.add_user("alice")
    store.add_user("bob")
    engine = store.backend.engine  # type: ignore[attr-defined]
    first, theirs, later = (hash_bytes(text) for text in (b"first", b"theirs", b"later"))
    hour = dt.timedelta(hours=1)
    with write_session(engine) as session:
        ids = {name: id_ for name, id_ in session.execute(select(UserRow.name, UserRow.id))}
        db_access.record_uploads(session, ids["alice"], [first], hour)
        db_access.record_uploads(session, ids["bob"], [theirs], hour)
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    with write_session(engine) as session:  # both holds nearly over
        session.execute(update(UploadRow).values(held_until=soon))
    with write_session(engine) as session:
        db_access.record_uploads(session, ids["alice"], [later], hour)
    with read_session(engine) as session:
        until = {d: t for d, t in session.execute(select(UploadRow.digest, UploadRow.held_until))}
        assert db_access.held_by_uploads(session) == {first, theirs, later}
    assert until[first] is not None and until[first] > soon + dt.timedelta(minutes=30)
    assert until[theirs] == soon  # another user's upload renews nothing of bob's
    with write_session(engine) as session:
        db_access.release_uploads(session, ids["alice"], [first, later])
    with read_session(engine) as session:
        assert db_access.held_by_uploads(session) == {theirs}
        assert db_access.uploaded_among(session, ids["alice"], [first, later]) == {first, later}
    store.close()


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_a_large_file_goes_up_in_one_stream(
    server: ForebearServer, tmp_path: Path, packed: bool
) -> None:
    if packed:
        with server.store() as admin:
            admin.upgrade()
    token = server.user("alice", {"iris": "writer"})
    table = tmp_path / "table.bin"
    data = bytearray(os.urandom(20 << 20))
    table.write_bytes(data)
    log = tmp_path / "server.log"
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            first = run.log_artifact(table, name="table")
        assert requests_to(log, "/api/v1/files") == 1
        assert requests_to(log, "/api/v1/objects/", "PUT") == 0  # no chunk sent alone
        original = bytes(data)
        data[7 << 20 : (7 << 20) + 100] = b"x" * 100  # one edit: most chunks are there
        table.write_bytes(data)
        with forebear.init(project="iris", store=store) as run:
            second = run.log_artifact(table, name="table")
        assert requests_to(log, "/api/v1/files") == 2
        assert second.open("table.bin").read() == bytes(data)
        assert first.open("table.bin").read() == original
        assert second.new_bytes is not None and second.new_bytes < (4 << 20)  # the edit only
    with forebear.Store(server.db_url, server.objects_url) as direct:  # opened after upgrade
        assert direct.verify() == []
        for version, content in ((first, original), (second, bytes(data))):
            (entry,) = direct.artifact(version.qualified_ref).entries()
            stored = ChunkList.from_bytes(direct.objects.read_chunk_list(entry.digest) or b"")
            assert b"".join(direct.objects.read_bytes(d) for d in stored.digests) == content


def test_a_file_upload_is_checked_chunk_by_chunk_and_end_to_end(server: ForebearServer) -> None:
    alice = server.user("alice", {"iris": "writer"})
    one, two = os.urandom(3000), os.urandom(3000)
    genuine = chunk_list(server, one + two, one, two)
    objects = server.direct.objects
    auth = {"authorization": f"Bearer {alice}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        # a chunk whose bytes are not its digest's: refused, nothing under that digest
        damaged = bytes([two[0] ^ 0xFF]) + two[1:]  # always another first byte
        answer = upload(client, genuine, [0, 1], one + damaged)
        assert answer.status_code == 422, answer.content
        assert "do not hash to its digest" in answer.json()["message"]
        assert not objects.has(hash_bytes(two)) and objects.read_chunk_list(genuine.digest) is None
        # genuine chunks that do not make up the file claimed: no chunk list
        claimed = chunk_list(server, one + b"c" * 3000, one, two)
        answer = upload(client, claimed, [0, 1], one + two)
        assert answer.status_code == 422, answer.content
        assert "do not make up that file" in answer.json()["message"]
        assert objects.read_chunk_list(claimed.digest) is None
        # a body shorter or longer than the chunks it names
        short = upload(client, genuine, [0, 1], one + two[:-1])
        assert short.status_code == 400 and "ended" in short.json()["message"]
        long = upload(client, genuine, [0, 1], one + two + b"more")
        assert long.status_code == 400 and "more bytes" in long.json()["message"]
        assert objects.read_chunk_list(genuine.digest) is None
        # the true one: stored, and a second stream needs no bytes at all (both are there)
        assert upload(client, genuine, [0, 1], one + two).status_code == 201
        assert ChunkList.from_bytes(objects.read_chunk_list(genuine.digest) or b"") == genuine
        assert upload(client, genuine, [], b"").status_code == 201


def test_a_file_upload_cannot_build_on_chunks_its_sender_may_not_read(
    server: ForebearServer, tmp_path: Path
) -> None:
    alice = server.user("alice", {"iris": "writer"})
    bob = server.user("bob", {"secret": "writer", "iris": "reader"})
    private = os.urandom(5000)
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "key.bin").write_bytes(private)
    with (
        forebear.Store(server.url, token=bob, cache_dir=tmp_path / "bob") as store,
        forebear.init(project="secret", store=store) as run,
    ):
        run.log_artifact(folder, name="keys")
    mine = os.urandom(4000)
    guessed = chunk_list(server, mine + private, mine, private)
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {alice}"}) as client:
        answer = upload(client, guessed, [0], mine)  # "the rest you hold already"
        assert answer.status_code == 400, answer.content
        assert "not uploaded by you" in answer.json()["message"]
    assert server.direct.objects.read_chunk_list(guessed.digest) is None
    assert not server.direct.objects.has(hash_bytes(mine))  # refused before reading a byte
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {bob}"}) as client:
        one = chunk_list(server, mine, mine)
        assert upload(client, one, [0], mine).status_code == 201  # a writer of some project
    reader = server.user("carol", {"iris": "reader"})
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {reader}"}) as c:
        assert upload(c, one, [0], mine).status_code == 403


def test_malformed_file_uploads_get_one_clear_4xx(server: ForebearServer) -> None:
    token = server.user("alice", {"iris": "writer"})
    data = b"abc" * 1000
    good = json.loads(encode_header(chunk_list(server, data, data), [0]))
    digest = hash_bytes(data)

    def header(**changes: object) -> bytes:
        document = json.loads(json.dumps(good))
        for key, value in changes.items():
            if key == "sent":
                document["sent"] = value
            else:
                document["chunk_list"][key] = value
        return json.dumps(document).encode()

    cases = [
        b"no header line at all",
        b"not json\n" + data,
        b'{"sent": [0]}\n' + data,
        header(digest="../../forebear.json") + b"\n" + data,
        header(chunks=[["not-a-digest", 3000]]) + b"\n" + data,
        header(chunks=[], size=0) + b"\n",
        header(chunks=[[digest, 3000]], size=3001) + b"\n" + data,
        header(chunks=[[digest, 0], [digest, 3000]]) + b"\n" + data,
        header(chunks=[[digest, 20 << 20]], size=20 << 20) + b"\n" + data,
        header(sent=[1]) + b"\n" + data,
        header(sent=[0, 0]) + b"\n" + data,
        header(sent="all") + b"\n" + data,
        header(chunks=[[digest, 3000], [digest, 3000]], size=6000, sent=[0, 1]) + b"\n" + data * 2,
        b"[" * 100_000 + b"]" * 100_000 + b"\n" + data,
        # cut with larger chunks than the store's: each unsent one would be hashed for
        # 45 bytes of header (a million of a 16 MiB chunk the sender holds: 16 TB)
        header(
            chunking={
                **server.direct.chunking.to_dict(),
                "max_size": 16 << 20,
                "threshold": 32 << 20,
            },
            chunks=[[digest, 3000]],
        )
        + b"\n"
        + data,
    ]
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        for body in cases:
            answer = client.post("/api/v1/files", content=body)
            assert 400 <= answer.status_code < 500, (body[:80], answer.status_code)
            assert answer.json()["error"], body[:80]
        huge = client.post("/api/v1/files", content=b"{" + b" " * (70 << 20))
        assert huge.status_code == 413
    assert not server.direct.objects.has(digest)
    assert server.direct.objects.read_chunk_list(digest) is None


@pytest.mark.slow
def test_a_large_file_goes_to_s3_in_staged_parts_that_never_pass_through_the_server(
    team_server: ForebearServer, tmp_path: Path
) -> None:
    server = team_server
    proxy = CuttingProxy(server.port, lambda body: None, lambda: None)  # counts
    try:
        token = server.user("alice", {"iris": "writer"})
        table = tmp_path / "table.bin"
        data = os.urandom(24 << 20)
        table.write_bytes(data)
        with forebear.Store(proxy.url, token=token, cache_dir=tmp_path / "c") as store:
            with forebear.init(project="iris", store=store) as run:
                version = run.log_artifact(table, name="table")
            assert version.open("table.bin").read() == data
        # the server was sent the chunk list and the parts' names, not the file's bytes
        assert proxy.sent_up < 2 << 20, proxy.sent_up
        log = tmp_path / "server.log"
        assert requests_to(log, "/api/v1/files/publish") == 1
        assert requests_to(log, '/api/v1/files"') == 0  # no stream through the server
        assert requests_to(log, "/api/v1/uploads/publish") == 0  # no chunk staged alone
        assert server.direct.verify() == []
        assert server.direct.objects.clean_tmp(older_than=-3600) == []  # no part left staged
    finally:
        proxy.close()


@pytest.mark.slow
def test_staged_parts_are_checked_before_the_file_they_make_is_stored(
    team_server: ForebearServer, tmp_path: Path
) -> None:
    server = team_server
    token = server.user("alice", {"iris": "writer"})
    reader = server.user("carol", {"iris": "reader"})
    one, two = os.urandom(3000), os.urandom(3000)
    genuine = chunk_list(server, one + two, one, two)
    objects = server.direct.objects
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:

        def staged(*parts: bytes) -> list[list[str]]:
            """Each part sent to a presigned URL of a staging key: [id, key] each."""
            keys = {os.urandom(16).hex(): part for part in parts}
            sizes = {key: len(part) for key, part in keys.items()}
            answer = client.post("/api/v1/uploads", content=wire.dumps({"sizes": sizes}))
            assert answer.status_code == 200, answer.content
            targets = wire.loads(answer.content)["uploads"]
            for key, part in keys.items():
                assert f"/staging/{targets[key]['id']}/{key}" in targets[key]["url"]
                assert httpx.put(targets[key]["url"], content=part).status_code == 200
            return [[targets[key]["id"], key] for key in keys]

        def publish(chunks: ChunkList, parts: list[list[str]]) -> httpx.Response:
            lines = b"".join(json.dumps(part).encode() + b"\n" for part in parts)
            body = encode_header(chunks, [0, 1]) + b"\n" + lines + b"\n"
            return client.post("/api/v1/files/publish", content=body)

        # a part whose bytes are not its chunks': refused, nothing stored under them
        damaged = bytes([two[0] ^ 0xFF]) + two[1:]
        answer = publish(genuine, staged(one, damaged))
        assert answer.status_code == 422 and "do not hash" in answer.json()["message"]
        assert not objects.has(hash_bytes(two))
        assert objects.read_chunk_list(genuine.digest) is None
        # parts too short, or naming an upload that never arrived
        answer = publish(genuine, staged(one, two[:-1]))
        assert answer.status_code == 400 and "ended" in answer.json()["message"]
        answer = publish(genuine, [*staged(one), ["0" * 32, "1" * 32]])
        assert answer.status_code == 404 and "no upload" in answer.json()["message"]
        names = staged(one, two)
        for bad in (b"{}", b'["../..", "x"]', b'{"parts": "all"}', b"[" * 100_000):
            answer = client.post(
                "/api/v1/files/publish",
                content=encode_header(genuine, [0, 1]) + b"\n" + bad + b"\n",
            )
            assert 400 <= answer.status_code < 500, (bad[:80], answer.content)
        unended = encode_header(genuine, [0, 1]) + b"\n" + json.dumps(names[0]).encode()
        answer = client.post("/api/v1/files/publish", content=unended)
        assert answer.status_code == 400, answer.content
        assert objects.read_chunk_list(genuine.digest) is None
        # the true parts, but from someone who may not write, or no one
        parts = staged((one + two)[:1000], (one + two)[1000:])
        body = encode_header(genuine, [0, 1]) + b"\n"
        for who, status in ((reader, 403), ("fbt_forged", 401)):
            refused = httpx.post(
                f"{server.url}/api/v1/files/publish", content=body,
                headers={"authorization": f"Bearer {who}"},
            )  # fmt: skip
            assert refused.status_code == status, refused.content
        assert objects.read_chunk_list(genuine.digest) is None
        # ...from a writer, split anywhere: the file is stored, and read back whole
        answer = publish(genuine, parts)
        assert answer.status_code == 201, answer.content
        assert ChunkList.from_bytes(objects.read_chunk_list(genuine.digest) or b"") == genuine
    assert server.direct.verify() == []


class CuttingProxy:
    """A TCP relay to a server that breaks the first file upload passing through it: once
    ``cut_when`` names how many bytes of the upload so far may reach the server, those go,
    ``before_cut`` is waited for, and the connection is lost mid-stream, for real."""

    def __init__(
        self,
        upstream_port: int,
        cut_when: Callable[[bytes], int | None],
        before_cut: Callable[[], None],
    ) -> None:
        self.upstream_port, self.cut_when, self.before_cut = upstream_port, cut_when, before_cut
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cut = threading.Event()
        self.uploads: list[bytearray] = []  # the bytes of each file upload relayed
        self.sent_up = 0  # bytes of every request relayed to the server
        self.counting = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self.pipe, args=(upstream, client, False), daemon=True).start()
            threading.Thread(target=self.pipe, args=(client, upstream, True), daemon=True).start()

    def pipe(self, source: socket.socket, target: socket.socket, upward: bool) -> None:
        upload: bytearray | None = None
        try:
            while data := source.recv(1 << 16):
                if upward:
                    with self.counting:
                        self.sent_up += len(data)
                if upward and data.startswith(b"POST /api/v1/files"):
                    upload = bytearray()
                    self.uploads.append(upload)
                elif upward and data.startswith((b"GET ", b"POST ", b"PUT ")):
                    upload = None  # another request on the same connection
                if upload is not None:
                    earlier = len(upload)
                    upload += data
                    allowed = None if self.cut.is_set() else self.cut_when(bytes(upload))
                    if allowed is not None:
                        target.sendall(data[: max(0, allowed - earlier)])
                        self.before_cut()
                        self.cut.set()
                        break  # both ends closed below: the upload breaks off
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_a_file_upload_cut_off_resumes_with_the_chunks_still_missing(
    tmp_path: Path, packed: bool
) -> None:
    if not packed:
        format_2(tmp_path / "store")  # a store an older forebear made: a file a chunk
    server = ForebearServer.over_folder(tmp_path)
    try:
        upload_cut_off_and_resumed(server, tmp_path)
    finally:
        server.stop()


@pytest.mark.slow
def test_a_staged_file_upload_cut_off_resumes_with_the_parts_still_missing(
    team_server: ForebearServer, tmp_path: Path
) -> None:
    upload_cut_off_and_resumed(team_server, tmp_path)


PART_NAME = re.compile(rb'\["[0-9a-f]{32}", "[0-9a-f]{32}"\]\n')


def upload_cut_off_and_resumed(server: ForebearServer, tmp_path: Path) -> None:
    """Over a folder the file's chunks stream through the server; over S3 they are
    staged in parts of 4 MiB, each named in the upload as it lands."""
    staged = server.objects_url.startswith("s3://")
    token = server.user("alice", {"iris": "writer"})
    table = tmp_path / "table.bin"
    data = os.urandom(32 << 20)
    table.write_bytes(data)
    catalog = sqlalchemy.create_engine(server.db_url)
    # the chunks the server's store cuts the file into (small ones where it keeps packs)
    cuts = cut_bytes(data, server.direct.chunking)
    sizes = {hash_bytes(data[offset : offset + length]): length for offset, length in cuts}

    def receipts_for_8_mib() -> None:
        """Wait until the server has received, checked, recorded and stored 8 MiB of
        chunks (a receipt is written once the bytes check out, before they are stored)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with catalog.connect() as connection:
                query = sqlalchemy.text("SELECT digest FROM uploads")
                digests = [row[0] for row in connection.execute(query) if row[0] in sizes]
            if sum(server.direct.objects.sizes(digests).values()) >= 8 << 20:
                return
            time.sleep(0.05)

    def far_enough(body: bytes) -> int | None:
        """How much of the upload reaches the server: 24 MiB of the stream, or the names
        of the first 5 parts (the server then stores more than 8 MiB, and waits)."""
        if not staged:
            return 24 << 20 if len(body) > 24 << 20 else None
        names = list(PART_NAME.finditer(body))
        return names[4].end() if len(names) > 5 else None

    proxy = CuttingProxy(server.port, far_enough, receipts_for_8_mib)
    try:
        with forebear.Store(proxy.url, token=token, cache_dir=tmp_path / "cache") as store:
            with forebear.init(project="iris", store=store) as run:
                version = run.log_artifact(table, name="table")
            assert version.open("table.bin").read() == data
    finally:
        proxy.close()
        catalog.dispose()
    assert proxy.cut.is_set() and len(proxy.uploads) == 2
    # the chunks recorded before the cut (8 MiB at least) were kept: the second attempt
    # sent the rest only, with its request line, headers and chunk list (tens of KiB; the
    # list is longer in packs, whose chunks are smaller)
    if staged:  # the first two parts (8 MiB at most) were recorded, so not staged again
        whole = chunk_list(server, data, *(data[o : o + n] for o, n in cuts))
        parts = len(split_parts(whole, range(len(whole))))
        assert len(PART_NAME.findall(proxy.uploads[1])) <= parts - 2
    else:
        assert len(proxy.uploads[1]) < len(data) - (7 << 20)
    with forebear.Store(server.db_url, server.objects_url) as direct:
        assert direct.verify() == []
        (entry,) = direct.artifact("iris/table:v0").entries()
        stored = ChunkList.from_bytes(direct.objects.read_chunk_list(entry.digest) or b"")
        assert b"".join(direct.objects.read_bytes(d) for d in stored.digests) == data


@pytest.mark.slow
def test_a_client_killed_while_it_stages_a_file_leaves_the_store_whole(
    team_server: ForebearServer, tmp_path: Path
) -> None:
    server = team_server
    catalog = sqlalchemy.create_engine(server.db_url)
    try:
        token = server.user("alice", {"iris": "writer"})
        table = tmp_path / "table.bin"
        data = os.urandom(96 << 20)
        table.write_bytes(data)
        script = (
            "import forebear, sys\n"
            "with forebear.Store(sys.argv[1], token=sys.argv[2], cache_dir=sys.argv[3]) as s:\n"
            "    with forebear.init(project='iris', store=s) as run:\n"
            "        run.log_artifact(sys.argv[4], name='table')\n"
        )
        client = subprocess.Popen(
            [sys.executable, "-c", script, server.url, token, str(tmp_path / "c1"), str(table)]
        )
        deadline = time.monotonic() + 300
        receipts = 0
        while client.poll() is None and not receipts and time.monotonic() < deadline:
            with catalog.connect() as connection:
                count = sqlalchemy.text("SELECT count(*) FROM uploads")
                receipts = connection.execute(count).scalar_one()
            time.sleep(0.02)
        assert client.poll() is None and receipts, "the client was to be killed mid-upload"
        client.kill()  # SIGKILL: parts staged, the server's read of them cut off
        client.wait()
        # nothing the server stored is partial, and the next log of the file completes
        with forebear.Store(server.url, token=token, cache_dir=tmp_path / "c2") as store:
            with forebear.init(project="iris", store=store) as run:
                version = run.log_artifact(table, name="table")
            assert version.open("table.bin").read() == data
        assert server.direct.verify() == []
        statuses = [json.loads(line)["status"] for line in server.log.read_text().splitlines()
                    if line.startswith("{")]  # fmt: skip
        assert statuses and max(statuses) < 500
    finally:
        catalog.dispose()
