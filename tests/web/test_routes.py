"""The web UI's routes, in process (Starlette's TestClient): pages, JSON, downloads,
escaping, read-only, nothing outside the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import forebear
from forebear.web import app as web

from ..conftest import corrupt

HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def client(local_store: forebear.Store, make_tree: Callable[..., Path]) -> Iterator[TestClient]:
    store = local_store
    with forebear.init(project="demo", name="prepare", store=store) as run:
        raw = make_tree("raw", {"data.csv": "a,b\n1,2\n", "docs/readme.txt": "hello"})
        run.log_artifact(raw, name="raw", description=HOSTILE, metadata={"note": HOSTILE})
        (raw / "data.csv").write_text("a,b\n1,3\n")
        (raw / "extra.txt").write_text("new")
        run.log_artifact(raw, name="raw", aliases=["gold"])
    with forebear.init(project="demo", name="train", config={"lr": 0.1}, store=store) as run:
        run.use_artifact("raw:gold")
        run.log_artifact(make_tree("m", {"model.bin": b"\x00\x01"}), name="model", type="model")
        run.log({"accuracy": 0.9})
    with TestClient(web.create_app(store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_home_links_every_artifact_and_filters(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert 'href="/artifacts/demo/raw"' in home.text
    assert 'href="/artifacts/demo/model"' in home.text
    only_models = client.get("/", params={"type": "model"}).text
    assert "/artifacts/demo/model" in only_models and "/artifacts/demo/raw" not in only_models
    searched = client.get("/", params={"q": "RA"}).text
    assert "/artifacts/demo/raw" in searched and "/artifacts/demo/model" not in searched
    by_alias = client.get("/", params={"alias": "gold"}).text
    assert "/artifacts/demo/raw" in by_alias and "/artifacts/demo/model" not in by_alias
    api = client.get("/api/artifacts").json()
    assert [a["name"] for a in api["artifacts"]] == ["model", "raw"]
    assert api["artifacts"][0]["url"] == "/artifacts/demo/model/v0"


def test_listings_paginate(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "ARTIFACTS_PAGE_SIZE", 1)
    first = client.get("/api/artifacts").json()
    second = client.get("/api/artifacts", params={"page": 2}).json()
    assert (first["pages"], first["total"]) == (2, 2)
    assert first["artifacts"][0]["name"] != second["artifacts"][0]["name"]
    assert 'rel="next"' in client.get("/").text


def test_artifact_page_shows_versions_and_alias_history(client: TestClient) -> None:
    page = client.get("/artifacts/demo/raw")
    assert page.status_code == 200
    assert (
        'href="/artifacts/demo/raw/v0"' in page.text
        and 'href="/artifacts/demo/raw/v1"' in page.text
    )
    api = client.get("/api/artifacts/demo/raw").json()
    assert [v["version"] for v in api["versions"]] == ["v1", "v0"]
    assert {(h["alias"], h["version"]) for h in api["history"]} >= {
        ("gold", "v1"),
        ("latest", "v1"),
    }


def test_version_page_escapes_user_text_and_links_lineage(client: TestClient) -> None:
    page = client.get("/artifacts/demo/raw/v0")
    assert page.status_code == 200
    assert "<script" not in page.text and "<img" not in page.text  # shown, never run
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page.text
    assert 'title="lineage"' in page.text and 'href="/artifacts/demo/raw/v0/lineage"' in page.text
    assert 'href="/artifacts/demo/raw/v0/files/docs/readme.txt"' in page.text
    data = client.get("/api/artifacts/demo/raw/v0").json()
    assert data["version"]["description"] == HOSTILE  # JSON carries the text as it is
    assert [e["path"] for e in data["entries"]] == ["data.csv", "docs/readme.txt"]
    assert [r["name"] for r in data["producers"]] == ["prepare"]


def test_diff_against_another_version(client: TestClient) -> None:
    diff = client.get("/api/artifacts/demo/raw/v1", params={"diff": "v0"}).json()["diff"]
    assert diff == {
        "against": "v0",
        "added": ["extra.txt"],
        "removed": [],
        "modified": ["data.csv"],
    }
    assert "+ extra.txt" in client.get("/artifacts/demo/raw/v1", params={"diff": "v0"}).text
    assert client.get("/artifacts/demo/raw/v1", params={"diff": "v9"}).status_code == 404


def test_single_file_download_is_verified(client: TestClient, local_store: forebear.Store) -> None:
    got = client.get("/artifacts/demo/raw/v0/files/docs/readme.txt")
    assert got.status_code == 200 and got.content == b"hello"
    assert "attachment" in got.headers["content-disposition"]
    version = local_store.artifact("demo/raw:v0")
    corrupt(local_store, version.entry("docs/readme.txt").digest or "", b"HELLO")
    broken = client.get("/artifacts/demo/raw/v0/files/docs/readme.txt")
    assert broken.status_code == 500 and b"HELLO" not in broken.content
    assert "corrupted" in broken.text


@pytest.mark.parametrize(
    "path",
    [
        "/artifacts/demo/raw/v0/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/artifacts/demo/raw/v0/files/%2Fetc%2Fpasswd",
        "/artifacts/demo/raw/v0/files/nope.txt",
        "/artifacts/demo/nothing",
        "/artifacts/demo/raw/v7",
        "/artifacts/demo/raw/v0/lineage-nope",
        "/runs/zzzzzzzz",
        "/api/runs/zzzzzzzz",
    ],
)
def test_nothing_outside_the_store_and_clear_404s(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "root:" not in response.text


def test_lineage_view_is_an_inline_svg_with_clickable_nodes(client: TestClient) -> None:
    page = client.get("/artifacts/demo/model/v0/lineage")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert 'xlink:href="/artifacts/demo/raw/v1"' in page.text
    assert 'xlink:href="/runs/' in page.text
    both = client.get("/api/artifacts/demo/raw/v1/lineage", params={"up": 0, "down": 1}).json()
    assert {n["id"] for n in both["nodes"]} >= {"demo/raw:v1", "demo/model:v0"}
    assert "demo/raw:v0" not in {n["id"] for n in both["nodes"]}


def test_runs_pages(client: TestClient) -> None:
    runs = client.get("/api/runs").json()["runs"]
    assert [r["name"] for r in runs] == ["train", "prepare"]
    train = client.get(runs[0]["url"])
    assert (
        train.status_code == 200 and "accuracy" in train.text and "&#34;lr&#34;: 0.1" in train.text
    )
    data = client.get(f"/api/runs/{runs[0]['id']}").json()
    assert [v["ref"] for v in data["inputs"]] == ["raw:v1"]
    assert [v["ref"] for v in data["outputs"]] == ["model:v0"]


def test_runs_are_paged_newest_first(
    local_store: forebear.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs page reads only the runs it shows (three here), counted by the catalog;
    a page past the last shows the last."""
    monkeypatch.setattr(web, "PAGE_SIZE", 3)
    names = []
    for number in range(7):
        with forebear.init(project="ab"[number % 2], name=f"r{number}", store=local_store):
            names.append(f"r{number}")
    with TestClient(web.create_app(local_store), base_url="http://127.0.0.1") as client:
        pages = [client.get("/api/runs", params={"page": n}).json() for n in (1, 2, 3, 99)]
        assert [[r["name"] for r in page["runs"]] for page in pages] == [
            ["r6", "r5", "r4"], ["r3", "r2", "r1"], ["r0"], ["r0"],
        ]  # fmt: skip
        assert {(page["pages"], page["total"]) for page in pages} == {(3, 7)}
        only_a = client.get("/api/runs", params={"project": "a", "page": 2}).json()
        assert ([r["name"] for r in only_a["runs"]], only_a["total"]) == (["r0"], 4)
        page = client.get("/runs").text  # a run's name in its own cell (ids may hold "r3")
        assert "<td>r4</td>" in page and "<td>r3</td>" not in page


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_read_only(client: TestClient, method: str) -> None:
    for path in ("/", "/api/artifacts", "/artifacts/demo/raw/v0", "/runs"):
        assert client.request(method, path).status_code == 405


