"""Small objects travel to a forebear server in bundles: many in one request, each checked
against its own digest before anything of the bundle is stored; and come back from it in
batch reads. Real server processes over SQLite + a folder, and over PostgreSQL + S3
(SeaweedFS) for bundles sent to staging keys."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

import forebear
from forebear import wire
from forebear.hashing import hash_bytes
from forebear.objects.bundles import encode_index, read_answer, store_bundle

from .conftest import corrupt, format_2
from .serving import ForebearServer

pytestmark = pytest.mark.server


def bundle_of(*objects: bytes) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """The bytes of a bundle holding ``objects``, and its slots."""
    slots, offset = {}, 0
    for data in objects:
        slots[hash_bytes(data)] = (offset, len(data))
        offset += len(data)
    return b"".join(objects), slots


def requests_to(log: Path, path: str, method: str = "POST") -> int:
    """How many requests the server's access log shows to paths starting with ``path``."""
    lines = log.read_text().splitlines()
    return sum(1 for line in lines if f'"path": "{path}' in line and f'"{method}"' in line)


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_many_small_files_go_up_in_a_few_bundles(
    tmp_path: Path, make_tree: Callable[..., Path], packed: bool
) -> None:
    if not packed:
        format_2(tmp_path / "store")  # a store an older forebear made: loose objects
    server = ForebearServer.over_folder(tmp_path)
    try:
        bundles_go_up(server, tmp_path, make_tree, packed)
    finally:
        server.stop()


def bundles_go_up(
    server: ForebearServer, tmp_path: Path, make_tree: Callable[..., Path], packed: bool
) -> None:
    token = server.user("alice", {"iris": "writer"})
    files: dict[str, str | bytes] = {f"f{n:04d}.txt": f"row {n}\n" * 40 for n in range(600)}
    data = make_tree("many", files)
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(data, name="many")
        assert version.open("f0599.txt").read() == files["f0599.txt"].encode()  # type: ignore[union-attr]
    log = tmp_path / "server.log"
    assert requests_to(log, "/api/v1/bundles") >= 1
    assert requests_to(log, "/api/v1/objects/", "PUT") == 0  # not one object sent alone
    with forebear.Store(server.db_url, server.objects_url) as direct:  # opened after upgrade
        assert direct.verify() == []
        digests = [e.digest or "" for e in direct.artifact("iris/many:v0").entries()]
        assert all(direct.objects.has(d) for d in digests)
        assert bool(direct.objects.packed(digests)) is packed  # the server's own packs


