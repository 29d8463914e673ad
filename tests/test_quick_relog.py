"""A run that logs files unchanged since they made a version (a pipeline step run again)
needs neither SQLAlchemy nor the full store: a store without packs records the run, checks
the files and records the log through sqlite3, writing exactly the rows the full backend
writes. Anything else (changed files, aliases, an older version, another type, a missing
object, a run that used something) is logged the full way, with its usual guarantees and
errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import forebear
from forebear.chunking import Chunking
from forebear.db.lite_log import LiteLog
from forebear.errors import ForebearError
from forebear.local import LocalBackend
from forebear.local.commit import CatalogQuestions
from forebear.local.lazy import LazyLocalBackend, reached_directly

from .conftest import clean_env, cli_ok, format_2, python_in_own_mounts

BIG = 3 << 20  # chunked with a 1 MiB chunking threshold
pytestmark = pytest.mark.usefixtures("not_racy")  # every test writes its files just before
CHUNKING = Chunking(threshold=1 << 20, avg_size=256 << 10, min_size=64 << 10, max_size=1 << 20)


@pytest.fixture
def data(make_tree: Callable[..., Path]) -> Path:
    files: dict[str, str | bytes] = {f"d{i % 3}/f{i}.bin": os.urandom(100 + i) for i in range(30)}
    files["big.bin"] = os.urandom(BIG)
    return make_tree("data", files)


@pytest.fixture
def folder(tmp_path: Path, data: Path) -> Path:
    """A store (no packs, chunks above 1 MiB) where ``data`` made p/ds:v0."""
    path = format_2(tmp_path / "store")  # packed: test_a_packed_store_re_logs_quickly...
    with forebear.open(path, chunking=CHUNKING) as store:
        log(store, data)
    return path


@pytest.fixture
def lazy(folder: Path) -> Iterator[forebear.Store]:
    with forebear.open(folder) as store:
        assert isinstance(store.backend, LazyLocalBackend) and store.backend.opened is None
        yield store


def log(
    store: forebear.Store, path: Path, name: str = "ds", **options: Any
) -> forebear.ArtifactVersion:
    with forebear.init(project="p", name="step", store=store) as run:
        return run.log_artifact(path, name=name, **options)


def opened_in_full(store: forebear.Store) -> bool:
    backend = store.backend
    assert isinstance(backend, LazyLocalBackend)
    return backend.opened is not None


def rows(folder: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(folder / "meta.db") as db:
        return db.execute(sql).fetchall()


def test_a_re_log_of_unchanged_files_loads_no_sqlalchemy_fsspec_nor_sockets(
    folder: Path, data: Path
) -> None:
    code = (
        "import sys, forebear, forebear.statcache\n"
        "forebear.statcache.RACY_SECONDS = 0.0\n"
        f"store = forebear.open({str(folder)!r})\n"
        "with forebear.init(project='p', name='again', store=store) as run:\n"
        f"    version = run.log_artifact({str(data)!r}, name='ds')\n"
        "heavy = sorted(\n"
        "    m for m in sys.modules if m.startswith(('sqlalchemy', 'alembic', 'fsspec'))\n"
        # 45 ms of imports it needs not (subprocess: outside git, nothing to ask git)
        "    or m in ('socket', 'secrets', 'ctypes', 'concurrent.futures', 'logging',\n"
        "             'subprocess', 'tempfile', 'shutil')\n"
        ")\n"
        "print(version.ref, heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=folder.parent,  # no git repository there
    )
    assert done.stdout.split() == ["ds:v0", "[]"], done.stdout + done.stderr
    with forebear.open(folder) as store:
        run = next(r for r in store.runs(project="p") if r.name == "again")
        assert run.status == "finished" and run.ended_at is not None
        assert [v.ref for v in run.logged_artifacts()] == ["ds:v0"]
        assert [r.name for r in store.artifact("ds").producers] == ["step", "again"]
        assert store.verify() == []


def test_the_cli_re_logs_unchanged_files_the_quick_way_and_says_so(
    folder: Path, data: Path
) -> None:
    env_code = "import forebear.statcache; forebear.statcache.RACY_SECONDS = 0.0\n"
    script = folder.parent / "relog.py"
    script.write_text(
        env_code
        + "import sys\nfrom forebear.cli.app import main\n"
        + "try:\n    main()\nfinally:\n"
        + "    heavy = [m for m in sys.modules if m.startswith('sqlalchemy')]\n"
        + "    print(heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), "--objects", str(folder), "log", str(data), "-n", "ds",
         "-p", "p", "--json"],
        env=clean_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["unchanged"] is True
    assert done.stderr.strip() == "[]"
    assert "already holds this content" in cli_ok(folder, "log", str(data), "-n", "ds", "-p", "p")


def test_the_quick_rows_are_the_rows_the_full_backend_writes(
    lazy: forebear.Store, folder: Path, data: Path
) -> None:
    quick = log(lazy, data)
    assert not opened_in_full(lazy)
    with forebear.open(folder) as store:
        full = reached_directly(store.backend)  # opened the usual way
        assert isinstance(full, LocalBackend)
        slow = log(store, data)
    assert quick == slow and quick.ref == "ds:v0"
    runs = rows(
        folder,
        "SELECT project_id, name, status, config, summary, json_remove(context, '$.pid',"
        " '$.argv', '$.started'), typeof(started_at), typeof(ended_at), typeof(heartbeat_at),"
        " deleted_at FROM runs ORDER BY pk",
    )
    assert len(runs) == 3 and runs[1] == runs[2]
    assert runs[1][2] == "finished" and runs[1][6:9] == ("integer",) * 3
    edges = rows(folder, "SELECT direction, version_id FROM edges ORDER BY run_pk")
    assert edges == [("out", quick.id)] * 3
    events = rows(
        folder,
        "SELECT actor, action, target, artifact_id, version_id, details, typeof(at),"
        " run_id IS NOT NULL FROM audit_events WHERE action = 'log' ORDER BY id",
    )
    assert len(events) == 3 and events[1] == events[2]
    assert events[1][2] == "p/ds:v0" and json.loads(events[1][5]) == {"created": False, "files": 31}
    # the times are the catalog's own: read back through SQLAlchemy as aware datetimes
    with forebear.open(folder) as store:
        reached_directly(store.backend)
        finished = [r for r in store.runs(project="p")]
        assert all(r.ended_at and r.ended_at >= r.started_at for r in finished)


def test_the_sqlite3_questions_answer_as_the_full_backend(
    lazy: forebear.Store, folder: Path, data: Path
) -> None:
    version = lazy.artifact("ds")
    catalog = LiteLog.open(str(folder / "meta.db"))
    assert catalog is not None
    full = reached_directly(lazy.backend)
    assert isinstance(full, LocalBackend)
    slow = CatalogQuestions(full)
    assert catalog.live_version("p", "ds", version.digest) == slow.live_version(
        "p", "ds", version.digest
    )
    assert catalog.live_version("p", "ds", "0" * 32) is None
    assert catalog.live_version("p", "other", version.digest) is None
    assert catalog.redacted(version.id) is slow.redacted(version.id) is False
    pages = [catalog.unpacked_files(version.id, None, 7), slow.unpacked_files(version.id, None, 7)]
    assert pages[0] == pages[1] and len(pages[0]) == 7
    after = pages[0][-1][0]
    assert catalog.unpacked_files(version.id, after, 100) == slow.unpacked_files(
        version.id, after, 100
    )
    digests = [digest for _, digest, _ in catalog.unpacked_files(version.id, None, 100)]
    lists = catalog.chunk_lists(digests)
    assert lists == slow.chunk_lists(digests) and len(lists) == 1
    (chunks,) = lists.values()
    assert chunks.size == BIG and len(chunks.digests) > 1
    lazy.purge(version.entry("d0/f0.bin").digest or "", reason="personal data")
    assert catalog.redacted(version.id) is slow.redacted(version.id) is True
    assert catalog.tags(version.id) == full.tags(version.id) == []
    version.tags = ["zeta", "alpha", "mid"]
    version.save()
    assert catalog.tags(version.id) == full.tags(version.id) == ["alpha", "mid", "zeta"]


def test_changed_files_open_the_store_and_log_in_full(
    lazy: forebear.Store, data: Path, full_logs: list[str]
) -> None:
    (data / "d1" / "f1.bin").write_bytes(b"changed")
    second = log(lazy, data)
    assert second.ref == "ds:v1" and full_logs == ["ds"] and opened_in_full(lazy)


@pytest.mark.parametrize(
    "options", [{"aliases": ["best"]}, {"tags": ["golden"]}], ids=["alias", "tag"]
)
def test_aliases_and_tags_are_logged_in_full(
    lazy: forebear.Store, data: Path, options: dict[str, Any]
) -> None:
    version = log(lazy, data, **options)
    assert opened_in_full(lazy) and version.ref == "ds:v0"
    assert version.aliases == ["latest", *options.get("aliases", [])]
    assert version.tags == options.get("tags", [])


def test_logging_an_older_version_again_moves_latest_back_in_full(
    folder: Path, data: Path, make_tree: Callable[..., Path]
) -> None:
    with forebear.open(folder) as store:
        log(store, make_tree("other", {"x.txt": "v1"}))
    with forebear.open(folder) as store:
        again = log(store, data)
        assert opened_in_full(store)
        assert again.ref == "ds:v0" and again.aliases == ["latest"]
        history = store.alias_history("ds", project="p")
        assert [(h["alias"], h["version"]) for h in history][-1] == ("latest", "v0")


def test_another_type_gets_the_full_backends_error(lazy: forebear.Store, data: Path) -> None:
    run = forebear.init(project="p", store=lazy)
    with pytest.raises(ForebearError, match="has type 'dataset', not 'model'"):
        run.log_artifact(data, name="ds", type="model")
    run.finish()
    assert opened_in_full(lazy)


def test_a_missing_object_is_stored_again_by_the_full_log(
    lazy: forebear.Store, data: Path, full_logs: list[str]
) -> None:
    version = lazy.artifact("ds")
    chunks = reached_directly(lazy.backend).chunk_lists(  # type: ignore[union-attr]
        [version.entry("big.bin").digest or ""]
    )
    (chunk_list,) = chunks.values()
    lazy.objects.delete(chunk_list.digests[1])
    assert log(lazy, data) == version and full_logs == ["ds"]
    assert lazy.verify() == []


def test_a_run_that_used_a_version_logs_in_full(
    lazy: forebear.Store, data: Path, make_tree: Callable[..., Path]
) -> None:
    with forebear.init(project="p", store=lazy) as run:
        run.use_artifact("ds:v0")
        again = run.log_artifact(data, name="ds")
    # the run read its own output back: no edge that would make lineage loop
    assert opened_in_full(lazy) and again.ref == "ds:v0"
    assert [v.ref for v in run.used_artifacts()] == ["ds:v0"]
    assert [v.ref for v in run.logged_artifacts()] == []


def test_a_version_deleted_before_the_commit_is_not_logged_quickly(
    lazy: forebear.Store, folder: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check and the record, another process deletes the version: the record
    sees it in its transaction and the full log stores the files as a new version."""
    real = LiteLog.log_again

    def deleted_meanwhile(self: LiteLog, *args: Any) -> object:
        with forebear.open(folder) as other:
            other.artifact("ds:v0").delete()
        return real(self, *args)

    monkeypatch.setattr(LiteLog, "log_again", deleted_meanwhile)
    again = log(lazy, data)
    assert again.ref == "ds:v1" and opened_in_full(lazy)
    assert lazy.verify() == []