def test_version_page_shows_what_deduplication_saved(
    local_store: forebear.Store, tmp_path: Path
) -> None:
    import random
    import re

    from forebear.chunking import Chunking

    local_store.chunking = Chunking.around(avg_size=16 << 10, threshold=256 << 10)
    folder = tmp_path / "table"
    folder.mkdir()
    data = random.Random(3).randbytes(2 << 20)
    (folder / "rows.bin").write_bytes(data)
    with forebear.init(project="demo", store=local_store) as run:
        run.log_artifact(folder, name="table")
        (folder / "rows.bin").write_bytes(data + b"appended row\n" * 100)
        run.log_artifact(folder, name="table")
    with TestClient(web.create_app(local_store), base_url="http://127.0.0.1") as client:
        page = client.get("/artifacts/demo/table/v1").text
        new = re.search(r'id="new-bytes">([^<]+)<', page)
        shared = re.search(r'id="shared-bytes">([^<]+)<', page)
        assert new is not None and shared is not None
        assert new.group(1).endswith("KiB") and shared.group(1) == "2.0 MiB"
        assert "in chunks of 16.0 KiB on average" in page
        version = client.get("/api/artifacts/demo/table/v1").json()["version"]
        assert 0 < version["new_bytes"] < 100_000 < version["shared_bytes"]
        got = client.get("/artifacts/demo/table/v1/files/rows.bin")  # a chunked file, whole
        assert got.status_code == 200 and got.content == data + b"appended row\n" * 100


