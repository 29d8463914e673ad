"""The web UI shows the lifecycle read-only: tags, TTL, deleted versions and runs (marked,
not linked to files), purged files, retention, and the audit trail, escaped like the rest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import forebear
from forebear.web import app as web

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def client(local_store: forebear.Store, make_tree: Callable[..., Path]) -> Iterator[TestClient]:
    store = local_store
    data = make_tree("d", {"a.txt": "a", "secret.txt": "card"})
    with forebear.init(project="demo", name="prepare", store=store) as run:
        run.log_artifact(data, name="ds", tags=["baseline"], ttl=dt.timedelta(days=30))
        (data / "a.txt").write_text("b")
        run.log_artifact(data, name="ds")
    store.artifact("ds:v0").delete()
    store.purge(data / "secret.txt", reason=f"GDPR {HOSTILE}")
    store.set_retention("ds", keep_last=3)
    store.delete_run(run.id)
    with TestClient(web.create_app(store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_artifact_page_hides_deleted_versions_until_asked(client: TestClient) -> None:
    page = client.get("/artifacts/demo/ds").text
    assert 'href="/artifacts/demo/ds/v1"' in page and 'href="/artifacts/demo/ds/v0"' not in page
    assert "show 1 deleted version" in page
    assert "keep the last 3" in page
    shown = client.get("/artifacts/demo/ds", params={"deleted": "1"}).text
    assert 'href="/artifacts/demo/ds/v0"' in shown and "deleted" in shown
    assert '<span class="tag">baseline</span>' in shown
    history = client.get("/api/artifacts/demo/ds").json()["audit"]
    assert {e["action"] for e in history} >= {"log", "delete", "purge", "retention"}


def test_a_deleted_version_is_shown_as_deleted_without_file_links(client: TestClient) -> None:
    page = client.get("/artifacts/demo/ds/v0")
    assert page.status_code == 200
    assert 'id="deleted"' in page.text and "forebear restore demo/ds:v0" in page.text
    assert "/files/" not in page.text
    assert 'id="expires"' in page.text
    assert client.get("/artifacts/demo/ds/v0/files/a.txt").status_code == 410
    assert client.get("/artifacts/demo/ds/v9").status_code == 404
    lineage = client.get("/api/artifacts/demo/ds/v0/lineage").json()
    assert any(node.get("deleted") for node in lineage["nodes"])


def test_purged_files_are_listed_never_served(client: TestClient) -> None:
    page = client.get("/artifacts/demo/ds/v1")
    assert 'id="redacted"' in page.text and "secret.txt" in page.text
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    gone = client.get("/artifacts/demo/ds/v1/files/secret.txt")
    assert gone.status_code == 410 and "purged" in gone.text and HOSTILE not in gone.text
    assert client.get("/artifacts/demo/ds/v1/files/a.txt").content == b"b"
    api = client.get("/api/artifacts/demo/ds/v1").json()
    assert list(api["purged"]) == ["secret.txt"] and api["version"]["redacted"] is True


def test_the_audit_page_and_deleted_runs(client: TestClient) -> None:
    audit = client.get("/audit")
    assert audit.status_code == 200 and "delete-run" in audit.text
    assert HOSTILE not in audit.text
    events = client.get("/api/audit").json()["events"]
    assert events[0]["action"] == "delete-run"  # newest first
    assert "prepare" not in client.get("/runs").text
    assert "deleted" in client.get("/runs", params={"deleted": "1"}).text
    tagged = client.get("/", params={"tag": "baseline"}).text
    assert "/artifacts/demo/ds" not in tagged  # its tagged version is deleted
