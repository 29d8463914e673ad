"""A forebear server under attack: every request is checked against the token's user and
their roles; another project's data never leaks, by name, by id or by digest; bytes never
become visible under a digest they do not match; malformed and oversized requests get one
clear 4xx, never a 5xx. Each test runs a real server process over SQLite + a folder."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

import forebear
from forebear import wire
from forebear.hashing import hash_bytes
from forebear.paths import parse_ref

from .serving import ForebearServer

pytestmark = pytest.mark.server


class Team:
    """A server with a project ``iris`` (alice writes, bob reads, maya maintains) and a
    project ``other`` (carol writes), and one version ``iris/ds:v0`` that alice logged."""

    def __init__(self, server: ForebearServer, tree: Callable[..., Path]) -> None:
        self.server = server
        self.alice = server.user("alice", {"iris": "writer"})
        self.bob = server.user("bob", {"iris": "reader"})
        self.carol = server.user("carol", {"other": "writer"})
        self.maya = server.user("maya", {"iris": "maintainer"})
        self.secret = b"the iris secret: 42\n"
        with forebear.Store(server.url, token=self.alice) as store:
            with forebear.init(project="iris", store=store) as run:
                version = run.log_artifact(
                    tree("iris-data", {"secret.txt": self.secret, "b.txt": "b"}), name="ds"
                )
            self.version_id = version.id
            self.manifest_digest = version.digest
            self.secret_digest = version.entry("secret.txt").digest or ""
            self.run_id = run.id

    def http(self, token: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def refused_commit(self, name: str, entries: list[forebear.ManifestEntry]) -> bytes:
        """Carol uploads a manifest of ``entries`` and commits it as ``other/<name>``: the
        server's answer, a 400, after which she finds no such artifact."""
        return self.refused_manifest(name, forebear.Manifest.build(entries).to_bytes())

    def refused_manifest(self, name: str, manifest: bytes) -> bytes:
        """`refused_commit` for a manifest's bytes, as carol wrote them."""
        digest = hash_bytes(manifest)
        with self.http(self.carol) as client:
            put = client.put(f"/api/v1/objects/{digest}", content=manifest)
            assert put.status_code == 201
            body = {"project": "other", "name": name, "type": "dataset", "tags": [],
                    "digest": digest, "chunk_lists": [], "aliases": []}  # fmt: skip
            response = client.post("/api/v1/commit", content=wire.dumps(body))
            assert response.status_code == 400, response.content
        with (
            forebear.Store(self.server.url, token=self.carol) as carol,
            pytest.raises(forebear.ArtifactNotFound),
        ):
            carol.artifact(f"other/{name}")
        return response.content

    def call(
        self, token: str | None, method: str, *args: object, **kwargs: object
    ) -> httpx.Response:
        with self.http(token) as client:
            body = wire.dumps({"args": list(args), "kwargs": kwargs})
            return client.post(f"/api/v1/call/{method}", content=body)


@pytest.fixture
def team(tmp_path: Path, make_tree: Callable[..., Path]) -> Iterator[Team]:
    server = ForebearServer.over_folder(tmp_path)
    try:
        yield Team(server, make_tree)
    finally:
        server.stop()


def test_no_wrong_revoked_expired_or_disabled_token_gets_in(team: Team) -> None:
    server = team.server
    for token in (None, "fbt_not-a-token", "Basic abc", team.alice + "x"):
        with team.http(token) as client:
            for method, path in (("GET", "/api/v1/info"), ("POST", "/api/v1/call/all_versions"),
                                 ("GET", f"/api/v1/objects/{team.manifest_digest}")):  # fmt: skip
                response = client.request(method, path, content=b"{}")
                assert response.status_code == 401, (token, path)
                assert team.secret not in response.content
    with pytest.raises(forebear.AuthenticationError):
        forebear.Store(server.url, token="fbt_wrong")
    with pytest.raises(forebear.AuthenticationError, match="FOREBEAR_TOKEN"):
        forebear.Store(server.url)  # no token at all: one clear error
    # revoked: stops at once, the user's other tokens keep working
    spare = server.direct.create_token("alice", "spare")
    with forebear.Store(server.url, token=team.alice) as alice:
        assert alice.artifact("iris/ds").version == "v0"
        server.direct.revoke_token("alice", "tests")
        with pytest.raises(forebear.AuthenticationError):
            alice.artifact("iris/ds")
    with forebear.Store(server.url, token=spare) as alice:
        assert alice.artifact("iris/ds").version == "v0"
    # expired
    old = server.direct.backend.create_token(
        "bob", "old", dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    )
    assert team.call(old, "all_versions").status_code == 401
    # disabled: every token of the user stops
    server.direct.disable_user("bob")
    assert team.call(team.bob, "all_versions").status_code == 401
    assert [t.name for t in server.direct.tokens("alice")] == ["tests", "spare"]
    assert not server.direct.tokens("alice")[0].active