def test_a_run_page_shows_a_logged_histogram_in_a_few_lines(local_store: forebear.Store) -> None:
    """The summary reads as JSON, but a list of numbers (a histogram's counts) takes one
    line, not one line per number."""
    with forebear.init(project="demo", name="weights", store=local_store) as run:
        run.log({"weights": forebear.Histogram(list(range(100)), num_bins=50), "loss": 0.5})
    with TestClient(web.create_app(local_store), base_url="http://127.0.0.1") as client:
        page = client.get(f"/runs/{run.id}").text
    summary = page.split('<pre id="summary">')[1].split("</pre>")[0]
    assert "&#34;values&#34;: [2, 2, 2," in summary and len(summary.splitlines()) < 15
    nested = {"b": [1, "x", None], "a": {"rows": [{"k": [1.5]}], "empty": {}}, "n": []}
    assert json.loads(web.pretty_json(nested)) == nested


def test_a_run_page_shows_the_pictures_sound_and_video_it_logged(
    local_store: forebear.Store,
) -> None:
    np = pytest.importorskip("numpy")
    image = forebear.Image(np.full((4, 6), 200, dtype=np.uint8), caption="a <b>grey</b> one")
    sound = forebear.Audio(np.zeros(16), sample_rate=8)
    with forebear.init(project="demo", name="media", store=local_store) as run:
        run.log(
            {"grey": image, "val": {"tone": sound}, "clip": forebear.Video(np.zeros((2, 1, 4, 4)))}
        )
        run.log({"page": forebear.Html("<script>alert(1)</script>")})
    with TestClient(web.create_app(local_store), base_url="http://127.0.0.1") as client:
        page = client.get(f"/runs/{run.id}")
        media = page.text.split('<div id="media"')[1].split("</div>\n{% endif")[0]
        grey = run.summary["grey"]
        src = f"/artifacts/demo/{grey['artifact'].split('/')[1].replace(':', '/')}/view/0_0.png"
        assert f'<img src="{src}" alt="a &lt;b&gt;grey&lt;/b&gt; one">' in media
        assert '<audio controls preload="none" src="' in media and 'id="media-val.tone"' in media
        assert media.count("<img") == 2  # the picture, and the video's GIF
        assert "media-page" not in media  # a page is never shown inline
        shown = client.get(src)
        assert shown.status_code == 200 and shown.content == image.data
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["content-disposition"] == "inline"
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert "media-src 'self'" in shown.headers["content-security-policy"]
        kept = run.summary["page"]
        kept_page = f"/artifacts/demo/{kept['artifact'].split('/')[1].replace(':', '/')}"
        assert client.get(f"{kept_page}/view/{kept['path']}").status_code == 404
        download = client.get(f"{kept_page}/files/{kept['path']}")
        assert download.content == b"<script>alert(1)</script>"
        assert download.headers["content-type"] == "application/octet-stream"


def test_a_summary_cannot_make_the_run_page_link_outside_the_store(
    local_store: forebear.Store,
) -> None:
    """The summary is the script's to write: what it names is quoted into one link of
    this site, whose route checks it as any other."""
    with forebear.init(project="demo", name="hostile", store=local_store) as run:
        run.summary["evil"] = {
            "_type": "image-file", "artifact": f'demo/x:v0"><script>{HOSTILE}', "path": "a.png"
        }  # fmt: skip
        run.summary["climb"] = {
            "_type": "images/separated", "artifact": "demo/raw:v0",
            "paths": ["../../../etc/passwd.png", "http://evil.example/x.png", 7],
            "captions": [HOSTILE],
        }  # fmt: skip
    with TestClient(web.create_app(local_store), base_url="http://127.0.0.1") as client:
        page = client.get(f"/runs/{run.id}").text
        media = page.split('<div id="media"')[1]
        sources = [part.split('"')[0] for part in media.split('src="')[1:]]
        assert "<script>" not in media and "passwd" not in media and len(sources) == 1
        assert all(s.startswith("/artifacts/demo/") and "//" not in s for s in sources)
        for source in sources:
            assert client.get(source.replace("&amp;", "&")).status_code == 404