def test_another_stores_catalog_in_its_place_is_refused(
    folder: Path, data: Path, tmp_path: Path, make_tree: Callable[..., Path]
) -> None:
    with forebear.open(tmp_path / "other") as other:
        log(other, data)
    with forebear.open(folder) as store:
        assert isinstance(store.backend, LazyLocalBackend)
        os.replace(tmp_path / "other" / "meta.db", folder / "meta.db")
        with pytest.raises(ForebearError, match="catalog"):
            log(store, data)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a read-only bind: root only")
def test_a_catalog_on_read_only_media_gets_the_full_backends_error(
    folder: Path, data: Path
) -> None:
    script = (
        "import forebear, forebear.statcache\n"
        "forebear.statcache.RACY_SECONDS = 0.0\n"
        f"store = forebear.open({str(folder)!r})\n"
        "try:\n"
        "    forebear.init(project='p', store=store)\n"
        "except forebear.StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = python_in_own_mounts(
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}", script
    )
    assert done.returncode == 0, done.stderr
    assert "read-only here (read-only filesystem)" in done.stdout
    assert len(rows(folder, "SELECT * FROM runs")) == 1


def test_a_heartbeat_and_the_runs_end_are_written_without_the_full_store(
    lazy: forebear.Store,
) -> None:
    backend = lazy.backend
    assert isinstance(backend, LazyLocalBackend)
    run = forebear.init(project="p", name="beating", store=lazy)
    assert backend.beat_run(run.id) is True
    run.finish()
    assert backend.beat_run(run.id) is False  # no longer running
    assert not opened_in_full(lazy)
    assert lazy.run(run.id).status == "finished"