def test_a_reader_cannot_write_and_a_writer_cannot_delete(team: Team, tmp_path: Path) -> None:
    (tmp_path / "new.txt").write_text("new")
    with forebear.Store(team.server.url, token=team.bob) as bob:
        assert bob.artifact("iris/ds").open("b.txt").read() == b"b"  # readers read
        with pytest.raises(forebear.PermissionDenied, match="writer"):
            forebear.init(project="iris", store=bob)
        with pytest.raises(forebear.PermissionDenied):
            bob.artifact("iris/ds").add_alias("best")
        logger = bob.artifact("iris/ds").logged_by()
        assert logger is not None
        logger.tags.append("defaced")  # nor change the runs they read
        with pytest.raises(forebear.PermissionDenied, match="writer"):
            logger.update()
        with pytest.raises(forebear.PermissionDenied, match="writer"):
            logger.summary["acc"] = 0.0
    with forebear.Store(team.server.url, token=team.alice) as alice:
        version = alice.artifact("iris/ds")
        version.add_alias("candidate")  # writers move unprotected aliases
        version.description = "checked"
        version.save()  # and edit
        version.ttl = dt.timedelta(seconds=1)  # an expiry is a deletion put off
        with pytest.raises(forebear.PermissionDenied, match="maintainer"):
            version.save()
        assert alice.artifact("iris/ds").ttl is None
        with pytest.raises(forebear.PermissionDenied, match="maintainer"):
            version.delete(delete_aliases=True)
        with pytest.raises(forebear.PermissionDenied, match="maintainer"):
            alice.set_retention("iris/ds", keep_last=1)
        with pytest.raises(forebear.PermissionDenied, match="admin"):
            alice.gc()
        with pytest.raises(forebear.PermissionDenied, match="admin"):
            alice.add_user("mallory")
    with forebear.Store(team.server.url, token=team.maya) as maya:
        kept = maya.artifact("iris/ds")
        kept.ttl = dt.timedelta(days=30)
        kept.save()
        assert maya.artifact("iris/ds").ttl == dt.timedelta(days=30)
        maya.protect_alias("iris/ds", "production")
        maya.artifact("iris/ds").add_alias("production", force=True)
    with forebear.Store(team.server.url, token=team.alice) as alice:
        with pytest.raises(forebear.PermissionDenied):
            alice.artifact("iris/ds").add_alias("production", force=True)
        assert alice.artifact("iris/ds:production").version == "v0"


def test_an_edit_names_a_run_of_the_versions_own_project(team: Team) -> None:
    dave = team.server.user("dave", {"iris": "writer", "other": "writer"})
    with forebear.Store(team.server.url, token=dave) as store:
        with forebear.init(project="other", store=store) as run:
            elsewhere = run.id
        version = store.backend.version_by_id(team.version_id)
        with pytest.raises(forebear.InvalidInput, match="another project"):
            store.backend.edit_version(version, {"description": "x", "run_id": elsewhere})
        store.backend.edit_version(version, {"description": "x", "run_id": team.run_id})
    alice = forebear.Store(team.server.url, token=team.alice)
    with alice, pytest.raises(forebear.PermissionDenied):  # alice may not write to "other"
        alice.backend.edit_version(version, {"description": "y", "run_id": elsewhere})
    assert team.server.direct.artifact("iris/ds").description == "x"


def test_another_users_token_cannot_rewrite_a_runs_config_or_summary(team: Team) -> None:
    """A run's config and summary are saved as a script changes them (``update_run``):
    a reader of the project, or a writer of another one, changes neither."""
    for token in (team.bob, team.carol):
        for change in ({"config": {"lr": 9}}, {"summary": {"acc": 1.0}}):
            answer = team.call(token, "update_run", team.run_id, **change)
            assert answer.status_code == 403, answer.content
    with forebear.Store(team.server.url, token=team.alice) as alice:
        run = alice.run(team.run_id)
        assert (run.config, run.summary) == ({}, {})


def test_a_run_names_the_tokens_user_whoever_the_client_says_started_it(team: Team) -> None:
    """``run.user`` is who a server knows the token as: a client that says another user
    started the run (in its context) is not believed."""
    with forebear.Store(team.server.url, token=team.alice) as alice:
        run = alice.run(team.run_id)
        assert run.user is not None and run.user.username == "alice"
        assert forebear.Api(alice).viewer.username == "alice"
        forged = alice.backend.create_run("forged01", "iris", "n", {}, {"user": "maya"})
        assert forged.context["user"] == "alice"
        assert alice.run("forged01").user == run.user


