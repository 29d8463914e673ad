"""A team on a forebear server: the CLI and the Python API through it with a token only,
`forebear login`, admin commands through the server, the web UI behind a login, and two
replicas over one PostgreSQL + S3 serving concurrent writers (versions gapless, bytes
read from S3 through presigned URLs)."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

import forebear

from .conftest import clean_env, run_cli
from .serving import ForebearServer

# a picture of one red pixel, as a PNG file holds it
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)

pytestmark = pytest.mark.server


def test_the_cli_works_through_a_server_with_a_token_only(
    server: ForebearServer, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    alice = server.user("alice", {"iris": "writer"})
    env = clean_env(FOREBEAR_URL=server.url, FOREBEAR_TOKEN=alice, FOREBEAR_PROJECT="iris")
    data = make_tree("data", {"train.csv": "a,b\n1,2\n", "big.bin": os.urandom(9 << 20)})
    logged = run_cli("log", str(data), "--name", "iris-raw", "--alias", "gold", env=env)
    assert logged.returncode == 0, logged.stderr
    shown = run_cli("show", "iris-raw:gold", "--json", env=env)
    assert json.loads(shown.stdout)["files"] == 2 or "train.csv" in shown.stdout
    got = run_cli("get", "iris-raw:gold", str(tmp_path / "out"), env=env)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "train.csv").read_text() == "a,b\n1,2\n"
    assert (tmp_path / "out" / "big.bin").read_bytes() == (data / "big.bin").read_bytes()
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert status["catalog"] == server.url and status["versions"] == 1
    # what the user may not do is one line on stderr
    refused = run_cli("gc", env=env)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "admin" in refused.stderr and "Traceback" not in refused.stderr
    # no credentials of the store reach the client
    assert "meta.db" not in status["catalog"] and "sqlite" not in json.dumps(status)


def test_login_keeps_the_token_for_later_commands(
    server: ForebearServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = server.user("bob", {"iris": "reader"})
    home = tmp_path / "config"
    env = clean_env(XDG_CONFIG_HOME=str(home))
    wrong = run_cli("login", server.url, "--token", "fbt_wrong", env=env)
    assert wrong.returncode == 1 and "refused the token" in wrong.stderr
    done = run_cli("login", server.url, "--token", bob, env=env)
    assert done.returncode == 0 and "as bob" in done.stdout
    kept = home / "forebear" / "login.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    listed = run_cli("ls", env={**env, "FOREBEAR_URL": server.url})
    assert listed.returncode == 0, listed.stderr
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    with forebear.open(server.url) as store:  # the Python API finds the kept token too
        assert store.backend.actor == "bob"
    # W&B's wandb.login(key=..., host=...) does the same from Python
    kept.unlink()
    with pytest.raises(forebear.AuthenticationError, match="refused the token"):
        forebear.login(key="fbt_wrong", host=server.url)
    assert not kept.exists()
    monkeypatch.delenv("FOREBEAR_TOKEN", raising=False)
    with pytest.raises(forebear.InvalidInput, match="needs its token"):
        forebear.login(host=server.url)
    assert forebear.login(key=bob, host=server.url) is True
    with forebear.open(server.url) as store:
        assert store.backend.actor == "bob"


def test_admin_commands_work_directly_and_through_the_server(
    server: ForebearServer, tmp_path: Path
) -> None:
    direct = ["--db", server.db_url, "--objects", server.objects_url]
    assert run_cli(*direct, "user", "add", "dave", env=clean_env()).returncode == 0
    through = clean_env(FOREBEAR_URL=server.url, FOREBEAR_TOKEN=server.admin_token)
    assert run_cli("grant", "dave", "iris", "writer", env=through).returncode == 0
    created = run_cli("token", "create", "dave", "--name", "ci", "--expires", "30d", env=through)
    token = created.stdout.strip()
    assert re.fullmatch(r"fbt_[\w-]{40,}", token)
    tokens = json.loads(run_cli("token", "ls", "dave", "--json", env=through).stdout)
    assert [t["name"] for t in tokens] == ["ci"] and tokens[0]["active"]
    assert token not in json.dumps(tokens)  # only its hash is kept
    users = json.loads(run_cli("user", "ls", "--json", env=through).stdout)
    assert {u["name"]: u["grants"] for u in users}["dave"] == {"iris": "writer"}
    as_dave = clean_env(FOREBEAR_URL=server.url, FOREBEAR_TOKEN=token)
    refused = run_cli("user", "add", "eve", env=as_dave)
    assert refused.returncode == 1 and "admin" in refused.stderr
    assert run_cli("token", "revoke", "dave", "ci", env=through).returncode == 0
    gone = run_cli("ls", env=as_dave)
    assert gone.returncode == 1 and "refused the token" in gone.stderr
    audit = [e for e in server.direct.audit() if e.target == "user dave"]
    assert [e.action for e in audit] == ["user-add", "grant", "token-create", "token-revoke"]
    assert [e.actor for e in audit][1:] == ["admin", "admin", "admin"]


def test_the_web_ui_is_behind_a_login_with_csrf_protection(
    server: ForebearServer, make_tree: Callable[..., Path]
) -> None:
    alice = server.user("alice", {"iris": "writer"})
    carol = server.user("carol", {"other": "reader"})
    with (
        forebear.Store(server.url, token=alice) as store,
        forebear.init(project="iris", store=store) as run,
    ):
        run.log_artifact(make_tree("d", {"a.txt": "a"}), name="iris-raw")
        run.log_artifact(make_tree("d", {"a.txt": "a", "b.txt": "b"}), name="iris-raw")
        picture = forebear.Image(make_tree("p", {"dot.png": PNG}) / "dot.png")
        run.log({"sample": picture})
        kept = run.summary["sample"]
    project, name_and_number = kept["artifact"].split("/")
    shown = f"/artifacts/{project}/{name_and_number.replace(':', '/')}/view/{kept['path']}"
    html = {"accept": "text/html"}
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        assert browser.get("/", headers=html).status_code == 303  # to the login page
        assert browser.get("/runs").status_code == 401  # a script: no redirect, 401
        page = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf is not None
        form = {"csrf": csrf.group(1), "token": alice, "next": "/"}
        assert browser.post("/login", data={**form, "csrf": "forged"}).status_code == 403
        evil = browser.post("/login", data=form, headers={"origin": "https://evil.example"})
        assert evil.status_code == 403
        assert browser.post("/login", data={**form, "token": "fbt_x"}).status_code == 401
        for target in ("https://evil.example", "//evil.example/x"):  # no open redirect
            moved = browser.post("/login", data={**form, "next": target})
            assert moved.status_code == 303 and moved.headers["location"] == "/"
        cookie = moved.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "iris-raw" in browser.get("/", headers=html).text
        image = browser.get(shown)  # a logged picture, shown inline to who may read it
        assert image.content == PNG and image.headers["content-type"] == "image/png"
        assert browser.get(shown.replace("/view/", "/files/")).content == PNG  # a download
        diff = browser.get("/api/artifacts/iris/iris-raw/v1?diff=v0").json()["diff"]
        assert diff["added"] == ["b.txt"] and diff["removed"] == diff["modified"] == []
        # the session cookie is no key to the API: that needs the bearer token
        assert browser.get("/api/v1/info").status_code == 401
        assert browser.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert browser.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
        assert browser.get("/", headers=html).status_code == 303
    with httpx.Client(base_url=server.url, timeout=60) as other:
        page = other.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        other.post("/login", data={"csrf": csrf.group(1), "token": carol, "next": "/"})
        assert "iris-raw" not in other.get("/", headers=html).text  # only granted projects
        refused = other.get(shown)
        assert refused.status_code == 403 and PNG not in refused.content
        assert other.get("/artifacts/iris/iris-raw/v0", headers=html).status_code == 403
        server.direct.revoke_token("carol", "tests")
        assert other.get("/", headers=html).status_code == 303  # a revoked token: at once


@pytest.mark.slow
@pytest.mark.parametrize("store_format", [2, 3])
def test_two_replicas_serve_one_team_over_postgres_and_s3(
    postgres_url: str,
    s3_url: str,
    tmp_path: Path,
    make_tree: Callable[..., Path],
    store_format: int,
) -> None:
    # objects read by presigned URL: loose ones by their keys, packed ones by their packs'
    forebear.Store(postgres_url, s3_url, cache_dir=tmp_path / "made", format=store_format).close()
    first = ForebearServer(postgres_url, s3_url, tmp_path / "first.log")
    second = ForebearServer(postgres_url, s3_url, tmp_path / "second.log", replica_of=first)
    try:
        token = first.user("alice", {"iris": "writer"})
        errors: list[BaseException] = []
        big = os.urandom(9 << 20)

        def writer(number: int) -> None:
            replica = (first, second)[number % 2]
            try:
                with forebear.Store(
                    replica.url, token=token, cache_dir=tmp_path / f"c{number}"
                ) as store:
                    for step in range(5):
                        files: dict[str, str | bytes] = {"n.txt": f"{number}-{step}"}
                        if number == step == 0:  # a large file too: stored in chunks
                            files["big.bin"] = big
                        data = make_tree(f"w{number}-{step}", files)
                        with forebear.init(project="iris", store=store) as run:
                            run.log_artifact(data, name="shared")
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with forebear.Store(second.url, token=token, cache_dir=tmp_path / "reader") as store:
            numbers = [v.version for v in store.versions("iris/shared")]
            assert numbers == [f"v{n}" for n in range(20)]  # gapless across replicas
            contents = {store.artifact(f"iris/shared:{n}").open("n.txt").read() for n in numbers}
            assert len(contents) == 20
            chunked = [v for v in store.versions("iris/shared") if "big.bin" in v.files()]
            assert len(chunked) == 1 and chunked[0].open("big.bin").read() == big
            digest = store.artifact("iris/shared:v0").entry("n.txt").digest
        with httpx.Client(base_url=first.url, timeout=60) as client:
            answer = client.get(
                f"/api/v1/objects/{digest}", headers={"authorization": f"Bearer {token}"}
            )
        # the bytes come from S3 through a short-lived presigned URL, not through the server
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in location and token not in location
        assert ("forebear-range" in answer.headers) == (store_format == 3)
        assert first.direct.verify() == []
        # nor do uploads pass through a server: they went to S3 through presigned URLs
        logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
        assert '"PUT"' not in logs and "/api/v1/bundles/publish" in logs
    finally:
        second.stop()
        first.stop()


@pytest.mark.slow
def test_a_presigned_upload_is_checked_before_it_is_published(
    team_server: ForebearServer, tmp_path: Path
) -> None:
    from forebear import wire
    from forebear.hashing import hash_bytes

    server = team_server
    token = server.user("alice", {"iris": "writer"})
    genuine = b"genuine bytes"
    digest = hash_bytes(genuine)
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        asked = client.post("/api/v1/uploads", content=wire.dumps({"sizes": {digest: 13}}))
        upload = wire.loads(asked.content)["uploads"][digest]
        key = upload["url"].split("?")[0]
        assert "/staging/" in key and "/objects/" not in key  # never the object's own key
        assert httpx.put(upload["url"], content=b"forged bytes!").status_code == 200
        staged = wire.dumps({"staged": {digest: upload["id"]}})
        refused = client.post("/api/v1/uploads/publish", content=staged)
        assert refused.status_code == 422
        assert not server.direct.objects.has(digest)  # nothing visible under the digest
        again = wire.loads(
            client.post("/api/v1/uploads", content=wire.dumps({"sizes": {digest: 13}})).content
        )["uploads"][digest]
        assert httpx.put(again["url"], content=genuine).status_code == 200
        staged = wire.dumps({"staged": {digest: again["id"]}})
        assert client.post("/api/v1/uploads/publish", content=staged).status_code == 200
        # the URL used again after publishing changes nothing
        assert httpx.put(again["url"], content=b"forged bytes!").status_code == 200
    assert server.direct.objects.read_bytes(digest) == genuine


def test_push_or_pull_through_a_server_is_refused_before_the_other_store_is_made(
    server: ForebearServer, tmp_path: Path
) -> None:
    token = server.user("alice", {"iris": "writer"})
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as store:
        for move in (store.push, store.pull):
            with pytest.raises(forebear.StoreError, match="reached through a forebear server"):
                move(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