def test_many_small_files_come_down_in_a_few_batch_reads(
    server: ForebearServer, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    """A download through a server reads small files a few thousand at a time, each
    answer at most 8 MiB (what does not fit is asked for again), each file checked; it
    asked for each on its own (100,000 files: 527 s, against 38 s now)."""
    token = server.user("alice", {"iris": "writer"})
    files: dict[str, str | bytes] = {f"f{n:04d}.txt": f"row {n}\n" * 40 for n in range(600)}
    files.update({f"big{n:02d}.bin": bytes([n]) * (700 << 10) for n in range(14)})  # 9.6 MiB
    data = make_tree("many", files)
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(data, name="many")
        log = tmp_path / "server.log"
        log.write_text("")  # only what the download asks from here on
        out = version.download(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    for name, content in files.items():
        expected = content.encode() if isinstance(content, str) else content
        assert (out / name).read_bytes() == expected
    assert requests_to(log, "/api/v1/objects/", "GET") == 0  # not one object alone
    assert 2 <= requests_to(log, "/api/v1/objects/read") <= 3


def test_a_large_files_chunks_come_down_in_a_few_batch_reads(
    server: ForebearServer, tmp_path: Path
) -> None:
    """A file stored in chunks comes down through a server as small files do: its chunks
    read in batches before it is written, not one request each as the file is written (a
    file of 64 MiB took 841 requests and 5.0 s that way, 15 and 1.0 s now)."""
    token = server.user("alice", {"iris": "writer"})
    content = os.urandom(6 << 20)  # about a hundred chunks in a store with packs
    (tmp_path / "model.bin").write_bytes(content)
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(tmp_path / "model.bin", name="model")
        chunks = store.content.chunk_lists([version.entry("model.bin")])
        assert len(next(iter(chunks.values())).digests) > 20
        log = tmp_path / "server.log"
        log.write_text("")  # only what the download asks from here on
        out = version.download(tmp_path / "out")
    assert (out / "model.bin").read_bytes() == content
    assert requests_to(log, "/api/v1/objects/", "GET") == 0  # not one chunk alone
    assert 1 <= requests_to(log, "/api/v1/objects/read") <= 3


def a_damaged_chunk_spoils_only_reads_of_it(
    server: ForebearServer,
    store: forebear.Store,
    version: forebear.ArtifactVersion,
    content: bytes,
) -> None:
    """With one chunk damaged on the server, reads of its neighbours (a range, or from the
    start, whose read-ahead asks for its group) still give their bytes, and a read of it
    says which chunk it is."""
    chunks = next(iter(store.content.chunk_lists([version.entry("model.bin")]).values()))
    corrupt(server.direct, chunks.digests[5], b"XXXX")
    offsets = chunks.offsets
    with version.open("model.bin") as stream:
        stream.seek(offsets[20])
        assert stream.read(1000) == content[offsets[20] : offsets[20] + 1000]
        stream.seek(0)  # read on from the start: the chunks ahead come as groups
        assert stream.read(offsets[5]) == content[: offsets[5]]
        stream.seek(offsets[5])
        with pytest.raises(forebear.IntegrityError, match=rf"model\.bin: chunk 6 of {len(chunks)}"):
            stream.read(1000)


def test_a_large_file_read_through_a_server_comes_a_group_of_chunks_a_request(
    server: ForebearServer, tmp_path: Path
) -> None:
    """Opened and read (as pandas or DuckDB read it), a chunked file comes through a
    server a group of 32 chunks a batch read, then four groups a read as the reader goes
    on, not a request a chunk (64 MiB: 845 requests in 4.1 s before, 37 in 0.7 s a group
    at a time); a read anywhere in it gives the bytes there."""
    token = server.user("alice", {"iris": "writer"})
    content = os.urandom(12 << 20)  # about 190 chunks: six groups
    (tmp_path / "model.bin").write_bytes(content)
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(tmp_path / "model.bin", name="model")
        log = tmp_path / "server.log"
        log.write_text("")
        with version.open("model.bin") as stream:
            assert stream.read() == content
        assert (
            requests_to(log, "/api/v1/objects/", "GET") <= 3
        )  # the chunks read before it reads on
        assert 1 <= requests_to(log, "/api/v1/objects/read") <= 4  # a group, then spans
        with version.open("model.bin") as stream:
            for offset in (5 << 20, 17, (12 << 20) - 3, 3 << 20, 0):
                stream.seek(offset)
                assert stream.read(70_000) == content[offset : offset + 70_000]
        a_damaged_chunk_spoils_only_reads_of_it(server, store, version, content)


def test_a_batch_read_carries_only_what_the_user_may_read(
    server: ForebearServer, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    alice = server.user("alice", {"iris": "writer"})
    carol = server.user("carol", {"other": "writer"})
    secret = b"alice's secret rows\n" * 10
    with (
        forebear.Store(server.url, token=alice) as store,
        forebear.init(project="iris", store=store) as run,
    ):
        run.log_artifact(make_tree("d", {"secret.csv": secret}), name="ds")
    with (
        forebear.Store(server.url, token=carol) as store,
        forebear.init(project="other", store=store) as run,
    ):
        run.log_artifact(make_tree("e", {"own.csv": b"carol's rows\n"}), name="mine")
    digests = [hash_bytes(secret), hash_bytes(b"carol's rows\n")]
    for token, readable in ((alice, [digests[0]]), (carol, [digests[1]])):
        auth = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
            answer = client.post("/api/v1/objects/read", content=wire.dumps({"digests": digests}))
            assert answer.status_code == 200
            header = json.loads(answer.content.partition(b"\n")[0])
            assert [d for d, _ in header["objects"]] == readable
            assert (secret in answer.content) is (token == alice)
            for body in ([], {"digests": ["nope"]}, {"digests": digests * 1001}):
                refused = client.post("/api/v1/objects/read", content=wire.dumps(body))
                assert refused.status_code == 400 and "batch read" in refused.json()["message"]


def test_a_file_damaged_on_the_server_is_left_out_of_a_batch_and_named(
    server: ForebearServer, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    token = server.user("alice", {"iris": "writer"})
    data = make_tree("d", {"a.txt": b"first file\n" * 20, "b.txt": b"second file\n" * 20})
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(data, name="ds")
        corrupt(server.direct, version.manifest.entries["b.txt"].digest or "", b"XXXX")
        with pytest.raises(forebear.IntegrityError, match=r"b\.txt"):
            version.download(tmp_path / "out")
    assert not (tmp_path / "out" / "b.txt").exists()


ASKED = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"[1, 2]\n",
        # fewer bytes than said
        b'{"objects": [["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 5]], "later": []}\n1234',
        b'{"objects": [["bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 1]], "later": []}\nx',  # not asked for
        b'{"objects": [], "later": ["bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]}\n',
        b'{"objects": [], "later": [], "runs": [["file:///etc/passwd", "bytes=0-0", '
        b'[["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1]]]]}\n',
        b'{"objects": [], "later": [], "runs": [["https://s3/p", "bytes=0-9", '
        b'[["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1]]]]}\n',  # a range its objects do not fill
    ],
)
def test_an_answer_that_is_no_batch_read_is_refused(answer: bytes) -> None:
    with pytest.raises(forebear.StoreError, match="batch read is malformed"):
        read_answer(answer, {ASKED})


def test_a_bundle_is_checked_object_by_object(server: ForebearServer) -> None:
    alice = server.user("alice", {"iris": "writer"})
    bob = server.user("bob", {"iris": "reader"})
    genuine = b"genuine bytes\n"
    forged_digest = hash_bytes(b"what the index claims")
    body, slots = bundle_of(genuine, b"forged bytes\n")
    (second,) = [d for d in slots if d != hash_bytes(genuine)]
    slots[forged_digest] = slots.pop(second)
    auth = {"authorization": f"Bearer {alice}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        refused = client.post("/api/v1/bundles", content=encode_index(slots) + b"\n" + body)
        assert refused.status_code == 422, refused.content
        assert "nothing of this bundle was stored" in refused.json()["message"]
        objects = server.direct.objects
        assert not objects.has(forged_digest) and not objects.has(hash_bytes(genuine))
        body, slots = bundle_of(genuine, b"another\n")
        sent = client.post("/api/v1/bundles", content=encode_index(slots) + b"\n" + body)
        assert sent.status_code == 200 and wire.loads(sent.content) == {"stored": 2}
        assert objects.read_bytes(hash_bytes(genuine)) == genuine
    reader = {"authorization": f"Bearer {bob}"}
    with httpx.Client(base_url=server.url, headers=reader, timeout=60) as client:
        body, slots = bundle_of(b"bob may not write\n")
        answer = client.post("/api/v1/bundles", content=encode_index(slots) + b"\n" + body)
        assert answer.status_code == 403
    assert not server.direct.objects.has(hash_bytes(b"bob may not write\n"))


def test_a_bundles_objects_are_held_before_any_is_stored_and_only_once_checked(
    tmp_path: Path,
) -> None:
    """The server's receipts hold a bundle's objects off gc; they are written once every
    object hashes to its digest and before any is stored, so a gc between the two cannot
    take what the bundle stored, and bytes that fail earn none."""
    location = forebear.open(tmp_path / "store").objects
    data, slots = bundle_of(b"one " * 100, b"two " * 100)
    told: list[tuple[list[str], dict[str, int]]] = []

    def receipts(digests: list[str]) -> None:
        told.append((digests, location.sizes(digests)))

    assert store_bundle(location, data, slots, 2, receipts) == sorted(slots)
    assert told == [(sorted(slots), {})]  # told first: nothing was stored yet
    assert location.sizes(slots).keys() == set(slots)
    data, slots = bundle_of(b"three " * 100, b"four " * 100)
    told.clear()
    with pytest.raises(forebear.IntegrityError, match="do not hash to it"):
        store_bundle(location, data[:-1] + b"!", slots, 2, receipts)
    assert told == [] and location.sizes(slots) == {}


def test_malformed_bundles_get_one_clear_4xx(server: ForebearServer) -> None:
    token = server.user("alice", {"iris": "writer"})
    digest = hash_bytes(b"abc")
    cases = [
        b"no index line at all",
        b"not json\nabc",
        b'{"a": 1}\nabc',
        json.dumps([[digest, 0, 4]]).encode() + b"\nabc",  # past the end
        json.dumps([[digest, -1, 3]]).encode() + b"\nabc",
        json.dumps([[digest, 0.5, 3]]).encode() + b"\nabc",
        json.dumps([["../../forebear.json", 0, 3]]).encode() + b"\nabc",
        json.dumps([[digest, 0]]).encode() + b"\nabc",
        b"[" * 100_000 + b"]" * 100_000 + b"\nabc",
        # overlapping rows: 64 MiB named as 100,000 objects would hash as 6 TB
        json.dumps([[digest, 0, 3], [hash_bytes(b"bc"), 1, 2]]).encode() + b"\nabc",
        json.dumps([[hash_bytes(b"bc"), 1, 2], [hash_bytes(b"a"), 0, 1]]).encode() + b"\nabc",
        json.dumps([[digest, 0, 3], [digest, 3, 3]]).encode() + b"\nabcabc",  # repeated
    ]
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        for body in cases:
            answer = client.post("/api/v1/bundles", content=body)
            assert 400 <= answer.status_code < 500, (body[:60], answer.status_code)
            assert answer.json()["error"], body[:60]
        publish = [
            {"id": "../x", "key": digest, "objects": []},
            {"id": "0" * 32, "key": "not a digest", "objects": []},
            {"id": "0" * 32, "key": digest},
            {"id": "0" * 32, "key": digest, "objects": []},  # a folder has no staging keys
        ]
        for value in publish:
            answer = client.post("/api/v1/bundles/publish", content=wire.dumps(value))
            assert 400 <= answer.status_code < 500, (value, answer.status_code)
        huge = client.post("/api/v1/bundles", content=b"[]\n" + b"\0" * (80 << 20))
        assert huge.status_code == 413
    assert not server.direct.objects.has(digest)


@pytest.mark.slow
def test_a_bundle_sent_to_a_staging_key_is_checked_before_it_is_stored(
    team_server: ForebearServer, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    server = team_server
    token = server.user("alice", {"iris": "writer"})
    auth = {"authorization": f"Bearer {token}"}
    body, slots = bundle_of(b"one\n", b"two\n")
    forged = {  # the bytes of "two" named as "three"
        hash_bytes(b"one\n"): slots[hash_bytes(b"one\n")],
        hash_bytes(b"three\n"): slots[hash_bytes(b"two\n")],
    }
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        for index, expected in ((forged, 422), (slots, 200)):
            key = hash_bytes(body)
            asked = client.post("/api/v1/uploads", content=wire.dumps({"sizes": {key: 8}}))
            upload = wire.loads(asked.content)["uploads"][key]
            assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in upload["url"]  # SigV4
            assert httpx.put(upload["url"], content=body).status_code == 200
            rows = [[d, o, n] for d, (o, n) in index.items()]
            request = {"id": upload["id"], "key": key, "objects": rows}
            answer = client.post("/api/v1/bundles/publish", content=wire.dumps(request))
            assert answer.status_code == expected, answer.content
            if expected == 422:
                assert not any(server.direct.objects.has(d) for d in forged)
            # the staged copy is gone either way: publishing it again finds nothing
            again = client.post("/api/v1/bundles/publish", content=wire.dumps(request))
            assert again.status_code == 404
    assert server.direct.objects.read_bytes(hash_bytes(b"two\n")) == b"two\n"
    # upload URLs only for objects from sign_from bytes up: the others go in bundles
    small, large = hash_bytes(b"small"), hash_bytes(b"large")
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        asked = {"sizes": {small: 100, large: 2 << 20}, "sign": True, "sign_from": 1 << 20}
        answer = wire.loads(client.post("/api/v1/present", content=wire.dumps(asked)).content)
        assert answer["present"] == [] and set(answer["uploads"]) == {large}
        for bad in (-1, "1", True, 1.5):
            refused = client.post(
                "/api/v1/present", content=wire.dumps({**asked, "sign_from": bad})
            )
            assert refused.status_code == 400 and b"sign_from" in refused.content
    # and a whole log of small files sends them to S3 in bundles, none through the server
    data = make_tree("many", {f"f{n}.txt": f"{n}\n" * 100 for n in range(300)})
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "c") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(data, name="many")
        assert version.open("f299.txt").read() == b"299\n" * 100
    log = tmp_path / "server.log"
    assert requests_to(log, "/api/v1/bundles/publish") >= 1
    assert requests_to(log, "/api/v1/uploads/publish") == 0
    assert server.direct.verify() == []


@pytest.mark.slow
def test_a_packed_object_is_read_from_s3_through_a_url_for_its_bytes_alone(
    team_server: ForebearServer, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    server = team_server  # format 3
    token = server.user("alice", {"iris": "writer"})
    data = make_tree("many", {f"f{n}.txt": f"{n}\n" * 50 for n in range(40)})
    with (
        forebear.Store(server.url, token=token, cache_dir=tmp_path / "c") as store,
        forebear.init(project="iris", store=store) as run,
    ):
        version = run.log_artifact(data, name="many")
        entry = version.entry("f7.txt")
        near = {n: version.entry(f"f{n}.txt") for n in (7, 8, 9)}
    assert server.direct.objects.packed([entry.digest])  # among the others in a pack
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        answer = client.get(f"/api/v1/objects/{entry.digest}")
    assert answer.status_code == 307
    url, byte_range = answer.headers["location"], answer.headers["forebear-range"]
    first, last = (int(n) for n in byte_range.removeprefix("bytes=").split("-"))
    assert last - first + 1 == entry.size and token not in url
    ranged = httpx.get(url, headers={"Range": byte_range}, timeout=60)
    assert ranged.status_code == 206 and ranged.content == b"7\n" * 50
    # the URL reads those bytes and nothing else of the pack: S3 refuses any other range
    for other in (None, "bytes=0-", f"bytes=0-{last}", f"bytes={first}-{last + 1}"):
        refused = httpx.get(url, headers={"Range": other} if other else {}, timeout=60)
        assert refused.status_code == 403, other
    # many at once: URLs of runs of neighbours, each signed for exactly their bytes (no gap:
    # a byte between two objects asked for may be another user's)
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        asked = {"digests": [near[7].digest, near[8].digest, near[9].digest]}
        answer = client.post("/api/v1/objects/read", content=wire.dumps(asked))
        header = json.loads(answer.content.partition(b"\n")[0])
        assert header["objects"] == [] and answer.content.endswith(b"\n")  # no bytes
        [(url, span, members)] = header["runs"]  # neighbours in the pack: one run
        assert [d for d, _ in members] == asked["digests"]
        got = httpx.get(url, headers={"Range": span}, timeout=60)
        assert got.content == b"".join(f"{n}\n".encode() * 50 for n in (7, 8, 9))
        first, last = (int(n) for n in span.removeprefix("bytes=").split("-"))
        assert httpx.get(url, headers={"Range": f"bytes={first}-{last + 1}"}).status_code == 403
        apart = {"digests": [near[7].digest, near[9].digest]}
        answer = client.post("/api/v1/objects/read", content=wire.dumps(apart))
        header = json.loads(answer.content.partition(b"\n")[0])
        assert [len(run[2]) for run in header["runs"]] == [1, 1]  # f8 lies between
    # a client downloads every packed file that way: none of their bytes through the server
    log = tmp_path / "server.log"
    log.write_text("")
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "d") as store:
        store.artifact("iris/many").download(tmp_path / "got")
    assert all((tmp_path / "got" / f"f{n}.txt").read_text() == f"{n}\n" * 50 for n in range(40))
    assert requests_to(log, "/api/v1/objects/", "GET") == 0  # not one alone
    assert requests_to(log, "/api/v1/objects/read") == 1


def test_a_large_files_chunks_come_from_s3_in_runs_of_what_one_answer_holds(
    team_server: ForebearServer, tmp_path: Path
) -> None:
    """A large file's chunks asked for all at once: the answer holds at most 8 MiB of them
    (what the client keeps of one answer; uncapped, a download of 1 GiB held 450 MiB), in
    the order of the pack, so that they come as a run or two of neighbours (picked in the
    order asked, a 256 MiB file came in 3,279 runs: 32 s, now 2.3 s); the rest later."""
    from forebear.objects.bundles import READ_BATCH_BYTES

    server = team_server  # format 3, S3
    token = server.user("alice", {"iris": "writer"})
    content = os.urandom(20 << 20)
    (tmp_path / "model.bin").write_bytes(content)
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "c") as store:
        with forebear.init(project="iris", store=store) as run:
            version = run.log_artifact(tmp_path / "model.bin", name="model")
        chunks = next(iter(store.content.chunk_lists([version.entry("model.bin")]).values()))
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        asked = {"digests": sorted(set(chunks.digests))}  # not the order they are stored in
        answer = client.post("/api/v1/objects/read", content=wire.dumps(asked))
    header = json.loads(answer.content.partition(b"\n")[0])
    carried = [length for _, _, members in header["runs"] for _, length in members]
    assert 0 < sum(carried) <= READ_BATCH_BYTES and header["later"]
    assert len(header["runs"]) <= 2
    assert len(carried) + len(header["later"]) == len(asked["digests"])
    log = tmp_path / "server.log"
    log.write_text("")
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "d") as store:
        got = store.artifact("iris/model").download(tmp_path / "got")
        assert (got / "model.bin").read_bytes() == content
        assert requests_to(log, "/api/v1/objects/read") <= 6  # 8 MiB an answer, and later
        assert requests_to(log, "/api/v1/objects/", "GET") == 0
        log.write_text("")
        with store.artifact("iris/model").open("model.bin") as stream:
            assert stream.read() == content
        assert requests_to(log, "/api/v1/objects/read") <= 12  # a group of 32 chunks each
    assert (
        requests_to(log, "/api/v1/objects/", "GET") <= 3
    )  # the first chunks the stream reads alone
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "e") as store:
        a_damaged_chunk_spoils_only_reads_of_it(
            server, store, store.artifact("iris/model"), content
        )


