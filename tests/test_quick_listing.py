"""Listing a local store (``forebear ls``) opens it without SQLAlchemy or fsspec: a lazy
backend answers from a read-only sqlite3 connection, gives the same answers as the full
backend, and hands anything it cannot answer plainly to the full backend, whose errors
and guarantees are unchanged."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import forebear
from forebear import settings as config
from forebear.chunking import Chunking
from forebear.db.lite import LiteCatalog, plain_sqlite_file
from forebear.local import LocalBackend
from forebear.local.lazy import LazyLocalBackend, reached_directly

from .conftest import clean_env, cli_error, cli_ok

HEAVY = ("sqlalchemy", "alembic", "fsspec", "forebear.local.backend")


def log(
    store: forebear.Store, data: Path, name: str, **options: object
) -> forebear.ArtifactVersion:
    project = str(options.pop("project", "p"))
    with forebear.init(project=project, store=store) as run:
        return run.log_artifact(data, name=name, **options)  # type: ignore[arg-type]


@pytest.fixture
def varied_store(tmp_path: Path, make_tree: Callable[..., Path]) -> Path:
    """A store with what a listing shows: projects, types, aliases, metadata, a deleted
    artifact, a deleted version, a description, a registry link."""
    folder = tmp_path / "store"
    with forebear.open(folder) as store:
        first = log(store, make_tree("a", {"x.txt": "1"}), "ds", aliases=["best", "alpha"])
        log(store, make_tree("b", {"x.txt": "2"}), "ds", metadata={"rows": 2, "é": [1.5, None]})
        log(store, make_tree("c", {"m.bin": "m"}), "model", type="model", project="q")  # fmt: skip
        gone = log(store, make_tree("d", {"g.txt": "g"}), "gone")
        gone.delete()
        first.description = "the first one"
        first.save()
        first.link("registry/prod-model", aliases=["production"])
    return folder


def test_a_listing_loads_neither_sqlalchemy_nor_fsspec(varied_store: Path) -> None:
    code = (
        "import sys, forebear\n"
        f"store = forebear.open({str(varied_store)!r})\n"
        "listed = [(v.project, v.name, v.version, v.aliases) for v in store.artifacts()]\n"
        f"print(listed, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().endswith("[]"), done.stdout
    assert "('p', 'ds', 'v1', ['latest'])" in done.stdout


def test_the_cli_lists_the_same_through_either_backend(varied_store: Path) -> None:
    quick = json.loads(cli_ok(varied_store, "ls", "--json"))
    with forebear.open(varied_store) as store:
        full = reached_directly(store.backend)  # the full backend, opened the usual way
        assert full is not None
        assert [v.to_dict() for v in store.artifacts()] == quick
        assert {v["name"] for v in quick} == {"ds", "model", "prod-model"}
        assert store.backend.latest_versions(None, None) == full.latest_versions(None, None)


def test_the_sqlite3_answers_equal_the_full_backends(varied_store: Path) -> None:
    catalog_file = plain_sqlite_file(config.sqlite_url(varied_store / "meta.db"))
    assert catalog_file is not None
    catalog = LiteCatalog.open(catalog_file)
    assert catalog is not None
    settings = config.settings_for_path(varied_store)
    full = LocalBackend(settings, create=False)
    try:
        projects: list[str | None] = [None, "p", "q", "registry", "nope"]
        types: list[str | None] = [None, "dataset", "model", "nope"]
        for project in projects:
            for type_ in types:
                quick = catalog.latest_versions(project, type_)
                assert quick is not None
                by_id = sorted(full.latest_versions(project, type_), key=lambda v: v.id)
                assert sorted(quick, key=lambda v: v.id) == by_id
        for version in full.all_versions():
            assert catalog.aliases(version.id) == full.aliases(version.id)
        assert catalog.store_id == full.store_id
    finally:
        full.close()


def test_anything_but_a_listing_opens_the_full_backend(
    varied_store: Path, make_tree: Callable[..., Path]
) -> None:
    with forebear.open(varied_store) as store:
        assert isinstance(store.backend, LazyLocalBackend)
        assert store.backend.opened is None
        assert store.artifacts(tags=()) and store.backend.opened is None
        assert store.status()["store_id"] == store.store_id  # needs the objects: opens it
        assert isinstance(store.backend.opened, LocalBackend)
        log(store, make_tree("e", {"x.txt": "3"}), "ds")
        listed = {v.name: v.version for v in store.artifacts()}
        assert listed["ds"] == "v2"  # the write is seen: every call now goes to the full one


def test_threads_open_the_full_backend_once(varied_store: Path) -> None:
    opened: list[object] = []
    with forebear.open(varied_store) as store:
        lazy = store.backend
        assert isinstance(lazy, LazyLocalBackend)
        real = lazy.open_full

        def counting() -> forebear.backend.Backend:
            opened.append(1)
            return real()

        lazy.open_full = counting
        threads = [threading.Thread(target=lambda: store.artifact("ds")) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert opened == [1]


def test_two_halves_of_different_stores_are_still_refused_by_ls(
    tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    for name in ("one", "two"):
        with forebear.open(tmp_path / name) as store:
            log(store, make_tree(f"data-{name}", {"x.txt": name}), "ds")
    other_catalog = config.sqlite_url(tmp_path / "two" / "meta.db")
    done = cli_error(tmp_path / "one", "--db", other_catalog, "ls")
    assert "they are not one store" in done


def test_a_catalog_at_another_schema_gets_the_full_backends_answer(varied_store: Path) -> None:
    with sqlite3.connect(varied_store / "meta.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    assert "has schema 9999, newer than this forebear knows" in cli_error(varied_store, "ls")


def test_a_tampered_name_is_refused_as_before(varied_store: Path) -> None:
    with sqlite3.connect(varied_store / "meta.db") as db:
        db.execute("UPDATE projects SET name = '../escape' WHERE name = 'q'")
    message = cli_error(varied_store, "ls")
    assert "malformed project or artifact name" in message


def test_only_plain_sqlite_urls_are_read_without_sqlalchemy(tmp_path: Path) -> None:
    assert plain_sqlite_file(f"sqlite:///{tmp_path}/meta.db") == f"{tmp_path}/meta.db"
    assert plain_sqlite_file("sqlite:///rel/meta.db") == os.path.abspath("rel/meta.db")
    for url in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///a%20b.db",
        "sqlite:///file:x?mode=ro&uri=true",
        "postgresql+psycopg://u@h/db",
    ):
        assert plain_sqlite_file(url) is None, url


def test_chunking_chosen_before_the_first_log_is_the_one_it_uses(
    varied_store: Path, make_tree: Callable[..., Path]
) -> None:
    chosen = Chunking.around(avg_size=64 << 10, threshold=256 << 10)
    with forebear.open(varied_store) as store:
        assert isinstance(store.backend, LazyLocalBackend)
        store.chunking = chosen
        big = make_tree("big", {"big.bin": os.urandom(1 << 20)})
        version = log(store, big, "big")
        assert store.chunking == chosen
    assert Chunking.from_dict(version.chunking) == chosen