def test_a_reader_lists_only_runs_it_may_read_in_full_pages(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server keeps other projects' runs out of the query itself, so each page a
    reader gets is full of its own runs, and counts count only those."""
    import forebear.run_listing

    mine = [team.run_id]
    with (
        forebear.Store(team.server.url, token=team.alice) as alice,
        forebear.Store(team.server.url, token=team.carol) as carol,
    ):
        for number in range(4):  # interleaved with runs bob may not read
            with forebear.init(project="other", name=f"o{number}", store=carol):
                pass
            with forebear.init(project="iris", name=f"i{number}", store=alice) as run:
                mine.append(run.id)
        foreign = carol.runs()[0].id
    calls: list[int] = []
    with forebear.Store(team.server.url, token=team.bob) as bob:
        monkeypatch.setattr(forebear.run_listing, "PAGE", 2)
        listed = bob.backend.list_runs
        monkeypatch.setattr(
            bob.backend,
            "list_runs",
            lambda *a, **k: calls.append(len(found := listed(*a, **k))) or found,
        )
        assert [r.id for r in bob.iter_runs()] == mine
        assert bob.projects() == ["iris"]  # not "other", which carol's runs made
        assert calls == [2, 2, 1]  # full pages: no run of "other" was sent and dropped
        assert bob.count_runs() == 5 and bob.count_runs("iris") == 5
        with pytest.raises(forebear.PermissionDenied):
            bob.count_runs("other")
    for method, args, kwargs in (
        ("list_runs", [None], {"after": foreign, "limit": 2}),  # another project's run
        ("list_runs", ["other"], {"limit": 2}),
        ("count_runs", ["other"], {}),
    ):
        response = team.call(team.bob, method, *args, **kwargs)
        assert response.status_code == 403, (method, response.content)
        assert b"o0" not in response.content
    for limit in (None, 5001):  # a page, never the whole catalog in one answer
        response = team.call(team.bob, "list_runs", None, limit=limit)
        assert response.status_code == 400 and b"at most 5000 runs" in response.content
    response = team.call(team.bob, "list_runs", None, within=["other", "iris"], limit=2)
    assert [run.project for run in wire.loads(response.content)["result"]] == ["iris", "iris"]


def test_another_projects_data_never_leaks(team: Team) -> None:
    with forebear.Store(team.server.url, token=team.carol) as carol:
        for ref in ("iris/ds", "iris/ds:v0", "iris/nothing-here", "ds"):
            with pytest.raises(forebear.PermissionDenied):
                carol.artifact(ref)
        assert carol.artifacts() == [] and carol.runs() == [] and carol.projects() == []
        assert forebear.Api(carol).projects() == [] and carol.count_runs() == 0
        assert carol.which(team.secret_digest) == []
        assert carol.audit() == []
        with pytest.raises(forebear.PermissionDenied):
            carol.run(team.run_id)
        with pytest.raises(forebear.PermissionDenied):
            carol.versions("ds", project="iris")
    digest = team.secret_digest
    # by guessing ids and digests over HTTP
    for method, args in (
        ("version_by_id", [team.version_id]),
        ("entries", [team.version_id, 0, None]),
        ("lineage", [team.version_id, True, True, None]),
        ("get_run", [team.run_id]),
        ("run_history", [team.run_id]),
        ("get_version", [parse_ref("iris/ds"), None]),
    ):
        response = team.call(team.carol, method, *args)
        assert response.status_code == 403, (method, response.content)
        assert team.secret not in response.content and b"secret.txt" not in response.content
        if method != "get_version":  # by id: walking the ids names no project
            assert b"iris" not in response.content, (method, response.content)
    chunks = team.call(team.carol, "chunk_lists", [digest])
    assert chunks.status_code == 200 and wire.loads(chunks.content)["result"] == {}
    with team.http(team.carol) as client:
        response = client.get(f"/api/v1/objects/{digest}")
        assert response.status_code == 403 and team.secret not in response.content
        present = client.post("/api/v1/present", content=wire.dumps({"sizes": {digest: 20}}))
        assert wire.loads(present.content)["present"] == []  # existence is not confirmed


def test_a_digest_alone_is_no_way_into_another_projects_bytes(team: Team, tmp_path: Path) -> None:
    """Carol names alice's secret by its digest in a version of her own project, without
    sending its bytes: refused, and she cannot read it afterwards."""
    stolen = forebear.ManifestEntry("stolen.txt", team.secret_digest, len(team.secret))
    assert b"not uploaded by you" in team.refused_commit("loot", [stolen])


def test_a_commit_of_many_files_is_checked_a_page_at_a_time_in_flat_memory(team: Team) -> None:
    """A manifest of 200,000 files carol neither sent nor may read: the server reads it
    back a page at a time, counts every file in its refusal, and its memory stays flat
    (it held every entry at once)."""
    entries = [
        forebear.ManifestEntry(f"d{i // 1000:03d}/f{i:06d}", hash_bytes(b"%d" % i), 10)
        for i in range(200_000)
    ]
    before = peak_memory(team.server)
    answer = team.refused_commit("many", entries)
    assert b"200000 files of this version were not uploaded by you" in answer
    assert b"d000/f000000, d000/f000001, d000/f000002, d000/f000003, d000/f000004;" in answer
    assert peak_memory(team.server) - before < 100 << 20  # 28 MiB here, 172 MiB before


def test_a_manifest_not_in_canonical_form_is_refused(team: Team) -> None:
    entry = {"digest": team.secret_digest, "path": "a.txt", "size": len(team.secret)}
    document = {"entries": [entry], "hash": "xxh3-128", "manifest_version": 1}
    spaced = json.dumps(document, indent=1).encode()
    assert b"not in canonical form" in team.refused_manifest("spaced", spaced)
    compact = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    twice = b'{"entries":[%s,%s],"hash":"xxh3-128","manifest_version":1}' % (compact, compact)
    assert b"not in canonical form" in team.refused_manifest("twice", twice)
    escaping = twice.replace(b'"a.txt"', b'"../escape.txt"', 1)
    answer = team.refused_manifest("escaping", escaping)
    assert b"../escape.txt" in answer and b"canonical" not in answer
    for garbage in (b"", b"[]", b'{"entries":[', b"\xff\xfe"):
        answer = team.refused_manifest("garbage", garbage)
        assert b"not in canonical form (unreadable manifest: " in answer


def peak_memory(server: ForebearServer) -> int:
    """The most memory the server process has held since it started (its VmHWM)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
        * 1024
    )