def test_a_chunk_list_whose_chunks_do_not_make_up_the_file_is_refused(
    server: ForebearServer,
) -> None:
    """Chunks the user sent, named in a chunk list of a file they do not make up: the
    server reads them back end to end before it commits, and refuses the version."""
    from forebear.chunking import ChunkList

    token = server.user("alice", {"iris": "writer"})
    first, second = b"a" * 3000, b"b" * 3000
    claimed = b"a" * 3000 + b"c" * 3000  # the file the version would say it holds
    chunks = ChunkList(
        hash_bytes(claimed), len(claimed), (hash_bytes(first), hash_bytes(second)),
        (len(first), len(second)), server.direct.chunking,
    )  # fmt: skip
    manifest = forebear.Manifest.build(
        [forebear.ManifestEntry("table.bin", chunks.digest, chunks.size)]
    )
    body, slots = bundle_of(first, second, manifest.to_bytes())
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        sent = client.post("/api/v1/bundles", content=encode_index(slots) + b"\n" + body)
        assert sent.status_code == 200
        commit = {"project": "iris", "name": "forged", "type": "dataset",
                  "digest": manifest.digest, "chunk_lists": [chunks], "aliases": [],
                  "tags": []}  # fmt: skip
        answer = client.post("/api/v1/commit", content=wire.dumps(commit))
        assert answer.status_code == 422, answer.content
        assert b"do not make up that file" in answer.content
    with pytest.raises(forebear.ArtifactNotFound):  # nothing was committed
        server.direct.versions("iris/forged")
