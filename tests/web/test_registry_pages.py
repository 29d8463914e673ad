"""The web UI's registry page: each collection's aliases now and before, the source each
links (with its lineage), protected aliases, and who moved what and why, escaped."""

from __future__ import annotations

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
    model = make_tree("m", {"model.pkl": "w0"})
    with forebear.init(project="fraud", name="train", store=store) as run:
        first = run.link_model(model, "fraud-detector", name="fraud-rf", aliases=["staging"])
    (model / "model.pkl").write_text("w1")
    with forebear.init(project="fraud", name="train", store=store) as run:
        second = run.link_model(model, "fraud-detector", name="fraud-rf", aliases=["staging"])
    store.protect_alias("registry/fraud-detector", "production")
    first.add_alias("production", reason="passed shadow test", force=True)
    second.add_alias("production", reason=f"better recall {HOSTILE}", force=True)
    with TestClient(web.create_app(store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_the_registry_page_shows_aliases_now_and_before(client: TestClient) -> None:
    page = client.get("/registry").text
    assert 'href="/registry"' in page  # in the navigation
    assert 'id="collection-fraud-detector"' in page
    assert '<span class="alias protected">production</span>' in page
    assert 'href="/artifacts/fraud/fraud-rf/v1"' in page  # the source production links
    assert 'href="/artifacts/fraud/fraud-rf/v1/lineage"' in page
    assert "passed shadow test" in page and HOSTILE not in page
    data = client.get("/api/registry").json()
    (collection,) = data["collections"]
    aliases = {a["alias"]: a for a in collection["aliases"]}
    assert aliases["production"]["version"] == "v1" and aliases["production"]["before"] == "v0"
    assert aliases["production"]["source"] == "fraud/fraud-rf:v1"
    assert collection["protected"] == ["production"]
    assert [m["reason"] for m in collection["moves"]][:2] == [
        f"better recall {HOSTILE}",
        "passed shadow test",
    ]


def test_a_registry_version_links_its_source_and_its_lineage(client: TestClient) -> None:
    page = client.get("/artifacts/registry/fraud-detector/v1").text
    assert 'id="source"' in page and 'href="/artifacts/fraud/fraud-rf/v1"' in page
    assert client.get("/api/artifacts/registry/fraud-detector/v1").json()["source"] == (
        "fraud/fraud-rf:v1"
    )
    lineage = client.get("/api/artifacts/registry/fraud-detector/v1/lineage").json()
    nodes = {node["id"] for node in lineage["nodes"]}
    assert {"fraud/fraud-rf:v1", "registry/fraud-detector:v1"} <= nodes
    history = client.get("/artifacts/registry/fraud-detector").text
    assert 'id="protected"' in history and "passed shadow test" in history
    assert HOSTILE not in history


def test_an_empty_registry_says_so(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    with TestClient(web.create_app(local_store), base_url="http://127.0.0.1") as test_client:
        assert "No collections yet" in test_client.get("/registry").text