@pytest.mark.parametrize("size", [2**70, 2**63, -1])
def test_a_size_no_catalog_can_hold_is_refused_and_nothing_is_committed(
    team: Team, size: int
) -> None:
    """A reference's size is the client's word (no bytes are checked against it): one past
    what a 64-bit integer holds, or below zero, is refused by name, not stored as some
    other number."""
    huge = forebear.ManifestEntry("huge.bin", None, size, "s3://bucket/huge.bin", "etag-1")
    answer = team.refused_commit("huge", [huge])
    assert b"huge.bin" in answer and b"not a count of bytes" in answer


def test_sizes_adding_up_past_what_a_catalog_holds_are_refused(team: Team) -> None:
    halves = [
        forebear.ManifestEntry(f"half{i}.bin", None, 2**62, f"s3://b/half{i}", "e") for i in (1, 2)
    ]
    assert b"add up to 9223372036854775808 bytes" in team.refused_commit("halves", halves)


def test_wrong_bytes_never_become_visible_under_a_digest(team: Team, tmp_path: Path) -> None:
    objects = team.server.direct.objects
    genuine = team.secret_digest
    fresh = hash_bytes(b"what carol claims")
    with team.http(team.carol) as client:
        for digest in (fresh, genuine):
            response = client.put(f"/api/v1/objects/{digest}", content=b"forged bytes")
            assert response.status_code == 422, response.content
            assert b"forged" not in response.content
    assert not objects.has(fresh)
    assert objects.read_bytes(genuine) == team.secret  # the genuine object is untouched
    assert team.server.direct.verify() == []
    with team.http(team.bob) as client:  # readers may not upload at all
        assert client.put(f"/api/v1/objects/{fresh}", content=b"x").status_code == 403


