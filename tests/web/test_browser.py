"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real
`forebear ui` process: browse, follow lineage, click a node, download, stay safe."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright import sync_api as playwright_api

import forebear

from ..conftest import clean_env

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
HOSTILE = '<script>window.__owned = 1; alert("owned")</script>'


def chromium() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(found).exists(), "install Debian's chromium: apt-get install chromium"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ui(tmp_path: Path, make_tree: Callable[..., Path]) -> Iterator[str]:
    store_dir = tmp_path / "store"
    with forebear.open(store_dir) as store:
        with forebear.init(project="web", name="prepare", store=store) as run:
            run.log_artifact(
                make_tree("raw", {"table.csv": "x,y\n1,2\n"}), name="raw", description=HOSTILE
            )
        with forebear.init(project="web", name="train", store=store) as run:
            run.use_artifact("raw")
            run.log_artifact(make_tree("m", {"model.bin": b"weights"}), name="model", type="model")
        with forebear.init(project="web", name="samples", id="samples1", store=store) as run:
            picture = np.zeros((5, 7, 3), dtype=np.uint8)
            picture[:, :, 0] = 255  # red
            run.log({"sample": forebear.Image(picture, caption=HOSTILE)})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "forebear", "--objects", str(store_dir), "ui", "--port", str(port)],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"forebear ui did not start: {server.communicate()}") from None
            time.sleep(0.1)
    yield url
    server.terminate()
    server.communicate(timeout=30)


@pytest.fixture
def page(ui: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        tab = browser.new_page(accept_downloads=True)
        dialogs: list[str] = []
        tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        tab.dialogs = dialogs  # type: ignore[attr-defined]
        yield tab
        browser.close()


def test_browse_to_lineage_click_a_node_and_download(page: object, ui: str, tmp_path: Path) -> None:
    tab = page
    tab.goto(ui + "/")  # type: ignore[attr-defined]
    tab.click("a.artifact:text-is('model')")  # type: ignore[attr-defined]
    tab.click("#versions a:text-is('v0')")  # type: ignore[attr-defined]
    assert tab.url.endswith("/artifacts/web/model/v0")  # type: ignore[attr-defined]
    tab.click("a[title=lineage]")  # type: ignore[attr-defined]
    tab.wait_for_selector("#graph svg")  # type: ignore[attr-defined]
    # click the dataset node in the drawn graph: it leads to that version's page
    tab.click("#graph svg a[*|href='/artifacts/web/raw/v0']")  # type: ignore[attr-defined]
    tab.wait_for_url("**/artifacts/web/raw/v0")  # type: ignore[attr-defined]
    with tab.expect_download() as caught:  # type: ignore[attr-defined]
        tab.click("a.file:text-is('table.csv')")  # type: ignore[attr-defined]
    saved = tmp_path / "table.csv"
    caught.value.save_as(saved)
    assert saved.read_text() == "x,y\n1,2\n"


def test_hostile_description_is_shown_as_text(page: object, ui: str) -> None:
    tab = page
    tab.goto(ui + "/artifacts/web/raw/v0")  # type: ignore[attr-defined]
    assert tab.inner_text("#description") == HOSTILE  # type: ignore[attr-defined]
    assert tab.evaluate("window.__owned === undefined")  # type: ignore[attr-defined]
    assert tab.dialogs == []  # type: ignore[attr-defined]
    assert tab.locator("script").count() == 0  # type: ignore[attr-defined]


def test_a_run_page_shows_the_pictures_it_logged(page: object, ui: str) -> None:
    tab = page
    tab.goto(ui + "/runs/samples1")  # type: ignore[attr-defined]
    tab.wait_for_selector("#media img")  # type: ignore[attr-defined]
    # drawn, under the page's content security policy: the browser decoded the PNG
    tab.wait_for_function("document.querySelector('#media img').complete")  # type: ignore[attr-defined]
    assert tab.evaluate("document.querySelector('#media img').naturalWidth") == 7  # type: ignore[attr-defined]
    assert tab.inner_text("#media .axes") == HOSTILE  # type: ignore[attr-defined]
    assert tab.evaluate("window.__owned === undefined") and tab.dialogs == []  # type: ignore[attr-defined]
