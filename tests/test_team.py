"""Team scale on real servers: PostgreSQL + S3 (SeaweedFS, which checks credentials),
push/pull, the object cache, project config, credentials and clear errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

import forebear

from .conftest import clean_env, corrupt, run_cli


@pytest.fixture
def team(postgres_url: str, s3_url: str, tmp_path: Path) -> Iterator[forebear.Store]:
    with forebear.Store(postgres_url, s3_url, cache_dir=tmp_path / "team-cache") as store:
        yield store


@pytest.fixture
def loose_team(postgres_url: str, s3_url: str, tmp_path: Path) -> Iterator[forebear.Store]:
    """`team` in format 2: one S3 object per stored object."""
    cache = tmp_path / "team-cache"
    with forebear.Store(postgres_url, s3_url, cache_dir=cache, format=2) as store:
        yield store


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[forebear.Store]:
    with forebear.open(tmp_path / "laptop") as store:
        yield store


def build_history(store: forebear.Store, make_tree: Callable[..., Path]) -> None:
    """raw v0, v1 -> (train) -> model v0 'best'; a run that only reads the model."""
    data = make_tree("raw", {"a.csv": "1\n", "b.csv": "2\n"})
    with forebear.init(project="p", name="ingest", store=store) as run:
        run.log_artifact(data, name="raw", aliases=["gold"])
        (data / "b.csv").write_text("22\n")
        run.log_artifact(data, name="raw")
    with forebear.init(project="p", name="train", store=store) as run:
        run.use_artifact("raw:v1")
        for epoch in range(3):
            run.log({"epoch": epoch, "loss": 1 / (epoch + 1)}, step=epoch)
        model = forebear.Artifact("model", type="model", metadata={"acc": 0.9})
        model.add_dir(make_tree("m", {"w.bin": os.urandom(3000)}))
        run.log_artifact(model, aliases=["best"])
    with forebear.init(project="p", name="evaluate", store=store) as run:
        run.use_artifact("model:best")


def test_push_and_pull_carry_versions_lineage_aliases_and_only_missing_objects(
    laptop: forebear.Store, team: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    build_history(laptop, make_tree)
    report = laptop.push(team, ["model:best"])
    # the model and everything upstream of it; not raw:v0, which the model did not use
    assert sorted(report.versions) == ["p/model:v0", "p/raw:v1"]
    assert report.runs_copied == 3  # ingest, train, and evaluate (a consumer of the model)
    assert report.objects_copied == 5  # two manifests, a.csv, b.csv (v1), w.bin
    model = team.artifact("p/model:best")
    assert model.metadata == {"acc": 0.9}
    assert model.aliases == ["latest", "best"]
    assert [v.ref for v in model.upstream()] == ["raw:v0"]  # the target numbers its own
    assert model.upstream()[0].digest == laptop.artifact("raw:v1").digest
    assert [r.name for r in model.consumers] == ["evaluate"]
    assert model.producer is not None and model.producer.id == laptop.artifact("model").producer.id
    history = laptop.artifact("model").producer.history()
    assert len(history) == 3 and model.producer.history() == history  # the run's charts too
    assert team.verify() == []

    again = laptop.push(team)  # everything now: only raw:v0 is new
    assert again.created == ["p/raw:v1"]
    assert again.objects_copied == 2  # raw:v0's manifest and its own b.csv
    assert team.artifact("raw:gold").digest == laptop.artifact("raw:v0").digest
    assert team.artifact("raw:latest").digest == laptop.artifact("raw:v1").digest
    assert laptop.push(team).objects_copied == 0  # idempotent

    # pull into a fresh store: the same lineage, the same bytes, verified
    with forebear.open(tmp_path / "colleague") as other:
        pulled = other.pull(team, ["model"])
        assert pulled.created == ["p/raw:v0", "p/model:v0"]
        path = other.artifact("model").download(tmp_path / "dl")
        assert (path / "w.bin").read_bytes() == (tmp_path / "m" / "w.bin").read_bytes()
        assert [v.ref for v in other.artifact("model").upstream()] == ["raw:v0"]
        assert other.artifact("model").producer.history() == history


def test_a_ref_given_for_the_other_store_makes_no_store(
    laptop: forebear.Store,
    make_tree: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``push("p/model:v0")`` (the refs given first) would have made a store folder of
    that name and pushed everything into it: it is one clear error, and nothing is made."""
    build_history(laptop, make_tree)
    monkeypatch.chdir(tmp_path)
    for ref in ("p/model:v0", "model:best"):
        with pytest.raises(forebear.InvalidInput, match=r"takes the other store first"):
            laptop.push(ref)
        with pytest.raises(forebear.InvalidInput, match=r"pull\(other_store, refs="):
            laptop.pull(ref)
    assert not (tmp_path / "p").exists() and not (tmp_path / "model:best").exists()
    (tmp_path / "backup:old").mkdir()  # a folder of that name is a folder
    assert laptop.push("backup:old").versions
    with forebear.open(tmp_path / "backup:old") as backup:
        assert backup.artifact("p/model:best").digest == laptop.artifact("p/model:best").digest