def test_malformed_and_oversized_requests_get_one_clear_4xx(team: Team) -> None:
    with team.http(team.alice) as client:
        cases = [
            ("POST", "/api/v1/call/no_such_method", b"{}"),
            ("POST", "/api/v1/call/close", b"{}"),
            ("POST", "/api/v1/call/log", b"{}"),
            ("POST", "/api/v1/call/all_versions", b"not json"),
            ("POST", "/api/v1/call/all_versions", b'{"args": 5}'),
            ("POST", "/api/v1/call/get_version", b'{"args": [{"$o": "os.system", "v": []}]}'),
            ("POST", "/api/v1/call/version_by_id", b'{"args": ["1; drop table x"]}'),
            ("POST", "/api/v1/call/version_by_id", b'{"args": [1, 2, 3]}'),
            ("POST", "/api/v1/call/entries", b'{"args": [{"$dt": "yesterday"}]}'),
            ("POST", "/api/v1/present", b'{"sizes": {"../../etc/passwd": 1}}'),
            # the same, through the protocol's own encoding: the digests themselves refused
            ("POST", "/api/v1/present", wire.dumps({"sizes": {"../../etc/passwd": 1}})),
            # a line end after the digits (a regex's "$" lets one through)
            ("POST", "/api/v1/present", wire.dumps({"sizes": {"0" * 32 + "\n": 1}})),
            ("POST", "/api/v1/uploads", wire.dumps({"sizes": {"0" * 32 + "\n": 1}})),
            (
                "POST",
                "/api/v1/uploads/publish",
                wire.dumps({"staged": {"0" * 32 + "\n": "1" * 32}}),
            ),
            (
                "POST",
                "/api/v1/uploads/publish",
                wire.dumps({"staged": {"0" * 32: "1" * 32 + "\n"}}),
            ),
            ("GET", "/api/v1/objects/" + "0" * 32 + "%0A", b""),
            ("PUT", "/api/v1/objects/..%2F..%2Fforebear.json", b"x"),
            ("GET", "/api/v1/objects/not-a-digest", b""),
            ("POST", "/api/v1/commit", b'{"$d": {"project": "iris"}}'),
            ("POST", "/api/v1/commit", json.dumps([1] * 10).encode()),
            # the wrong types, where the catalog would otherwise choke on them
            ("POST", "/api/v1/call/latest_versions", b'{"$d": {"args": [5, null]}}'),
            (
                "POST",
                "/api/v1/call/get_version",
                b'{"$d": {"args": [{"$o": "Ref", "v": [5, 6, 7]}, null]}}',
            ),
            (
                "POST",
                "/api/v1/call/list_runs",
                b'{"$d": {"args": [null], "kwargs": '
                b'{"$d": {"include_deleted": "yes", "extra": 1}}}}',
            ),
            ("POST", "/api/v1/call/entries", b'{"$d": {"args": [1, 0, 10000000]}}'),
            ("POST", "/api/v1/call/which", b'{"$d": {"args": [["x"]]}}'),
            # a duration or a number beyond any float: float() of it would overflow
            ("POST", "/api/v1/call/gc", b'{"$d": {"args": [true, {"$td": 1e300}]}}'),
            ("POST", "/api/v1/call/gc", b'{"$d": {"args": [true, {"$td": 1' + b"0" * 400 + b"}]}}"),
            ("POST", "/api/v1/present", wire.dumps({"sizes": {"0" * 32: 10**400}})),
            ("POST", "/api/v1/present", wire.dumps({"sizes": {"0" * 32: 1e300}})),
            ("POST", "/api/v1/uploads", wire.dumps({"sizes": {"0" * 32: 10**400}})),
            ("POST", "/api/v1/uploads", wire.dumps({"sizes": {"0" * 32: -1}})),
            ("POST", "/api/v1/present", wire.dumps({"sizes": {"0" * 32: True}})),
        ]
        for method, path, body in cases:
            response = client.request(method, path, content=body)
            assert 400 <= response.status_code < 500, (path, body, response.status_code)
            assert response.json()["error"], (path, body)
        deep = b'{"args": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
        assert 400 <= client.post("/api/v1/call/all_versions", content=deep).status_code < 500
        huge = client.post(
            "/api/v1/call/all_versions", content=b" " * (64 << 20) + b"{}"
        )  # past the limit: refused before it is all read
        assert huge.status_code == 413
    with (
        forebear.Store(team.server.url, token=team.alice) as alice,
        pytest.raises(forebear.NotFound, match="vNaN"),
    ):
        alice.artifact("iris/ds:vNaN")  # one clear error, as on a direct store


def test_host_names_and_the_access_log(tmp_path: Path) -> None:
    server = ForebearServer.over_folder(tmp_path, extra=("--allowed-host", "127.0.0.1"))
    try:
        good = httpx.get(
            f"{server.url}/api/v1/info", headers={"authorization": f"Bearer {server.admin_token}"}
        )
        assert good.status_code == 200
        rebound = httpx.get(
            f"{server.url}/api/v1/info",
            headers={"host": "evil.example", "authorization": f"Bearer {server.admin_token}"},
        )
        assert rebound.status_code == 400
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line["path"] == "/api/v1/info" and line["user"] == "admin" for line in lines)
    assert server.admin_token not in log  # tokens are never logged