def test_a_run_in_a_new_project_makes_the_project_without_the_full_open(
    lazy: forebear.Store,
) -> None:
    with forebear.init(project="fresh", store=lazy) as run:
        pass
    assert not opened_in_full(lazy)
    assert lazy.run(run.id).project == "fresh"  # read the full way
    assert [r.id for r in lazy.runs("fresh")] == [run.id]
    with forebear.init(project="fresh", store=lazy) as again:  # the project is found
        pass
    assert [r.id for r in lazy.runs("fresh")] == [run.id, again.id]


def test_a_packed_store_re_logs_quickly_and_checks_again_after_a_forgetting(
    tmp_path: Path, data: Path, full_logs: list[str]
) -> None:
    from forebear.db.lite_log import FORGET_COUNT
    from forebear.db.packs import FORGET_COUNT as COUNTED

    assert FORGET_COUNT == COUNTED
    path = tmp_path / "packed"
    with forebear.open(path, chunking=CHUNKING) as store:
        store.upgrade()
        version = log(store, data)
    with forebear.open(path) as store:
        assert log(store, data) == version and not opened_in_full(store)
    with forebear.open(path) as store:
        store.rebuild_index()  # forgets the index and reads it back: the mark moves
    with forebear.open(path) as store:  # every object looked up, through sqlite3
        assert log(store, data) == version and not opened_in_full(store)
        assert store.verify() == []
    assert full_logs == ["ds"]


