"""Shared fixtures: every test runs in its own folder with no FOREBEAR_* settings leaking
in from the developer's shell, and no run left active."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest

import forebear
from forebear import active
from forebear.objects import ObjectLocation

if TYPE_CHECKING:
    from .receiving import Receiver
    from .serving import ForebearServer

REPO = Path(__file__).resolve().parent.parent
TEST_BUCKET = "forebear-tests"


WAIT = 60.0  # seconds a condition may take on a loaded machine


def wait_for(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (never for a fixed time: a loaded machine is slow);
    fail after `WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


_TIERS = {"postgres_url": "postgres", "postgres_server": "postgres", "s3_url": "s3",
          "s3_server": "s3"}  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the real servers it needs (`-m "not postgres"` leaves them
    out); every store fixture's "team" parameter needs both. The "server" parameter applies
    to the public-API modules only."""
    direct_only = [
        item
        for item in items
        if "[server" in item.nodeid and item.module.__name__.split(".")[-1] not in THROUGH_A_SERVER
    ]
    if direct_only:
        config.hook.pytest_deselected(items=direct_only)
        items[:] = [item for item in items if item not in set(direct_only)]
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, tier in _TIERS.items():
            if fixture in fixtures:
                item.add_marker(tier)
        if "[team" in item.nodeid:  # a store on PostgreSQL + S3 (`open_store`)
            item.add_marker("postgres")
            item.add_marker("s3")
        if "store" in fixtures and "[server" in item.nodeid:
            item.add_marker("server")
        if item.nodeid.startswith("tests/web/test_browser.py"):
            item.add_marker("browser")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("FOREBEAR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FOREBEAR_NO_PROGRESS", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # no real login file
    for folder in tmp_path.parents:  # a store above the tests would be found by every one
        for marker in (".forebear", "forebear.toml"):
            if (folder / marker).exists():
                pytest.fail(f"remove {folder / marker}: every test would find that store")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    for run in active.all_runs():
        run.finish()


class _Server:
    """A throwaway server started with one of the project's scripts.

    If the server process dies, the test running at that moment fails on its own; `settings`
    then restarts it, so one crash cannot turn every later test into a slow timeout, and the
    crash and the end of the server's log are reported at the end of the run."""

    crashes: ClassVar[list[str]] = []

    def __init__(self, script: str) -> None:
        self.script = script
        self.values: dict[str, str] = {}
        self.folder = ""
        self._start()

    def _start(self) -> None:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / self.script), "start"],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip
        self.values.update(re.findall(r"export (\w+)=(\S+)", out))
        self.folder = self.values[next(k for k in self.values if k.endswith("_DIR"))]

    def _alive(self) -> bool:
        pid_files = list(Path(self.folder).glob("**/*.pid")) + list(Path(self.folder).glob("pid"))
        for pid_file in pid_files:
            try:
                os.kill(int(pid_file.read_text().split()[0]), 0)
            except (OSError, ValueError):
                return False
        return bool(pid_files)

    def settings(self) -> dict[str, str]:
        if not self._alive():
            logs = sorted(Path(self.folder).glob("**/*.log"))
            # SeaweedFS logs every volume it grows at level I; the warnings and errors tell more
            lines = [ln for log in logs for ln in log.read_text(errors="replace").splitlines()]
            tail = "\n".join([ln for ln in lines if not ln.startswith("I")][-40:])
            self.crashes.append(f"{self.script} server in {self.folder} died; log ends:\n{tail}")
            self.stop()
            self._start()
        return self.values

    def stop(self) -> None:
        script = REPO / "scripts" / self.script
        subprocess.run(["bash", str(script), "stop", self.folder], check=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for crash in _Server.crashes:
        terminalreporter.write_sep("=", "a test server crashed and was restarted", red=True)
        terminalreporter.write_line(crash)


# servers given from outside, read before `isolated` clears every FOREBEAR_* setting
GIVEN = {k: v for k, v in os.environ.items() if k.startswith("FOREBEAR_TEST_")}


@pytest.fixture(scope="session")
def _postgres() -> Iterator[_Server | None]:
    if GIVEN.get("FOREBEAR_TEST_PG_URL"):
        yield None
        return
    server = _Server("postgres.sh")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_server(_postgres: _Server | None) -> str:
    """A real PostgreSQL server: FOREBEAR_TEST_PG_URL, else one started for this session."""
    if _postgres is None:
        return GIVEN["FOREBEAR_TEST_PG_URL"]
    return _postgres.settings()["FOREBEAR_TEST_PG_URL"]


S3_KEYS = ("FOREBEAR_TEST_S3_ENDPOINT", "FOREBEAR_TEST_S3_KEY", "FOREBEAR_TEST_S3_SECRET")


@pytest.fixture(scope="session")
def _s3() -> Iterator[_Server | None]:
    if all(GIVEN.get(k) for k in S3_KEYS):
        yield None
        return
    server = _Server("s3.sh")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server(_s3: _Server | None) -> dict[str, str]:
    """A real S3-compatible server that checks credentials (SeaweedFS on 127.0.0.1)."""
    if _s3 is None:
        return {k: GIVEN[k] for k in S3_KEYS}
    return _s3.settings()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def s3_url(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix in a bucket, with credentials and endpoint in the environment (as a
    team would configure them), never in URLs."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["FOREBEAR_TEST_S3_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["FOREBEAR_TEST_S3_SECRET"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server["FOREBEAR_TEST_S3_ENDPOINT"])
    monkeypatch.setenv("BOTO_CONFIG", "/dev/null")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if not fs.exists(TEST_BUCKET):
        fs.mkdir(TEST_BUCKET)
    return f"s3://{TEST_BUCKET}/{uuid.uuid4().hex[:12]}"


# Modules of public-API tests: they run through a forebear server too (the "server"
# parameter). Others test what only a direct store has (its files, its catalog) and do not.
THROUGH_A_SERVER = {
    "test_api", "test_lineage", "test_registry", "test_lifecycle", "test_habits",
    "test_drafts", "test_fs", "test_packs", "test_run_filters", "test_wandb_readers",
    "test_history_writes", "test_resume", "test_alerts", "test_media", "test_charts",
}  # fmt: skip


@pytest.fixture(params=["local", "team", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[forebear.Store]:
    """A fresh store on each real backend: SQLite + a local folder, PostgreSQL + S3, and
    (for public-API tests) a real forebear server process over SQLite + a folder, reached
    with an admin's token."""
    opened = open_store(request, tmp_path)
    yield opened
    opened.close()


@pytest.fixture(params=["local", "team"])
def direct_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[forebear.Store]:
    """A store this process reaches itself (for what only such a store does: push, pull)."""
    opened = open_store(request, tmp_path)
    yield opened
    opened.close()


def reopen(store: forebear.Store, **options: object) -> forebear.Store:
    """Another `Store` on the same store (through the same server, as the same user)."""
    server = getattr(store, "server", None)
    if server is not None:
        return forebear.Store(server.url, token=server.admin_token, **options)  # type: ignore[arg-type]
    return forebear.Store(store.db_url, store.objects_url, **options)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "team"])
def loose_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[forebear.Store]:
    """A store in format 2 (one file per object, as before packs), on each backend this
    process reaches itself: for tests of loose objects themselves."""
    opened = open_store(request, tmp_path, loose=True)
    yield opened
    opened.close()


def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, *, loose: bool = False
) -> forebear.Store:
    """The store ``request.param`` names (see `store`); ``loose``: in format 2."""
    if loose:
        assert request.param != "server", "a server's store is made by the server"
    made = 2 if loose else None
    if request.param == "local":
        opened = forebear.open(tmp_path / "store", format=made)
    elif request.param == "server":
        from .serving import ForebearServer

        server = ForebearServer.over_folder(tmp_path)
        request.addfinalizer(server.stop)
        opened = server.store()
        opened.server = server  # type: ignore[attr-defined]  # for tests that add users
    else:
        opened = forebear.Store(
            request.getfixturevalue("postgres_url"),
            request.getfixturevalue("s3_url"),
            cache_dir=tmp_path / "cache",
            format=made,
        )
    return opened


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on 127.0.0.1 (see `Receiver`), closed after the test."""
    from .receiving import Receiver

    started = Receiver()
    yield started
    started.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForebearServer]:
    """A real `forebear server` process over SQLite + a folder in ``tmp_path`` (its log in
    ``tmp_path/server.log``), stopped after the test."""
    from .serving import ForebearServer

    running = ForebearServer.over_folder(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def team_server(postgres_url: str, s3_url: str, tmp_path: Path) -> Iterator[ForebearServer]:
    """A real `forebear server` process over PostgreSQL + S3 (a store in format 3; its log
    in ``tmp_path/server.log``), stopped after the test."""
    from .serving import ForebearServer

    running = ForebearServer(postgres_url, s3_url, tmp_path / "server.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[forebear.Store]:
    """The embedded store only, for tests about local files themselves."""
    opened = forebear.open(tmp_path / "store")
    yield opened
    opened.close()


def objects_behind(store: forebear.Store) -> ObjectLocation:
    """The object location itself: the store's, or (through a server) the server's."""
    server = getattr(store, "server", None)
    return server.direct.objects if server is not None else store.objects


def corrupt(store: forebear.Store, digest: str, data: bytes) -> None:
    """Overwrite a stored object behind forebear's back, on any backend: a loose object's
    file, or (in a store with packs) its bytes in their pack, from the first (as many of
    ``data`` as the object has)."""
    objects = objects_behind(store)
    slot = objects.packed([digest]).get(digest)
    if slot is None:
        path = objects.path_of(digest)
        if objects.is_local:
            os.chmod(path, 0o644)
        objects.fs.pipe_file(path, data)
        return
    assert objects.packs is not None
    path = objects.packs.path(slot.pack)
    if objects.is_local:
        os.chmod(path, 0o644)
    raw = bytearray(objects.fs.cat_file(path))
    damage = data[: slot.length]
    raw[slot.offset : slot.offset + len(damage)] = damage
    objects.fs.pipe_file(path, bytes(raw))


def stored_digests(store: forebear.Store) -> set[str]:
    """Every object the store's location holds: loose ones, and those its packs hold (as
    each pack's index copy lists them)."""
    objects = objects_behind(store)
    found = set(objects.iter_digests())
    if objects.packs is not None:
        for pack in objects.iter_packs():
            found |= objects.packs.read_index(pack.digest)[1].keys()
    return found


def format_2(location: Path) -> Path:
    """Make ``location`` a store in format 2 (one file per object, as forebear made them
    before packs), for tests about loose objects themselves; returns it."""
    forebear.open(location, format=2).close()
    return location


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[..., Path]:
    """Write a folder of files: ``make_tree("data", {"a.txt": "x", "sub/b.bin": b"..."})``."""

    def make(name: str, files: dict[str, str | bytes]) -> Path:
        root = tmp_path / name
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            path.write_bytes(data)
        root.mkdir(parents=True, exist_ok=True)
        return root

    return make


def count_object_reads(location: ObjectLocation, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests of the objects ``location`` reads from now on, in order: a chunk is read
    whole (``read_bytes``) or straight into a reader's buffer (``read_into``)."""
    opened: list[str] = []
    real_read_bytes, real_read_into = location.read_bytes, location.read_into

    def counting(digest: str, label: str | None = None) -> bytes:
        opened.append(digest)
        return real_read_bytes(digest, label)

    def counting_into(
        digests: Sequence[str], sizes: Sequence[int], view: memoryview, name: Callable[[int], str]
    ) -> None:
        opened.extend(digests)
        real_read_into(digests, sizes, view, name)

    monkeypatch.setattr(location, "read_bytes", counting)
    monkeypatch.setattr(location, "read_into", counting_into)
    return opened


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without FOREBEAR_* settings, for real subprocesses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
    env["FOREBEAR_NO_PROGRESS"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `forebear` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "forebear", *args],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
    )


def python_in_own_mounts(
    mounts: str, script: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a Python ``script`` in a private mount namespace after the shell commands
    ``mounts`` (a small tmpfs, a read-only bind): root only."""
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", f'{mounts} && {sys.executable} -c "$0"', script],
        env=env or clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def cli_ok(store: Path, *args: str, input: str | None = None) -> str:
    """Run the command on the store in a folder; insist it succeeded without a traceback."""
    done = run_cli("--objects", str(store), *args, input=input)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def cli_error(store: Path, *args: str) -> str:
    """Run the command; insist it failed with exactly one `forebear: error:` line."""
    done = run_cli("--objects", str(store), *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("forebear: error: "), done.stderr
    return lines[0]


def spy_on_stat_helpers(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes] | None]:
    """Every stat helper process started from now on (each started as it would be)."""
    from forebear import stat_worker

    started: list[subprocess.Popen[bytes] | None] = []
    real = stat_worker._start_helper

    def start() -> subprocess.Popen[bytes] | None:
        child = real()
        started.append(child)
        return child

    monkeypatch.setattr(stat_worker, "_start_helper", start)
    return started


@pytest.fixture
def not_racy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust stat-cache records taken right after a change (tests write files just before)."""
    from forebear import statcache

    monkeypatch.setattr(statcache, "RACY_SECONDS", 0.0)


@pytest.fixture
def full_logs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of artifacts whose files a log hashed and compared one by one."""
    from forebear import ingest

    seen: list[str] = []
    real = ingest.prepare

    def recording(artifact: forebear.Artifact, *args: object, **kwargs: object) -> object:
        seen.append(artifact.name)
        return real(artifact, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "prepare", recording)
    return seen