def test_push_refuses_corrupted_objects_and_commits_nothing(
    laptop: forebear.Store, team: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    with forebear.init(project="p", store=laptop) as run:
        version = run.log_artifact(make_tree("d", {"x.bin": b"precious"}), name="ds")
    corrupt(laptop, version.entry("x.bin").digest or "", b"precioux")
    with pytest.raises(forebear.IntegrityError):
        laptop.push(team)
    with pytest.raises(forebear.ArtifactNotFound):
        team.artifact("ds")
    assert list(team.objects.iter_digests()) == [] or all(
        d != version.entry("x.bin").digest for d in team.objects.iter_digests()
    )


PUSHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import forebear
    from forebear import objects

    laptop, ready = sys.argv[1], sys.argv[2]
    original = objects.RemoteLocation.put_stream
    calls = []

    def put_stream(self, *args, **kwargs):
        if len(calls) == 2:
            Path(ready).write_text("paused")
            time.sleep(600)
        calls.append(1)
        return original(self, *args, **kwargs)

    objects.RemoteLocation.put_stream = put_stream
    forebear.open(laptop).push(forebear.Store())
    """
)


def test_push_killed_midway_resumes_without_copying_twice(
    laptop: forebear.Store,
    postgres_url: str,
    s3_url: str,
    make_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    files = {f"f{i}.bin": os.urandom(2000) for i in range(6)}
    with forebear.init(project="p", store=laptop) as run:
        run.log_artifact(make_tree("d", files), name="ds")
    # one S3 object per object, the pusher paused after two (in packs: test_packs.py)
    forebear.Store(postgres_url, s3_url, cache_dir=tmp_path / "c", format=2).close()
    ready = tmp_path / "ready"
    env = clean_env(FOREBEAR_DB=postgres_url, FOREBEAR_OBJECTS=s3_url)
    env.update({k: os.environ[k] for k in os.environ if k.startswith("AWS_")})
    pusher = subprocess.Popen(
        [sys.executable, "-c", PUSHER, str(tmp_path / "laptop"), str(ready)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert pusher.poll() is None, pusher.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with forebear.Store(postgres_url, s3_url, cache_dir=tmp_path / "c") as team:
        copied_before = set(team.objects.iter_digests())
        assert len(copied_before) == 2
        # the pusher is alive: its objects are not garbage, whatever their age
        assert team.gc(grace=dt.timedelta(0)).objects == []
        pusher.send_signal(signal.SIGKILL)
        pusher.communicate(timeout=30)
        with pytest.raises(forebear.ArtifactNotFound):
            team.artifact("ds")  # nothing partial
        report = laptop.push(team)
        assert report.objects_copied == 7 - 2  # six files and a manifest, less what arrived
        assert team.artifact("ds").files() == sorted(files)
        assert team.verify() == []


def test_cache_is_verified_on_every_hit_and_bounded(
    loose_team: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    team = loose_team  # objects come through the cache (from packs, straight to the folder)
    files = {f"part{i}.bin": os.urandom(10_000) for i in range(5)}
    with forebear.init(project="p", store=team) as run:
        version = run.log_artifact(make_tree("d", files), name="ds")
    first = version.download(tmp_path / "one")
    usage = team.cache.usage()
    assert (usage.objects, usage.object_bytes) == (5, 50_000)
    # a cached copy damaged on disk (same size) is never handed over: it is fetched again
    cached = team.cache.path_of(version.entry("part0.bin").digest or "")
    cached.write_bytes(b"x" * 10_000)
    second = version.download(tmp_path / "two")
    assert (second / "part0.bin").read_bytes() == files["part0.bin"]
    assert cached.read_bytes() == files["part0.bin"]
    assert (first / "part1.bin").read_bytes() == files["part1.bin"]
    # least recently used objects go first when the cache is over its bound
    os.utime(team.cache.path_of(version.entry("part4.bin").digest or ""), (1, 1))
    removed = team.cache.prune(team.cache.usage().bytes - 10_000)
    assert (removed.files, removed.bytes) == (1, 10_000)
    assert not team.cache.path_of(version.entry("part4.bin").digest or "").exists()
    assert team.cache.clear().objects == 4
    assert team.cache.usage().files == 0


def test_cache_command(
    loose_team: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    team = loose_team  # objects come through the cache (from packs, straight to the folder)
    with forebear.init(project="p", store=team) as run:
        run.log_artifact(make_tree("d", {"a": b"a" * 100}), name="ds").download(tmp_path / "x")
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env["FOREBEAR_CACHE_DIR"] = str(tmp_path / "team-cache")
    args = ["--db", team.db_url, "--objects", team.objects_url, "cache", "--json"]
    shown = run_cli(*args, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["objects"] == 1
    cleared = run_cli(*args, "--clear", env=env)
    assert json.loads(cleared.stdout)["removed_files"] >= 1
    assert json.loads(cleared.stdout)["files"] == 0


def test_project_config_means_no_code_change(
    postgres_url: str, s3_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    done = run_cli("init", "--db", postgres_url, "--objects", s3_url, cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    config = (project / "forebear.toml").read_text()
    assert postgres_url in config and s3_url in config
    script = project / "scripts" / "prepare.py"
    (project / "scripts" / "data.txt").write_text("shared")
    script.write_text(
        "import forebear\n"
        "with forebear.init(project='team') as run:\n"
        "    print(run.log_artifact('data.txt', name='shared').ref)\n"
    )
    ran = subprocess.run(
        [sys.executable, str(script)], cwd=project / "scripts", env=clean_env(**env),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    with forebear.Store(postgres_url, s3_url) as store:
        assert store.artifact("team/shared").files() == ["data.txt"]
    assert not (project / "scripts" / ".forebear").exists()

    refused = run_cli(
        "init", "--db", "postgresql+psycopg://team:hunter2@db.example/forebear", cwd=tmp_path
    )
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "password" in refused.stderr
    assert "hunter2" not in refused.stderr
    assert not (tmp_path / "forebear.toml").exists()


@pytest.mark.s3
def test_init_with_objects_on_s3_alone_keeps_the_catalog_beside_its_config(
    s3_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "scripts" / "deep").mkdir(parents=True)
    (project / "scripts" / "deep" / "data.txt").write_text("shared")
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    made = run_cli("init", "--objects", s3_url, "--json", cwd=project, env=env)
    assert made.returncode == 0, made.stderr
    catalog = f"sqlite:///{project / '.forebear' / 'meta.db'}"
    assert json.loads(made.stdout)["db"] == catalog
    logged = run_cli("log", "data.txt", "--name", "d", cwd=project / "scripts" / "deep", env=env)
    assert logged.returncode == 0, logged.stderr
    for folder in (project, project / "scripts", project / "scripts" / "deep"):
        shown = run_cli("status", "--json", cwd=folder, env=env)
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert (status["catalog"], status["objects"]) == (catalog, s3_url)
        assert status["versions"] == 1
    assert not (project / "scripts" / "deep" / ".forebear").exists()


def test_credentials_never_reach_the_database_files_or_output(
    team: forebear.Store, make_tree: Callable[..., Path], postgres_url: str, s3_url: str
) -> None:
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    key = os.environ["AWS_ACCESS_KEY_ID"]
    with forebear.init(project="p", store=team) as run:
        run.log_artifact(make_tree("d", {"a": "a"}), name="ds")
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    listing = run_cli("--db", postgres_url, "--objects", s3_url, "runs", "--json", env=env)
    assert listing.returncode == 0
    dump = []
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                dump.append(repr(tuple(row)))
    engine.dispose()
    everything = (
        "\n".join(dump)
        + team.objects.fs.cat_file(
            team.objects.path_of("").rsplit("objects/", 1)[0] + "forebear.json"
        ).decode()
        + listing.stdout
        + listing.stderr
        + repr(team)
    )
    assert secret not in everything and key not in everything
    assert "objects" in everything  # the dump really holds the store's rows


def test_wrong_credentials_and_unreachable_backends_are_one_clear_line(
    s3_url: str, postgres_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    wrong = dict(env, AWS_SECRET_ACCESS_KEY="definitely-wrong-secret")
    (tmp_path / "f.txt").write_text("data")
    log = ["log", str(tmp_path / "f.txt")]  # a write: it makes the store if it can
    bad_key = run_cli("--db", postgres_url, "--objects", s3_url, *log, env=wrong)
    dead_port = run_cli(
        "--db", postgres_url, "--objects", s3_url, *log,
        env=dict(env, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1"),
    )  # fmt: skip
    no_db = run_cli(
        "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none", "--objects", str(tmp_path), "ls"
    )
    for done, words in ((bad_key, "permission denied"), (dead_port, "cannot"), (no_db, "database")):
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("forebear: error: ") and done.stderr.count("\n") == 1
        assert words in done.stderr
        assert "Traceback" not in done.stderr and "definitely-wrong-secret" not in done.stderr


WRITER = textwrap.dedent(
    """
    import sys
    import forebear
    data, name = sys.argv[1], sys.argv[2]
    with forebear.init(project="p", name="writer") as run:
        version = run.log_artifact(data, name=name, aliases=["hot"])
        version.add_alias("warm")
    print(version.ref)
    """
)


@pytest.mark.slow
def test_six_writers_on_postgres_and_s3_get_gapless_versions(
    postgres_url: str, s3_url: str, make_tree: Callable[..., Path]
) -> None:
    env = clean_env(FOREBEAR_DB=postgres_url, FOREBEAR_OBJECTS=s3_url)
    env.update({k: os.environ[k] for k in os.environ if k.startswith("AWS_")})
    folders = [make_tree(f"w{i}", {"f": f"writer {i}"}) for i in range(6)]
    with contextlib.ExitStack() as running:  # pipes closed, writers waited for, even on failure
        writers = [
            running.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", WRITER, str(folder), "shared"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for folder in folders
        ]
        refs = []
        for writer in writers:
            out, err = writer.communicate(timeout=180)
            assert writer.returncode == 0, err
            refs.append(out.strip())
    assert sorted(refs) == [f"shared:v{i}" for i in range(6)]
    with forebear.Store(postgres_url, s3_url) as store:
        assert [v.version for v in store.versions("shared")] == [f"v{i}" for i in range(6)]
        history = store.alias_history("shared")
        assert sum(1 for h in history if h["alias"] == "hot") == 6  # every move kept
        assert sum(1 for h in history if h["alias"] == "warm") == 6
        assert store.verify() == []


@pytest.mark.parametrize("packed", [False, True], ids=["format-2", "format-3"])
def test_many_file_log_uses_few_requests(
    request: pytest.FixtureRequest, make_tree: Callable[..., Path], packed: bool
) -> None:
    team: forebear.Store = request.getfixturevalue("team" if packed else "loose_team")
    count = 300
    folder = make_tree("many", {f"f{i:03d}.txt": f"file {i}" for i in range(count)})
    calls: dict[str, int] = {}
    client = team.objects.fs.s3 if hasattr(team.objects.fs, "s3") else None
    if client is None:
        team.objects.fs.connect(refresh=False)
        client = team.objects.fs.s3

    def count_call(model: object, **kwargs: object) -> None:
        name = getattr(model, "name", "?")
        calls[name] = calls.get(name, 0) + 1

    client.meta.events.register("before-call.s3", count_call)
    with forebear.init(project="p", store=team) as run:
        run.log_artifact(folder, name="many")
    puts = calls.get("PutObject", 0)
    lists = calls.get("ListObjectsV2", 0)
    heads = calls.get("HeadObject", 0)
    if packed:  # one pack and its index copy
        assert puts == 2 and heads <= 2 and sum(calls.values()) <= 10, calls
        return
    assert puts == count + 1  # one PUT per file and one for the manifest, nothing more
    assert lists <= 1 + 256  # existence checked by listing prefixes...
    assert heads <= 2  # ...not one request per object
    assert sum(calls.values()) <= count + 256 + 10