def test_re_logs_killed_at_any_moment_leave_the_store_whole(folder: Path, data: Path) -> None:
    """SIGKILL a quick re-log at moments spread over its whole run: the catalog stays
    whole, no version or edge is half-written, and the next re-log answers as before."""
    script = (
        "import sys, forebear.statcache\n"
        "forebear.statcache.RACY_SECONDS = 0.0\n"
        "from forebear.cli.app import main\n"
        "main()\n"
    )
    command = [sys.executable, "-c", script, "--objects", str(folder), "log", str(data),
               "-n", "ds", "-p", "p"]  # fmt: skip
    done = subprocess.run(command, env=clean_env(), capture_output=True, text=True, check=True)
    assert "already holds this content" in done.stdout
    for step in range(12):
        process = subprocess.Popen(command, env=clean_env(), stdout=subprocess.DEVNULL)
        try:
            process.wait(timeout=0.02 * step)
        except subprocess.TimeoutExpired:
            process.kill()
        process.wait()
    assert rows(folder, "PRAGMA integrity_check") == [("ok",)]
    assert rows(folder, "SELECT count(*) FROM versions") == [(1,)]
    runs = rows(folder, "SELECT pk FROM runs")
    edges = rows(folder, "SELECT run_pk, direction FROM edges")
    assert all(direction == "out" for _, direction in edges)
    assert {pk for pk, _ in edges} <= {pk for (pk,) in runs}
    with forebear.open(folder) as store:
        assert log(store, data).ref == "ds:v0" and not opened_in_full(store)
        assert store.verify() == []
        assert all(r.status in ("finished", "crashed") for r in store.runs(project="p"))


def test_a_store_in_a_folder_whose_name_is_not_utf8_lists_and_re_logs_quickly(
    tmp_path: Path, data: Path
) -> None:
    folder = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9-store"))
    with forebear.open(folder) as store:
        version = log(store, data)
    with forebear.open(folder) as store:
        assert [v.ref for v in store.artifacts()] == ["ds:v0"]
        assert log(store, data) == version and not opened_in_full(store)
    assert "ds" in cli_ok(folder, "ls", "-p", "p")
