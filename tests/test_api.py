"""The SPEC's script API end to end, on real SQLite files and a local folder."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import forebear

from .conftest import corrupt, stored_digests


def test_spec_example_script(
    store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    raw_dir = make_tree("raw", {"iris.csv": "a,b\n1,2\n", "notes/readme.txt": "iris"})
    with forebear.init(project="iris", name="prepare", store=store) as prep:
        prep.log_artifact(raw_dir, name="iris-raw", type="dataset")

    plots = make_tree("plots", {"loss.png": b"\x89PNG fake", "roc/roc.png": b"roc"})
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(b"pickled model")
    external = tmp_path / "external.parquet"
    external.write_bytes(b"big table")
    clean = make_tree("data/clean", {"train.csv": "x\n1\n"})

    with forebear.init(
        project="iris", name="rf-baseline", config={"n_estimators": 100}, store=store
    ) as run:
        assert forebear.runs.active_run() is run
        raw = run.use_artifact("iris-raw:latest")
        data_dir = raw.download()
        assert (data_dir / "iris.csv").read_text() == "a,b\n1,2\n"
        assert (data_dir / "notes" / "readme.txt").read_text() == "iris"

        model = forebear.Artifact(
            "iris-rf", type="model", description="a forest", metadata={"accuracy": 0.97}
        )
        assert model.add_file(model_file) == "model.pkl"
        assert model.add_dir(plots, name="plots") == ["plots/loss.png", "plots/roc/roc.png"]
        assert model.add_reference(str(external)) == ["external.parquet"]
        version = run.log_artifact(model, aliases=["best"])
        shorthand = run.log_artifact(clean, name="iris-clean", type="dataset")
        run.log({"accuracy": 0.97})

    assert version.ref == "iris-rf:v0"
    assert (version.name, version.version, version.project) == ("iris-rf", "v0", "iris")
    assert version.type == "model"
    assert version.aliases == ["latest", "best"]
    assert version.metadata == {"accuracy": 0.97}
    assert version.description == "a forest"
    assert version.files() == [
        "external.parquet",
        "model.pkl",
        "plots/loss.png",
        "plots/roc/roc.png",
    ]
    assert version.size == sum(len(x) for x in [b"pickled model", b"\x89PNG fake", b"roc"]) + len(
        b"big table"
    )
    assert len(version.digest) == 32
    assert version.hash_algorithm == "xxh3-128"
    assert shorthand.ref == "iris-clean:v0" and shorthand.files() == ["train.csv"]
    assert version.open("model.pkl").read() == b"pickled model"
    assert version.open("external.parquet").read() == b"big table"

    finished = store.run(run.id)
    assert finished.status == "finished"
    assert finished.config == {"n_estimators": 100}
    assert finished.summary == {"accuracy": 0.97}
    assert [v.ref for v in finished.inputs] == ["iris-raw:v0"]
    assert [v.ref for v in finished.outputs] == ["iris-rf:v0", "iris-clean:v0"]
    assert version.producer == finished
    assert [r.name for r in raw.consumers] == ["rf-baseline"]
    assert [v.ref for v in version.upstream()] == ["iris-raw:v0"]
    assert {v.ref for v in raw.downstream()} == {"iris-rf:v0", "iris-clean:v0"}
    assert [v.ref for v in raw.downstream(type="model")] == ["iris-rf:v0"]

    # the manifest object pins the whole version
    manifest = forebear.Manifest.from_bytes(store.objects.read_bytes(version.digest))
    assert manifest.paths() == version.files()


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def committed_repo(repo: Path) -> str:
    """A git repository at ``repo`` with train.py committed; the commit's id."""
    subprocess.run([*GIT, "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=repo, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_run_status_and_context(store: forebear.Store, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    commit = committed_repo(repo)
    os.chdir(repo)

    with forebear.init(project="ctx", store=store) as clean_run:
        pass
    (repo / "train.py").write_text("print(2)\n")
    with (
        pytest.raises(ValueError, match="boom"),
        forebear.init(project="ctx", name="will-fail", store=store) as failing,
    ):
        raise ValueError("boom")

    first = store.run(clean_run.id)
    assert first.status == "finished" and first.ended_at is not None
    assert first.context["git"] == {"commit": commit, "dirty": False}
    assert first.context["python"] == platform.python_version()
    assert first.context["platform"] == platform.platform()
    assert first.context["host"]
    assert isinstance(first.context["argv"], list)
    assert "xxhash" in first.context["packages"]
    json.dumps(first.context)  # JSON-serialisable
    assert len(first.id) == 8 and first.id.isalnum() and first.id == first.id.lower()

    second = store.run(failing.id)
    assert second.status == "failed"
    assert second.context["git"]["dirty"] is True
    assert [r.id for r in store.runs(project="ctx")] == [clean_run.id, failing.id]


def test_git_state_is_found_wherever_git_finds_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forebear.context import git_state

    repo, outside, bare = tmp_path / "repo", tmp_path / "outside", tmp_path / "bare.git"
    (repo / "deep" / "er").mkdir(parents=True)
    outside.mkdir()
    commit = committed_repo(repo)
    # a linked work tree has a .git file, not a folder
    subprocess.run([*GIT, "worktree", "add", "-q", str(tmp_path / "linked")], cwd=repo, check=True)
    subprocess.run([*GIT, "clone", "-q", "--bare", str(repo), str(bare)], check=True)

    assert git_state(str(repo / "deep" / "er")) == {"commit": commit, "dirty": False}
    assert git_state(str(tmp_path / "linked")) == {"commit": commit, "dirty": False}
    assert git_state(str(bare)) is not None and git_state(str(bare))["commit"] == commit
    assert git_state(str(outside)) is None
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))  # a repository named from elsewhere
    assert git_state(str(outside)) == {"commit": commit, "dirty": True}  # train.py "deleted"


