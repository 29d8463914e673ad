"""Request bodies a hostile or unlucky client sends cannot take a server down.

A body that stops arriving is given up (408), so that a client that stalls mid-upload
(asleep, cut off, or hostile) cannot hold what other uploads wait for, while a slow client
that keeps sending is never cut off; a JSON body built to swell when decoded is refused
before it is, and large ones are decoded one at a time. Real server processes over
SQLite + a folder."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

import forebear
from forebear import wire
from forebear.chunking import cut_bytes
from forebear.hashing import hash_bytes
from forebear.objects.file_streams import encode_header

from .conftest import format_2
from .serving import ForebearServer
from .test_server_files import chunk_list

pytestmark = pytest.mark.server

BODY_TIMEOUT = "2"
ANSWER_SECONDS = 120  # a bound for a hung server, never the expected time


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[ForebearServer]:
    """A server that gives a body up after 2 s without a byte of it."""
    running = ForebearServer.over_folder(tmp_path, extra=("--body-timeout", BODY_TIMEOUT))
    try:
        yield running
    finally:
        running.stop()


def stalled(
    server: ForebearServer, token: str, method: str, path: str, start: bytes
) -> socket.socket:
    """A connection that announces a body much longer than ``start``, sends ``start`` and
    then nothing more."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER_SECONDS)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(start) + (1 << 20)}\r\n\r\n"
    )
    connection.sendall(head.encode() + start)
    return connection


def answer_of(connection: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body the server answers on ``connection`` (waited for)."""
    received = b""
    with connection:
        while piece := connection.recv(65536):
            received += piece
            head, _, body = received.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":")[1]) for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]  # fmt: skip
            if length and len(body) >= length[0]:
                break
    status = int(received.split(b" ", 2)[1])
    return status, json.loads(received.partition(b"\r\n\r\n")[2])


def test_stalled_uploads_are_given_up_and_free_their_slots_for_others(
    impatient: ForebearServer, tmp_path: Path
) -> None:
    token = impatient.user("alice", {"iris": "writer"})
    data = random.Random(5).randbytes(3_000_000)
    parts = [data[at : at + size] for at, size in cut_bytes(data, impatient.direct.chunking)]
    header = encode_header(chunk_list(impatient, data, *parts), list(range(len(parts)))) + b"\n"
    bundle_index = json.dumps([[hash_bytes(b"x" * 100), 100]]).encode() + b"\n"
    connections = [  # two chunked files hold both of a worker's file slots
        stalled(impatient, token, "POST", "/api/v1/files", header + data[:5000]),
        stalled(impatient, token, "POST", "/api/v1/files", header),
        stalled(impatient, token, "POST", "/api/v1/bundles", bundle_index + b"x" * 50),
        stalled(impatient, token, "PUT", f"/api/v1/objects/{hash_bytes(data)}", data[:100]),
        stalled(impatient, token, "POST", "/api/v1/call/counts", b'{"args": '),
        stalled(impatient, token, "POST", "/api/v1/files", b""),
        stalled(impatient, token, "POST", "/api/v1/files/publish", header),  # parts named
    ]
    # meanwhile a real client logs a large file and a folder: it waits, at most, for the
    # stalled ones to be given up
    table = tmp_path / "table.bin"
    table.write_bytes(bytes(reversed(data)) * 7)  # chunked: sent to /files
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i}.txt").write_text(f"file {i}\n")
    with forebear.Store(impatient.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            logged = run.log_artifact(table, name="table")
            run.log_artifact(folder, name="folder")
        assert logged.open("table.bin").read() == table.read_bytes()
    for connection in connections:
        status, body = answer_of(connection)
        assert status == 408, body
        assert "nothing of the request's body arrived for 2 s" in str(body["message"])
    assert not impatient.direct.objects.has(hash_bytes(data))  # nothing half-stored
    assert impatient.direct.objects.read_chunk_list(hash_bytes(data)) is None
    assert impatient.direct.verify() == []
    assert '"status": 408' in impatient.log.read_text()


def test_a_slow_client_that_keeps_sending_is_never_cut_off(
    impatient: ForebearServer,
) -> None:
    """The timeout is between two pieces of a body, not for the whole body: a body that
    arrives over several times the timeout, a little at a time, is taken."""
    token = impatient.user("alice", {"iris": "writer"})
    data = bytes(range(256)) * 4000
    digest = hash_bytes(data)
    pieces = [data[i : i + 20_000] for i in range(0, len(data), 20_000)]
    started = time.monotonic()

    def trickle() -> Iterator[bytes]:
        for piece in pieces:
            time.sleep(0.2)  # far below the 2 s timeout
            yield piece

    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=impatient.url, headers=auth, timeout=ANSWER_SECONDS) as client:
        answer = client.put(f"/api/v1/objects/{digest}", content=trickle())
    assert answer.status_code == 201, answer.text
    assert time.monotonic() - started > float(BODY_TIMEOUT) * 2  # it did take longer
    assert impatient.direct.objects.read_bytes(digest) == data


def test_the_body_timeout_is_checked_when_the_server_starts(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="body-timeout"):
        ForebearServer.over_folder(tmp_path, extra=("--body-timeout", "0"))


def test_a_download_is_not_cut_off_while_its_reader_pauses(tmp_path: Path) -> None:
    """Only the request's body is timed: a response its reader takes longer than the
    timeout to read (a slow reader of a large object) arrives whole."""
    format_2(tmp_path / "store")  # a 7 MB file is one object (below format 2's threshold)
    server = ForebearServer.over_folder(tmp_path, extra=("--body-timeout", BODY_TIMEOUT))
    try:
        token = server.user("alice", {"iris": "writer"})
        table = tmp_path / "table.bin"
        data = random.Random(7).randbytes(7_000_000)  # more than the socket buffers hold
        table.write_bytes(data)
        store = forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache")
        with store, forebear.init(project="iris", store=store) as run:
            run.log_artifact(table, name="table")
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
        reader.settimeout(ANSWER_SECONDS)
        reader.connect(("127.0.0.1", server.port))
        request = (
            f"GET /api/v1/objects/{hash_bytes(data)} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        received = b""
        with reader:
            reader.sendall(request.encode())
            received += reader.recv(65536)
            time.sleep(float(BODY_TIMEOUT) * 2)  # the reader pauses past the timeout
            while piece := reader.recv(1 << 20):
                received += piece
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert body == data
    finally:
        server.stop()


def peak_memory(server: ForebearServer) -> int:
    """The server process's peak resident memory so far, in bytes (one worker: uvicorn
    serves in the process itself)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def test_json_built_to_swell_is_refused_before_it_is_decoded(
    server: ForebearServer, tmp_path: Path
) -> None:
    """60 MiB of ``[],`` (21 million lists) or of ``"ab",`` (12 million strings) took 3 GB
    and 1 GB of one worker and held it up for seconds; any user with a token, a reader
    too, could send them."""
    token = server.user("rita", {"iris": "reader"})
    writer = server.user("alice", {"iris": "writer"})
    (tmp_path / "a.txt").write_text("held\n")
    store = forebear.Store(server.url, token=writer, cache_dir=tmp_path / "cache")
    with store, forebear.init(project="iris", store=store) as run:
        (entry,) = run.log_artifact(tmp_path / "a.txt", name="a").entries()

    def held(items: bytes) -> httpx.Response:
        body = b'{"$d": {"args": [[' + items + b']], "kwargs": {"$d": {}}}}'
        return client.post("/api/v1/call/held", content=body)

    auth = {"authorization": f"Bearer {token}"}
    client = httpx.Client(base_url=server.url, headers=auth, timeout=ANSWER_SECONDS)
    with client:
        for swelling in (b"[]," * 21_000_000 + b"[]", b'"ab",' * 12_000_000 + b'"ab"'):
            answer = held(swelling)
            assert answer.status_code == 400, answer.text
            assert "this request takes" in answer.json()["message"]
        header = b'{"sent": [], "x": [' + b"[]," * 10_000_000 + b"[]]}\n"  # 30 MiB
        answer = client.post(
            "/api/v1/files", content=header, headers={"authorization": f"Bearer {writer}"}
        )
        assert answer.status_code == 400, answer.text
        assert "this request takes" in answer.json()["message"]
        assert peak_memory(server) < 400 << 20
        # a large call of a legitimate shape is taken: 200,000 digests (7 MB)
        digests = [f"{n:032x}" for n in range(200_000)] + [entry.digest]
        answer = held(b",".join(f'"{d}"'.encode() for d in digests))
        assert answer.status_code == 200, answer.text
        assert wire.loads(answer.content)["result"] == {entry.digest}