def test_same_bytes_stored_once_across_versions_and_artifacts(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    shared = os.urandom(10_000)
    first = make_tree("first", {"a.bin": shared, "b.bin": b"only in first"})
    second = make_tree("second", {"copy-of-a.bin": shared, "c.bin": b"only in second"})
    with forebear.init(project="p", store=store) as run:
        v_a = run.log_artifact(first, name="alpha")
        before = stored_digests(store)
        v_b = run.log_artifact(second, name="beta")
    after = stored_digests(store)
    # beta adds only its new file and its manifest; the shared bytes are not stored again
    digests = {e.path: e.digest for e in v_b.manifest}
    assert after - before == {digests["c.bin"], v_b.digest}
    assert digests["copy-of-a.bin"] == {e.path: e.digest for e in v_a.manifest}["a.bin"]


def test_new_version_stores_only_changed_files(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    files = {f"part-{i}.csv": f"rows {i}\n" * 100 for i in range(20)}
    data = make_tree("data", files)
    with forebear.init(project="p", store=store) as run:
        v0 = run.log_artifact(data, name="table")
        before = stored_digests(store)
        (data / "part-3.csv").write_text("changed\n")
        (data / "part-20.csv").write_text("new\n")
        v1 = run.log_artifact(data, name="table")
    assert (v0.version, v1.version) == ("v0", "v1")
    new_objects = stored_digests(store) - before
    entries = {e.path: e.digest for e in v1.manifest}
    assert new_objects == {entries["part-3.csv"], entries["part-20.csv"], v1.digest}
    changes = v0.diff(v1)
    assert (changes.added, changes.removed, changes.modified) == (
        ["part-20.csv"],
        [],
        ["part-3.csv"],
    )
    reverse = v1.diff(v0)
    assert (reverse.added, reverse.removed) == ([], ["part-20.csv"])


def test_identical_content_returns_existing_version_and_keeps_both_producers(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    data = make_tree("data", {"x.txt": "same"})
    with forebear.init(project="p", name="first", store=store) as first:
        v0 = first.log_artifact(data, name="ds")
    with forebear.init(project="p", name="second", store=store) as second:
        again = second.log_artifact(data, name="ds", aliases=["prod"])
    assert again == v0 and again.ref == "ds:v0"
    assert [v.ref for v in store.versions("ds")] == ["ds:v0"]
    assert [r.name for r in again.producers] == ["first", "second"]
    assert again.producer is not None and again.producer.name == "first"
    assert again.aliases == ["latest", "prod"]
    assert [v.ref for v in store.run(second.id).outputs] == ["ds:v0"]


def test_aliases_move_and_history_is_kept(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    data = make_tree("data", {"x.txt": "1"})
    with forebear.init(project="p", store=store) as run:
        v0 = run.log_artifact(data, name="ds", aliases=["best"])
        (data / "x.txt").write_text("2")
        v1 = run.log_artifact(data, name="ds")
    assert store.artifact("ds").ref == "ds:v1"
    assert store.artifact("ds:latest") == v1
    assert store.artifact("ds:best") == v0
    v1.add_alias("best")
    assert store.artifact("ds:best") == v1
    assert v0.aliases == []
    assert v1.aliases == ["latest", "best"]
    v1.remove_alias("best")
    with pytest.raises(forebear.VersionNotFound):
        store.artifact("ds:best")
    with pytest.raises(forebear.InvalidInput):
        v1.remove_alias("latest")
    history = [(h["alias"], h["version"], h["previous"]) for h in store.alias_history("ds")]
    assert history == [
        ("latest", "v0", None),
        ("best", "v0", None),
        ("latest", "v1", "v0"),
        ("best", "v1", "v0"),
        ("best", None, "v1"),
    ]


def test_download_is_verified_cached_and_repairs_tampering(
    store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.txt": "alpha", "deep/b.txt": "beta"})
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    cached = version.download()
    assert cached.is_relative_to(store.cache_dir)
    assert (cached / "deep" / "b.txt").read_text() == "beta"
    # a tampered copy (same size!) is detected and repaired on the next download
    target = cached / "a.txt"
    target.write_text("ALPHA")
    assert version.download() == cached
    assert target.read_text() == "alpha"
    # an explicit root receives the entries directly under it
    dest = tmp_path / "dest"
    assert version.download(dest) == dest.resolve()
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.txt")) == [
        "a.txt",
        "deep/b.txt",
    ]


def test_corrupted_object_is_refused_and_reported(
    store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"good.txt": "fine", "bad.txt": "will rot"})
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    assert store.verify() == []
    version.verify()
    bad = {e.path: e.digest for e in version.manifest}["bad.txt"]
    corrupt(store, bad, b"will ro7")
    with pytest.raises(forebear.IntegrityError) as raised:
        version.verify()
    assert [p.path for p in raised.value.problems] == ["bad.txt"]
    problems = store.verify()
    assert [(p.ref, p.path) for p in problems] == [("ds:v0", "bad.txt")]
    assert store.verify("ds:v0") == problems
    dest = tmp_path / "dest"
    with pytest.raises(forebear.IntegrityError, match=r"bad\.txt"):
        version.download(dest)
    assert not (dest / "bad.txt").exists()


def test_ref_resolution_prefers_the_active_runs_project(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    a = make_tree("a", {"f": "from a"})
    b = make_tree("b", {"f": "from b"})
    with forebear.init(project="alpha", store=store) as run:
        run.log_artifact(a, name="shared")
    with forebear.init(project="beta", store=store) as run:
        run.log_artifact(b, name="shared")
        used = run.use_artifact("shared")
        assert used.project == "beta"
        assert store.artifact("shared").project == "beta"
    with pytest.raises(forebear.ArtifactNotFound, match="alpha/shared"):
        store.artifact("shared")
    assert store.artifact("alpha/shared:v0").open("f").read() == b"from a"
    assert [v.name for v in store.artifacts(project="alpha")] == ["shared"]
    assert [v.project for v in store.artifacts(type="dataset")] == ["alpha", "beta"]
    assert store.artifacts(type="model") == []


def test_module_level_functions_act_on_the_active_run(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    with forebear.init(project="p", name="prepare", store=store):
        source = forebear.log_artifact(make_tree("source", {"s.txt": "s"}), name="source")
    data = make_tree("data", {"f.txt": "x"})
    run = forebear.init(project="p", name="script", store=store)
    forebear.use_artifact("source")
    version = forebear.log_artifact(data, name="ds", aliases=["best"])
    forebear.log({"loss": 0.5})
    forebear.finish()
    finished = store.run(run.id)
    assert finished.status == "finished"
    assert finished.summary == {"loss": 0.5}
    assert finished.inputs == [source]
    assert finished.outputs == [version]
    with pytest.raises(forebear.RunStateError, match=r"forebear\.init"):
        forebear.log({"x": 1})
    forebear.finish()  # none active: nothing to finish, as W&B's wandb.finish()
    assert store.run(run.id).status == "finished"


def test_store_settings_come_from_environment(
    monkeypatch: pytest.MonkeyPatch, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"f.txt": "x"})
    # with nothing set, ./.forebear/ is created on first write
    with forebear.init(project="p") as run:
        run.log_artifact(data, name="ds")
    assert Path(".forebear/forebear.json").is_file()
    assert Path(".forebear/meta.db").is_file()
    monkeypatch.setenv("FOREBEAR_DIR", str(tmp_path / "elsewhere"))
    with forebear.init(project="p") as run:
        run.log_artifact(data, name="other")
    assert (tmp_path / "elsewhere" / "meta.db").is_file()
    assert [v.name for v in forebear.open(tmp_path / "elsewhere").artifacts()] == ["other"]
    monkeypatch.setenv("FOREBEAR_DB", f"sqlite:///{tmp_path / 'split.db'}")
    monkeypatch.setenv("FOREBEAR_OBJECTS", str(tmp_path / "split-objects"))
    split = forebear.Store()
    assert split.db_url.endswith("split.db")
    assert (tmp_path / "split-objects" / "forebear.json").is_file()
    # the object location's folder given as a Path
    with forebear.Store(f"sqlite:///{tmp_path / 'paths.db'}", tmp_path / "path-objects") as by_path:
        assert by_path.objects_url == str(tmp_path / "path-objects")
        with forebear.init(project="p", store=by_path) as run:
            run.log_artifact(data, name="ds")
    assert (tmp_path / "path-objects" / "forebear.json").is_file()
    with forebear.Store(
        f"sqlite:///{tmp_path / 'paths.db'}", str(tmp_path / "path-objects")
    ) as again:
        assert [a.name for a in again.artifacts()] == ["ds"]


def test_multi_hop_lineage(store: forebear.Store, make_tree: Callable[..., Path]) -> None:
    source = make_tree("source", {"raw": "r"})
    with forebear.init(project="p", name="ingest", store=store) as run:
        raw = run.log_artifact(source, name="raw")
    with forebear.init(project="p", name="clean", store=store) as run:
        run.use_artifact("raw")
        run.log_artifact(make_tree("clean", {"c": "c"}), name="clean")
    with forebear.init(project="p", name="features", store=store) as run:
        run.use_artifact("raw")
        features = run.log_artifact(make_tree("feat", {"f": "f"}), name="features")
    with forebear.init(project="p", name="train", store=store) as run:
        run.use_artifact("clean")
        run.use_artifact("features")
        model = run.log_artifact(make_tree("model", {"m": "m"}), name="model", type="model")
    with forebear.init(project="p", name="evaluate", store=store) as run:
        run.use_artifact("model")  # a run that only consumes

    assert [v.ref for v in model.upstream()] == ["clean:v0", "features:v0", "raw:v0"]
    assert [v.ref for v in model.upstream(depth=1)] == ["clean:v0", "features:v0"]
    assert [v.ref for v in raw.downstream()] == ["clean:v0", "features:v0", "model:v0"]
    assert [v.ref for v in raw.downstream(type="model")] == ["model:v0"]
    assert [r.name for r in model.consumers] == ["evaluate"]
    assert features.upstream() == [raw]
    lineage = store.lineage("model", upstream=True)
    kinds = sorted((n["kind"], n["name"]) for n in lineage.nodes())
    assert kinds == [
        ("run", "clean"),
        ("run", "features"),
        ("run", "ingest"),
        ("run", "train"),
        ("version", "clean"),
        ("version", "features"),
        ("version", "model"),
        ("version", "raw"),
    ]
    assert sorted(lineage.versions()) == ["p/clean:v0", "p/features:v0", "p/model:v0", "p/raw:v0"]
    runs = sorted(d["name"] for _, d in lineage.graph.nodes(data=True) if d["kind"] == "run")
    assert runs == ["clean", "features", "ingest", "train"]
    assert lineage.graph.has_edge(
        "p/raw:v0",
        next(
            n
            for n, d in lineage.graph.nodes(data=True)
            if d["kind"] == "run" and d["name"] == "clean"
        ),
    )
    both = store.lineage("clean", upstream=True, downstream=True)
    assert "p/model:v0" in both.versions() and "p/raw:v0" in both.versions()
    assert "p/features:v0" not in both.versions()  # a sibling, not an ancestor or descendant
    text = model.lineage().to_text()
    assert text.splitlines()[0] == "model:v0 (latest) [model]"
    assert "run ingest" in text


def test_runs_are_read_a_page_at_a_time_without_skipping_or_repeating(
    store: forebear.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`iter_runs` asks for a page at a time (three runs here), each after the last run
    of the page before: a run started or deleted meanwhile neither repeats a run nor
    makes one skipped, as counting pages would."""
    import forebear.run_listing

    monkeypatch.setattr(forebear.run_listing, "PAGE", 3)
    made = []
    for number in range(8):
        with forebear.init(project="ab"[number % 2], name=f"r{number}", store=store) as run:
            made.append(run.id)
    by_start = [r.id for r in sorted(store.runs(), key=lambda r: (r.started_at, r.id))]
    assert by_start == made and store.count_runs() == 8
    assert [r.id for r in store.iter_runs(newest_first=True)] == made[::-1]
    assert [r.id for r in store.iter_runs("b")] == made[1::2] and store.count_runs("b") == 4
    assert [r.id for r in store.iter_runs(start=2, limit=4)] == made[2:6]
    assert [r.id for r in store.iter_runs(newest_first=True, start=6)] == made[1::-1]
    assert list(store.iter_runs(start=8)) == [] and list(store.iter_runs(limit=0)) == []
    with pytest.raises(forebear.InvalidInput, match="start counts runs from 0"):
        list(store.iter_runs(start=10**30))  # beyond what a catalog binds: one clear error
    assert [r.id for r in store.iter_runs(limit=10**30)] == made  # no bound on a limit

    # a run started and one deleted while a listing is half read (two pages of three
    # held): counting pages would list a run twice, or skip one
    newest_first = store.iter_runs(newest_first=True)
    oldest_first = store.iter_runs()
    seen_new = [next(newest_first).id for _ in range(4)]
    seen_old = [next(oldest_first).id for _ in range(4)]
    with forebear.init(project="a", name="late", store=store) as late:
        pass
    store.delete_run(made[1])  # read already by one listing, not yet by the other
    seen_new += [r.id for r in newest_first]
    seen_old += [r.id for r in oldest_first]
    assert seen_new == [i for i in made[::-1] if i != made[1]]  # the later start: not here
    assert seen_old == [*made, late.id]
    assert store.count_runs() == 8 and store.count_runs(include_deleted=True) == 9

    for start, limit in ((-1, None), (0, -2), ("2", None), (0, 2.5), (True, None)):
        with pytest.raises(forebear.InvalidInput, match="counts runs from 0"):
            list(store.iter_runs(start=start, limit=limit))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [2**64, -1])
def test_a_reference_whose_storage_reports_an_impossible_size_is_refused(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # a storage that answers wrongly (or lies) about a referenced file's size: refused
    # when the reference is added, not stored as some other number
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.pipe("/refs/table.parquet", b"rows")
    real = MemoryFileSystem.info

    def lying(self: MemoryFileSystem, path: str, **kwargs: object) -> dict[str, object]:
        return {**real(self, path, **kwargs), "size": size}

    monkeypatch.setattr(MemoryFileSystem, "info", lying)
    artifact = forebear.Artifact("refs")
    with pytest.raises(forebear.StoreError, match=r"reports a size of .* which no file has"):
        artifact.add_reference("memory://refs/table.parquet", checksum=False)
    assert len(artifact) == 0


def test_references_adding_up_past_what_a_catalog_holds_are_refused_and_nothing_logged(
    store: forebear.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.pipe({"/halves/a.bin": b"a", "/halves/b.bin": b"b"})
    real = MemoryFileSystem.info

    def lying(self: MemoryFileSystem, path: str, **kwargs: object) -> dict[str, object]:
        return {**real(self, path, **kwargs), "size": 2**62}

    monkeypatch.setattr(MemoryFileSystem, "info", lying)
    artifact = forebear.Artifact("halves")
    artifact.add_reference("memory://halves/a.bin", checksum=False)
    artifact.add_reference("memory://halves/b.bin", checksum=False)
    with (
        forebear.init(project="p", store=store) as run,
        pytest.raises(forebear.InvalidInput, match=r"add up to 9223372036854775808 bytes"),
    ):
        run.log_artifact(artifact)
    assert store.artifacts() == []