def test_uploads_waiting_their_turn_hold_no_thread(server: ForebearServer, tmp_path: Path) -> None:
    """A worker receives two large files at once; the others wait their turn. They waited
    in threads of the pool every request needs (40), so that 40 stalled uploads froze
    the worker: now they wait without one, and other requests are answered meanwhile."""
    token = server.user("alice", {"iris": "writer"})
    data = random.Random(3).randbytes(3_000_000)
    parts = [data[at : at + size] for at, size in cut_bytes(data, server.direct.chunking)]
    header = encode_header(chunk_list(server, data, *parts), list(range(len(parts)))) + b"\n"
    waiting = [stalled(server, token, "POST", "/api/v1/files", header) for _ in range(45)]
    try:
        auth = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            assert client.get("/api/v1/info").json()["user"] == "alice"
            assert client.post("/api/v1/call/counts", content=wire.dumps({})).status_code == 200
    finally:
        for connection in waiting:
            connection.close()


def test_upload_urls_are_signed_a_batch_at_a_time(server: ForebearServer) -> None:
    """1.5 million URLs asked for in one request kept the server's S3 connection signing
    for minutes; a client asks for a batch's at a time."""
    token = server.user("alice", {"iris": "writer"})
    sizes = {f"{n:032x}": 2 << 20 for n in range(20_001)}
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=ANSWER_SECONDS) as client:
        for path, body in (
            ("/api/v1/uploads", {"sizes": sizes}),
            ("/api/v1/present", {"sizes": sizes, "sign": True, "sign_from": 0}),
        ):
            answer = client.post(path, content=wire.dumps(body))
            assert answer.status_code == 400, answer.text
            assert "20000 at most" in answer.json()["message"]
        del sizes[f"{0:032x}"]
        answer = client.post("/api/v1/present", content=wire.dumps({"sizes": sizes, "sign": True}))
        assert answer.status_code == 200 and wire.loads(answer.content)["present"] == []
