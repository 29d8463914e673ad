"""The names W&B users arrive with: part of a version, one file, a checkout, a local folder
verified, logged_by/used_by, logged_artifacts/used_artifacts, use_artifact(type=), wait();
on SQLite + a folder and on PostgreSQL + S3."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import pickle
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

import forebear
from forebear.hashing import hash_bytes

from .conftest import run_cli

TreeMaker = Callable[..., Path]
FILES = {"images/a.png": "a", "images/b.png": "b", "images/more/c.png": "c", "train.csv": "t"}


@pytest.fixture
def version(store: forebear.Store, make_tree: TreeMaker) -> forebear.ArtifactVersion:
    with forebear.init(project="p", name="prepare", store=store) as run:
        return run.log_artifact(make_tree("data", FILES), name="ds", type="dataset")


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in root.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def test_part_of_a_version_and_one_file(version: forebear.ArtifactVersion, tmp_path: Path) -> None:
    part = version.download(tmp_path / "part", path_prefix="images/")
    assert tree(part) == {k: v for k, v in FILES.items() if k.startswith("images/")}
    written = version.get_entry("train.csv").download(tmp_path / "one")
    assert written == (tmp_path / "one" / "train.csv").resolve()
    assert tree(tmp_path / "one") == {"train.csv": "t"}
    entry = version.get_entry("images/more/c.png")
    assert (entry.path, entry.size) == ("images/more/c.png", 1)
    assert entry.open().read() == b"c"
    with pytest.raises(forebear.NotFound, match="starts with 'nope/'"):
        version.download(tmp_path / "none", path_prefix="nope/")
    assert not (tmp_path / "none").exists()
    with pytest.raises(forebear.NotFound):
        version.get_entry("missing.csv")


def test_checkout_makes_the_folder_exactly_the_version(
    version: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    root = tmp_path / "checkout"
    (root / "junk" / "deep").mkdir(parents=True)
    (root / "junk" / "deep" / "x").write_text("x")
    (root / "train.csv").write_text("edited locally")
    (root / "images").mkdir()
    (root / "images" / "stale.png").write_text("s")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    os.symlink(outside, root / "link-out")
    os.symlink(tmp_path, root / "images" / "link-dir")
    assert version.checkout(root) == root.resolve()
    assert tree(root) == FILES
    assert outside.read_text() == "keep me" and (tmp_path / "outside.txt").exists()
    version.verify(root)  # nothing to report
    assert tree(Path(version.checkout(tmp_path / "fresh"))) == FILES  # made when missing


def test_checkout_never_removes_the_store(
    store: forebear.Store, version: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    for inside in (store.cache_dir, store.cache_dir.parent):
        with pytest.raises(forebear.InvalidPath, match="store's own"):
            version.checkout(inside)
    assert store.verify() == []


def test_verify_a_local_folder_names_every_difference(
    version: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    root = version.download(tmp_path / "copy")
    (root / "train.csv").write_text("T")  # same size, other bytes
    (root / "images" / "a.png").write_text("longer")
    (root / "images" / "b.png").unlink()
    (root / "notes.txt").write_text("n")
    with pytest.raises(forebear.IntegrityError) as raised:
        version.verify(root)
    found = {(p.path, p.message) for p in raised.value.problems}
    assert found == {
        ("train.csv", "the local file differs from the version"),
        ("images/a.png", "6 bytes in the folder, 1 in the version"),
        ("images/b.png", "missing from the folder"),
        ("notes.txt", "in the folder but not in the version"),
    }
    with pytest.raises(forebear.InvalidPath, match="not a folder"):
        version.verify(tmp_path / "nowhere")


def test_who_logged_and_used_what(store: forebear.Store, version: forebear.ArtifactVersion) -> None:
    assert version.wait() is version
    logged_by = version.logged_by()
    assert logged_by is not None and logged_by.name == "prepare"
    assert logged_by.logged_artifacts() == [version] and logged_by.used_artifacts() == []
    with forebear.init(project="p", name="train", store=store) as run:
        with pytest.raises(forebear.InvalidInput, match="has type 'dataset', not 'model'"):
            run.use_artifact("ds", type="model")
        assert run.used_artifacts() == []  # the refusal recorded nothing
        assert run.use_artifact("ds:v0", type="dataset") == version
        assert forebear.use_artifact("ds", type="dataset") == version
        with pytest.raises(forebear.InvalidName):
            run.use_artifact("ds", aliases=["fine", "v7"])  # W&B's aliases, checked first
        assert run.use_artifact("ds", aliases=["in-use"], use_as="training") == version
    assert [r.name for r in version.used_by()] == ["train"]
    assert run.used_artifacts() == [version]
    assert store.artifact("ds:in-use") == version and "fine" not in store.artifact("ds").aliases


def test_get_with_a_prefix_or_as_a_checkout(make_tree: TreeMaker, tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = make_tree("data", FILES)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("--objects", str(store), *args)

    assert cli("log", str(data), "--name", "ds").returncode == 0
    assert cli("get", "ds", str(tmp_path / "part"), "--prefix", "images/more/").returncode == 0
    assert tree(tmp_path / "part") == {"images/more/c.png": "c"}
    target = tmp_path / "target"
    target.mkdir()
    (target / "stale.txt").write_text("s")
    assert cli("get", "ds", str(target), "--checkout").returncode == 0
    assert tree(target) == FILES
    refused = cli("get", "ds", "--checkout")
    assert refused.returncode == 1 and "--checkout needs DEST" in refused.stderr
    missing = cli("get", "ds", str(tmp_path / "x"), "--prefix", "nope/")
    assert missing.returncode == 1 and "starts with 'nope/'" in missing.stderr


def test_step_metrics_keep_a_history(store: forebear.Store) -> None:
    with forebear.init(project="p", name="fit", store=store) as run:
        for epoch in range(4):
            run.log({"loss": 1 / (epoch + 1), "acc": epoch / 4, "phase": "train"}, step=epoch)
        run.log({"loss": 0.2}, step=3)  # the same step again: replaced
        run.log({"phase": "done"})  # no step, no number: the current step (3), summary only
        for bad in ("3", -1, 1.5, True):
            with pytest.raises(forebear.InvalidInput, match="step must be a whole number"):
                run.log({"loss": 0.1}, step=bad)  # type: ignore[arg-type]
    history = store.run(run.id).history()
    assert [row["step"] for row in history] == [0, 1, 2, 3]
    assert history[3] == {"step": 3, "loss": 0.2, "acc": 0.75}
    assert store.run(run.id).summary == {"loss": 0.2, "acc": 0.75, "phase": "done"}
    if store.objects.is_local:  # the command line reaches the folder store by its path
        done = run_cli("--objects", store.objects_url, "run", run.id, "--history", "--json")
        assert json.loads(done.stdout)[0] == {"step": 0, "loss": 1.0, "acc": 0.0}


def test_a_whole_number_logged_is_read_back_whole(store: forebear.Store) -> None:
    """An epoch logged as 3 comes back as 3, not 3.0 (``range(row["epoch"])`` works), as
    W&B's ``scan_history`` gives it; a float stays a float, even one with no fraction."""
    with forebear.init(project="p", store=store) as run:
        for epoch in range(2):
            run.log({"epoch": epoch, "acc": 1.0, "seen": 2**62 + epoch, "huge": 2**70})
        with pytest.raises(forebear.InvalidInput, match="too large to chart"):
            run.log({"epoch": 10**400})  # beyond any float: refused, nothing kept
    history = store.run(run.id).history()
    assert history == [
        {"step": 0, "epoch": 0, "acc": 1.0, "seen": 2**62, "huge": float(2**70)},
        {"step": 1, "epoch": 1, "acc": 1.0, "seen": 2**62 + 1, "huge": float(2**70)},
    ]
    assert [type(row["epoch"]) for row in history] == [int, int]
    assert [type(row["acc"]) for row in history] == [float, float]
    assert [row["epoch"] for row in run.scan_history(keys=["epoch"])] == [0, 1]
    assert store.run(run.id).summary["epoch"] == 1


def test_the_run_page_charts_each_metric(local_store: forebear.Store) -> None:
    from starlette.testclient import TestClient

    from forebear.web.app import create_app

    with forebear.init(project="p", name="fit", store=local_store) as run:
        for step in range(50):
            run.log({"loss": 1 / (step + 1), "<b>odd</b>": step}, step=step)
    with TestClient(create_app(local_store), base_url="http://127.0.0.1") as client:
        page = client.get(f"/runs/{run.id}").text
        assert 'id="metric-loss"' in page and "<polyline" in page
        assert f'by <span id="user">{local_store.backend.actor}</span>' in page
        assert "<b>odd</b>" not in page and "&lt;b&gt;odd&lt;/b&gt;" in page
        assert client.get(f"/api/runs/{run.id}").json()["history"][49]["loss"] == 0.02


def test_new_file_remove_and_save_outside_a_run(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    artifact = forebear.Artifact("ds", type="dataset")
    artifact.add_dir(make_tree("data", FILES))
    with artifact.new_file("labels.json") as f:
        f.write('{"cat": 0}')
    with artifact.new_file("raw.bin", mode="wb") as f:
        f.write(b"\x00\x01")
    artifact.remove("train.csv")
    artifact.remove("images/more/")
    for bad in ("nope.txt", "images/none/"):
        with pytest.raises(forebear.NotFound):
            artifact.remove(bad)
    for escaping in ("../up.txt", "/abs.txt"):
        with pytest.raises(forebear.InvalidPath):
            artifact.new_file(escaping).__enter__()
    with forebear.init(project="p", name="prepare", store=store) as run:
        inside = forebear.Artifact("notes", type="text")
        with inside.new_file("a.txt") as f:
            f.write("a")
        assert inside.save().logged_by().id == run.id  # W&B: the active run logs it
    version = artifact.save(store=store)
    assert version.project == "default" and version.files() == [
        "images/a.png", "images/b.png", "labels.json", "raw.bin",
    ]  # fmt: skip
    assert version.open("labels.json").read() == b'{"cat": 0}'
    assert [r.status for r in store.runs()] == ["finished", "finished"]


def test_a_draft_stores_only_what_changed(store: forebear.Store, make_tree: TreeMaker) -> None:
    with forebear.init(project="p", name="v0", store=store) as run:
        v0 = run.log_artifact(make_tree("data", FILES), name="ds", type="dataset")
    draft = v0.new_draft()
    assert (draft.name, draft.type, len(draft)) == ("ds", "dataset", 4)
    draft.remove("train.csv")
    with draft.new_file("train.csv") as f:
        f.write("new rows")
    with forebear.init(project="p", name="v1", store=store) as run:
        v1 = run.log_artifact(draft)
    assert v1.version == "v1" and v0.diff(v1).modified == ["train.csv"]
    assert v1.new_bytes == len("new rows")  # nothing else was read or stored again
    assert v1.open("images/a.png").read() == b"a"
    assert store.verify() == []


def test_a_draft_whose_bytes_are_gone_is_refused(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    with forebear.init(project="p", name="v0", store=store) as run:
        v0 = run.log_artifact(make_tree("data", FILES), name="ds")
    draft = v0.new_draft()
    v0.delete()
    store.gc(grace=dt.timedelta(0))
    with (
        forebear.init(project="p", name="late", store=store) as run,
        pytest.raises(forebear.InvalidInput, match="no longer in the store"),
    ):
        run.log_artifact(draft)
    assert store.versions("ds") == []


def test_a_logged_artifact_answers_as_its_version_and_a_run_keeps_what_it_is(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    """W&B's guides log an artifact, then read ``artifact.version`` or call
    ``artifact.wait()`` on the object they built; ``init`` takes their ``job_type``,
    ``group``, ``notes`` and ``tags``."""
    described = {
        "job_type": "upload", "group": "exp-1", "notes": "first cut", "tags": ["raw"],
        "entity": "my-team",
    }  # fmt: skip
    assert forebear.run is None  # W&B's wandb.run before init
    with forebear.init(project="p", name="prepare", store=store, **described) as run:
        assert forebear.run is run
        artifact = forebear.Artifact("ds", type="dataset")
        with pytest.raises(forebear.RunStateError, match="'ds' is not logged yet"):
            artifact.wait()
        with pytest.raises(AttributeError, match="no 'version' until it is logged"):
            _ = artifact.version
        artifact.add_dir(make_tree("data", FILES))
        returned = run.log_artifact(artifact, aliases=["first"])
        assert artifact.wait().qualified_ref == returned.qualified_ref == "p/ds:v0"
        assert (artifact.version, artifact.digest, artifact.aliases) == (
            "v0",
            returned.digest,
            returned.aliases,
        )
        assert artifact.files() == sorted(FILES)
        with pytest.raises(AttributeError, match="no_such_thing"):
            _ = artifact.no_such_thing
        run.log({"loss": 1.0}, step=0, commit=False)
        forebear.log({"loss": 0.5}, step=1, commit=True)
    artifact.metadata["rows"] = 4  # W&B: edit the logged artifact, then save() it
    artifact.description = "four images"
    artifact.aliases.append("checked")
    artifact.ttl = dt.timedelta(days=30)
    assert artifact.save(aliases=["best"]) is returned
    saved = store.artifact("p/ds:v0")
    assert (saved.metadata, saved.description) == ({"rows": 4}, "four images")
    assert sorted(saved.aliases) == ["best", "checked", "first", "latest"]
    assert saved.ttl == dt.timedelta(days=30)
    assert forebear.run is None
    with forebear.init(project="p", name="train", store=store) as reader:
        assert reader.use_artifact(artifact).qualified_ref == "p/ds:v0"  # the logged one
        with pytest.raises(forebear.InvalidInput, match="'fresh' is not logged yet"):
            reader.use_artifact(forebear.Artifact("fresh"))
    assert [v.qualified_ref for v in reader.inputs] == ["p/ds:v0"]
    context = store.run(run.id).context
    assert {word: context[word] for word in described} == described
    assert [row["loss"] for row in store.run(run.id).history()] == [1.0, 0.5]
    bad_words: list[dict[str, object]] = [
        {"job_type": 3}, {"tags": "raw"}, {"tags": [""]}, {"group": "g" * 300}, {"notes": ["n"]},
    ]  # fmt: skip
    for bad in bad_words:
        with pytest.raises(forebear.InvalidInput, match="must be"):
            forebear.init(project="p", store=store, **bad)  # type: ignore[arg-type]
    assert [r.name for r in store.runs("p")] == ["prepare", "train"]  # none for those


def test_the_api_object_reads_outside_a_run(
    store: forebear.Store, version: forebear.ArtifactVersion
) -> None:
    api = forebear.Api(store)
    assert api.artifact("p/ds:v0", type="dataset").digest == version.digest
    with pytest.raises(forebear.InvalidInput, match="has type 'dataset', not 'model'"):
        api.artifact("p/ds:latest", type="model")
    assert api.artifact("my-team/p/ds:v0") == version  # W&B's entity/project/name
    with pytest.raises(forebear.InvalidRef, match="a ref is 'project/name:version'"):
        api.artifact("a/my-team/p/ds:v0")
    assert api.artifact_exists("p/ds:latest")
    assert not api.artifact_exists("p/nope:v0")
    assert not api.artifact_exists("p/ds:v0", type="model")
    assert [v.version for v in api.artifacts("dataset", "p/ds")] == ["v0"]
    assert api.artifact_versions("model", "p/ds") == []
    producer = version.logged_by()
    assert producer is not None
    assert api.run(f"p/{producer.id}").name == api.run(producer.id).name == "prepare"
    assert [r.name for r in api.runs("p")] == ["prepare"]


def test_the_api_lists_projects_as_w_and_b_does(
    store: forebear.Store, version: forebear.ArtifactVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B's export loop: every project, then its runs (an entity is only carried)."""
    with forebear.init(project="runs-only", name="lonely", store=store):
        pass
    api = forebear.Api(store)
    assert store.projects() == ["p", "runs-only"]
    assert [(p.name, p.entity, p.path) for p in api.projects("my-team")] == [
        ("p", "my-team", ["my-team", "p"]), ("runs-only", "my-team", ["my-team", "runs-only"]),
    ]  # fmt: skip
    exported = {
        project.name: [run.name for run in api.runs(f"{project.entity}/{project.name}")]
        for project in api.projects()
    }
    assert exported == {"p": ["prepare"], "runs-only": ["lonely"]}
    project = api.project("my-team/p")
    assert (project.name, project.path, [t.name for t in project.artifacts_types()]) == (
        "p", ["p"], ["dataset"],
    )  # fmt: skip
    assert [r.name for r in api.project("runs-only").runs()] == ["lonely"]
    with pytest.raises(forebear.NotFound, match=r"no project named 'nope' \(api.projects"):
        api.project("nope")

    # W&B's overrides (also given first): names without a project are in that project
    scoped = forebear.Api(store, {"project": "p", "entity": "my-team"}, timeout=19, api_key="k")
    assert (scoped.default_project, scoped.default_entity) == ("p", "my-team")
    assert scoped.artifact("ds:v0") == version and scoped.artifact_exists("ds:latest")
    assert [v.version for v in scoped.artifacts("dataset", "ds")] == ["v0"]
    assert scoped.artifact_collection("dataset", "ds").name == "ds"
    assert [r.name for r in scoped.runs()] == ["prepare"]  # not "lonely", of runs-only
    elsewhere = forebear.Api(store, {"project": "runs-only"})
    assert not elsewhere.artifact_exists("ds:latest") and elsewhere.artifact_exists("p/ds:v0")

    # a version's page, as a run's (see test_w_and_b_run_attributes_scripts_read)
    server = getattr(store, "server", None)
    assert version.entity is None
    if server is None:
        assert version.url is None
        monkeypatch.setenv("FOREBEAR_DB", store.db_url)  # the store found from here
        monkeypatch.setenv("FOREBEAR_OBJECTS", store.objects_url)
        assert forebear.Api({"project": "p"}).artifact("ds:v0") == version  # W&B's order
    else:
        assert version.url == f"{server.url}/artifacts/p/ds/v0"
        auth = {"authorization": f"Bearer {server.admin_token}"}
        assert version.digest in httpx.get(version.url, headers=auth).text


def test_the_one_file_of_a_version(
    store: forebear.Store, version: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    (tmp_path / "model.pkl").write_bytes(b"weights")
    with forebear.init(project="p", name="train", store=store) as run:
        model = run.log_artifact(tmp_path / "model.pkl", name="model", type="model")
    assert model.file(tmp_path / "out") == (tmp_path / "out" / "model.pkl").resolve()
    assert (tmp_path / "out" / "model.pkl").read_bytes() == b"weights"
    assert model.file().read_bytes() == b"weights"  # into the version's cache folder
    with pytest.raises(forebear.InvalidInput, match="holds 4 files, and file"):
        version.file(tmp_path / "many")
    assert not (tmp_path / "many").exists()
    assert version.get_path("train.csv").path == version.get_entry("train.csv").path


def test_a_live_runs_config_and_summary_are_saved_as_they_change(store: forebear.Store) -> None:
    """W&B scripts change ``run.config`` and ``run.summary`` in place (and read the config
    as attributes); each change is in the catalog at once, a bad one nowhere."""
    assert forebear.config == {}  # W&B's wandb.config, before init
    with forebear.init(project="p", name="fit", store=store, config={"lr": 0.1}) as run:
        assert forebear.config is run.config
        forebear.config.update({"epochs": 3})
        run.config["batch"] = 32
        run.config.dropout = 0.5
        assert (run.config.lr, run.config["dropout"]) == (0.1, 0.5)
        with pytest.raises(AttributeError, match="config has no 'missing'"):
            _ = run.config.missing
        with pytest.raises(forebear.InvalidInput):
            run.config["bad"] = float("nan")
        assert "bad" not in run.config
        run.summary["best"] = 0.9
        run.summary.update(final=0.8)
        run.log({"loss": 0.5}, step=0)
        del run.summary["final"]
        copied = copy.deepcopy(run.config)
        copied["local"] = 1  # a copy is the script's own
        assert pickle.loads(pickle.dumps(run.config)) == dict(run.config)
        saved = store.run(run.id)
        assert saved.config == {"lr": 0.1, "epochs": 3, "batch": 32, "dropout": 0.5}
        assert saved.summary == {"best": 0.9, "loss": 0.5}
    read = store.run(run.id)
    read.config["local"] = 1  # a run read back is a copy to use as it likes
    assert store.run(run.id).config == {"lr": 0.1, "epochs": 3, "batch": 32, "dropout": 0.5}
    assert store.run(run.id).summary == {"best": 0.9, "loss": 0.5}


def test_a_config_comes_as_w_and_b_takes_it(store: forebear.Store) -> None:
    """Training scripts pass their argparse arguments (``wandb.init(config=args)``) and
    update with ``allow_val_change``; a value that is no config gets one clear error."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args([])
    with forebear.init(project="p", store=store, config=args) as run:
        assert dict(run.config) == {"lr": 0.1, "epochs": 3}
        run.config.update(parser.parse_args(["--lr", "0.2"]))
        run.config.update({"lr": 0.3}, allow_val_change=True)
        with pytest.raises(forebear.InvalidInput, match="takes a dict or a Namespace, not list"):
            run.config.update(["lr"])
    assert store.run(run.id).config == {"lr": 0.3, "epochs": 3}
    with pytest.raises(forebear.InvalidInput, match="config must be a dict, not list"):
        forebear.init(project="p", store=store, config=[1, 2])  # type: ignore[arg-type]


W_AND_B_DEFAULTS = """\
wandb_version: 1
epochs:
  desc: how many passes over the data
  value: 100
lr:
  value: 0.1
unit: {value: 3, scale: s}
"""


def test_a_config_comes_from_w_and_b_yaml_files(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``config-defaults.yaml`` in the folder a script starts in gives defaults (W&B's form,
    ``{value: ..., desc: ...}``, or plain values); ``config="cfg.yaml"`` and
    ``config.update("cfg.yaml")`` read a file; a file that is no config gets one clear
    error and makes no run. forebear's own runs (``forebear log``) read no defaults."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config-defaults.yaml").write_text(W_AND_B_DEFAULTS)
    (tmp_path / "fast.yaml").write_text("lr: 0.5\nlayers: [64, 32]\n")
    with forebear.init(project="p", store=store, config={"lr": 0.2}) as run:
        assert dict(run.config) == {"epochs": 100, "lr": 0.2, "unit": {"value": 3, "scale": "s"}}
        run.config.update("fast.yaml")
    assert store.run(run.id).config["layers"] == [64, 32]
    with forebear.init(project="p", store=store, config="fast.yaml") as run:
        assert (run.config["lr"], run.config["epochs"]) == (0.5, 100)
    with forebear.init(project="p", store=store, config_defaults=False) as run:
        assert run.config == {}
    before = len(store.runs("p"))
    (tmp_path / "list.yaml").write_text("[1, 2]\n")
    (tmp_path / "broken.yaml").write_text("lr: [\n")
    (tmp_path / "future.yaml").write_text("wandb_version: 2\n")
    laughs = ["a0: &a0 [lol]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)
    ]
    (tmp_path / "laughs.yaml").write_text("\n".join(laughs))  # 10**8 values, in 9 lines
    for bad, message in (
        ("missing.yaml", "cannot read the config file 'missing.yaml'"),
        ("list.yaml", "must map names to values"),
        ("broken.yaml", "is not valid YAML"),
        ("future.yaml", "wandb_version 2"),
        ("laughs.yaml", "more than 100,000 values once its aliases are expanded"),
    ):
        with pytest.raises(forebear.InvalidInput, match=message):
            forebear.init(project="p", store=store, config=bad)
    assert len(store.runs("p")) == before
    if store.objects.is_local:  # the command line reaches the folder store by its path
        (tmp_path / "data.txt").write_text("d")
        done = run_cli("--objects", store.objects_url, "log", "data.txt", "-p", "p", "--json")
        assert done.returncode == 0, done.stderr
        assert store.runs("p")[-1].config == {}


def test_the_w_and_b_options_of_adding_files(
    store: forebear.Store, make_tree: TreeMaker, tmp_path: Path
) -> None:
    data = make_tree("data", FILES)
    artifact = forebear.Artifact("ds", type="dataset")
    assert len(artifact.add_dir(data, policy="immutable", skip_cache=True)) == 4
    (tmp_path / "new.csv").write_text("new")
    with pytest.raises(forebear.InvalidPath, match="already in artifact"):
        artifact.add_file(tmp_path / "new.csv", name="train.csv")
    artifact.add_file(tmp_path / "new.csv", name="train.csv", overwrite=True, policy="mutable")
    newer = make_tree("newer", {"images/a.png": "A", "extra.txt": "e"})
    with pytest.raises(forebear.InvalidPath, match="already in artifact"):
        artifact.add_dir(newer)
    assert artifact.add_dir(newer, merge=True) == ["extra.txt", "images/a.png"]
    bad_options: list[dict[str, object]] = [{"policy": "copy"}, {"skip_cache": "yes"}]
    for bad in bad_options:
        with pytest.raises(forebear.InvalidInput, match=r"policy must|skip_cache must"):
            artifact.add_file(tmp_path / "new.csv", name="x.csv", **bad)  # type: ignore[arg-type]
    with pytest.raises(forebear.InvalidInput, match="holds 4 objects, more than max_objects=2"):
        artifact.add_reference(data.as_uri(), name="ref", max_objects=2)
    assert len(artifact.add_reference(data.as_uri(), name="ref", max_objects=4)) == 4
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(artifact)
    assert version.open("train.csv").read() == b"new"
    assert version.open("images/a.png").read() == b"A"
    assert [p for p in version.files() if not p.startswith("ref/")] == sorted([*FILES, "extra.txt"])
    assert len([p for p in version.files() if p.startswith("ref/")]) == 4


def test_a_change_after_logging_warns_that_it_reaches_only_a_next_version(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    """W&B refuses to change a logged artifact; here the change is kept for the next log
    of the same artifact, and a warning says so, rather than the file seeming added."""
    folder = make_tree("data", {"a.txt": "a", "b.txt": "b"})
    artifact = forebear.Artifact("ds", type="dataset")
    artifact.add_file(folder / "a.txt")
    with forebear.init(project="p", store=store) as run:
        first = run.log_artifact(artifact)
        with pytest.warns(forebear.ForebearWarning, match=r"logged already \(as ds:v0\)"):
            artifact.add_file(folder / "b.txt")
        artifact.remove("a.txt")  # warned once for this version: no second warning
        assert first.files() == ["a.txt"]  # the logged version is as it was
        second = run.log_artifact(artifact)
    assert (second.version, second.files()) == ("v1", ["b.txt"])
    with pytest.warns(forebear.ForebearWarning, match=r"as ds:v1"):
        artifact.remove("b.txt")


def test_a_ttl_set_on_the_artifact_is_kept(store: forebear.Store, make_tree: TreeMaker) -> None:
    """W&B's guide sets ``artifact.ttl`` before logging; a TTL given to `log_artifact`
    stays when the logged artifact's other edits are saved."""
    week, month = dt.timedelta(days=7), dt.timedelta(days=30)
    artifact = forebear.Artifact("ds", type="dataset")
    artifact.add_dir(make_tree("data", FILES))
    artifact.ttl = week
    other = forebear.Artifact("other")
    other.add_dir(make_tree("more", {"x.txt": "x"}))
    wrong = forebear.Artifact("wrong")
    wrong.add_dir(make_tree("wrong", {"y.txt": "y"}))
    wrong.ttl = 5  # type: ignore[assignment]
    with forebear.init(project="p", name="prepare", store=store) as run:
        run.log_artifact(artifact)
        run.log_artifact(other, ttl=month)
        with pytest.raises(forebear.InvalidInput, match="ttl must be a positive"):
            run.log_artifact(wrong)
    assert store.artifact("p/ds:v0").ttl == week
    artifact.metadata["rows"] = 4
    other.metadata["rows"] = 1
    artifact.save()
    other.save()
    assert (store.artifact("p/ds:v0").ttl, store.artifact("p/other:v0").ttl) == (week, month)
    assert store.artifact("p/other:v0").metadata == {"rows": 1}
    with pytest.raises(forebear.ArtifactNotFound):
        store.artifact("p/wrong")


def test_a_logged_artifact_links_into_the_registry_by_w_and_b_paths(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    with forebear.init(project="p", name="train", store=store) as run:
        model = forebear.Artifact("model", type="model")
        model.add_dir(make_tree("weights", {"w.bin": "w"}))
        with pytest.raises(forebear.InvalidInput, match="'model' is not logged yet"):
            run.link_artifact(model, "wandb-registry-model/churn")
        run.log_artifact(model)
        linked = run.link_artifact(
            model, target_path="wandb-registry-model/churn", aliases=["staging"]
        )
        again = model.link("my-org/wandb-registry-model/churn")  # the version's link()
        legacy = run.link_artifact(model, "model-registry/churn")
    refs = {linked.qualified_ref, again.qualified_ref, legacy.qualified_ref}
    assert refs == {"registry/churn:v0"}
    api = forebear.Api(store)  # and read back by the W&B path
    assert api.artifact("wandb-registry-model/churn:staging").qualified_ref == "registry/churn:v0"
    assert api.artifact("my-org/wandb-registry-model/churn:v0").source.qualified_ref == "p/model:v0"
    link = api.artifact("my-org/wandb-registry-model/churn:v0")  # W&B's source_* name
    assert (link.source_name, link.source_project) == ("model:v0", "p")  # what it links
    assert link.source_qualified_name == "p/model:v0" and link.source_version == "v0"
    assert link.source_artifact == link.source and link.source_entity is None
    assert (link.collection.project, link.collection.name) == ("registry", "churn")
    assert link.source_collection.versions() == [link.source]
    assert link.source.source_artifact == link.source  # a logged version: itself
    for legacy_ref in ("model-registry/churn:staging", "my-team/model-registry/churn:latest"):
        assert api.artifact(legacy_ref).qualified_ref == "registry/churn:v0"  # the older path
    with pytest.raises(forebear.InvalidInput, match="names the registry"):
        forebear.init(project="model-registry", store=store)  # its refs would lead there
    assert "staging" in store.artifact("registry/churn:v0").aliases
    with pytest.raises(forebear.InvalidInput, match="links go into the registry"):
        model.link("a/b/wandb-registry-model/churn")


def test_w_and_b_names_of_a_version_its_files_and_its_manifest(
    store: forebear.Store, version: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    assert version.qualified_name == version.source_qualified_name == "p/ds:v0"
    assert (version.source_name, version.source_version, version.source_project) == (
        "ds:v0", "v0", "p",
    )  # fmt: skip
    assert version.state == "COMMITTED" and version.updated_at == version.created_at
    version.description = "edited"
    version.save()
    edited = store.artifact("p/ds:v0").updated_at
    assert edited > version.created_at and version.updated_at == edited
    files = version.files()
    assert files == sorted(FILES) and all(isinstance(f, str) for f in files)
    assert json.loads(json.dumps(files)) == sorted(FILES)  # still plain strings
    csv = files[-1]
    assert (csv.name, csv.size) == ("train.csv", 1)  # type: ignore[attr-defined]
    assert csv.digest == version.entry("train.csv").digest  # type: ignore[attr-defined]
    assert csv.download(tmp_path / "one") == (tmp_path / "one" / "train.csv").resolve()  # type: ignore[attr-defined]
    entry = version.get_entry("train.csv")  # W&B's arguments, taken as W&B code passes them
    written = entry.download(root=tmp_path / "two", skip_cache=True, executor=None, multipart=None)
    assert written == (tmp_path / "two" / "train.csv").resolve() and written.read_text() == "t"
    assert tree(tmp_path / "one") == {"train.csv": "t"}
    entries = version.manifest.entries
    assert entries["images/a.png"].size == 1 and entries[0].path == "images/a.png"
    assert "train.csv" in entries and "nope.csv" not in entries
    assert entries.get("nope.csv") is None  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        entries["nope.csv"]  # type: ignore[call-overload]
    assert entries.keys() == sorted(FILES)  # type: ignore[attr-defined]
    assert [p for p, e in entries.items() if e.ref is None] == sorted(FILES)  # type: ignore[attr-defined]
    assert len(entries.values()) == 4  # type: ignore[attr-defined]
    pending = forebear.Artifact("later", type="dataset")
    assert pending.state == "PENDING"
    with pytest.raises(AttributeError, match="until it is logged"):
        pending.qualified_name  # noqa: B018
    version.delete()
    assert version.state == "DELETED"


def test_the_api_lists_collections_and_types(
    store: forebear.Store, version: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    (tmp_path / "m.pkl").write_bytes(b"w")
    with forebear.init(project="p", name="train", store=store) as run:
        run.log_artifact(tmp_path / "m.pkl", name="model", type="model", aliases=["best"])
        run.log_artifact(make_model(tmp_path, b"w2"), name="model", type="model")
    api = forebear.Api(store)
    models = api.artifact_collection("model", "p/model")
    assert (models.name, models.project, models.type) == ("model", "p", "model")
    assert (
        [v.version for v in models.versions()]
        == ["v0", "v1"]
        == [v.version for v in models.artifacts()]
    )
    assert models.aliases == ["best", "latest"] and models.is_sequence()
    with pytest.raises(forebear.InvalidInput, match="has type 'model', not 'dataset'"):
        api.artifact_collection("dataset", "p/model")
    with pytest.raises(forebear.NotFound):
        api.artifact_collection("model", "p/nothing")
    assert api.artifact_collection_exists("p/ds", "dataset")
    assert not api.artifact_collection_exists("p/ds", "model")
    assert [c.name for c in api.artifact_collections("p", "dataset")] == ["ds"]
    assert [t.name for t in api.artifact_types("p")] == ["dataset", "model"]
    assert [c.name for c in api.artifact_type("model", "p").collections()] == ["model"]
    assert api.artifact_type("dataset").collection("p/ds").versions()[0] == version
    with pytest.raises(forebear.NotFound, match="no artifact has type 'code'"):
        api.artifact_type("code")


def make_model(folder: Path, data: bytes) -> Path:
    path = folder / "next" / "m.pkl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_logging_without_a_step_counts_steps_as_w_and_b_does(store: forebear.Store) -> None:
    with forebear.init(project="p", name="fit", store=store) as run:
        assert run.step == 0
        forebear.define_metric("loss", summary="min")
        run.define_metric("val/*", summary="max,mean")
        run.define_metric("lr", summary="none")
        run.define_metric("acc", summary="best", goal="maximize")
        forebear.watch(object(), log="all")  # accepted; nothing is recorded
        for loss in (0.5, 0.2, 0.4):
            forebear.log({"loss": loss, "lr": 0.1})  # steps 0, 1, 2
        run.log({"val/acc": 0.5}, commit=False)  # more values for step 3...
        run.log({"val/acc": 0.7, "acc": 0.6})  # ...which this one completes
        run.log({"acc": 0.9}, step=10)  # a step given: the current one, not moved past
        run.log({"epoch": 1})  # so this joins step 10, then the run moves on
        assert run.step == 11
        assert forebear.summary is run.summary
        with pytest.raises(forebear.InvalidInput, match="is not one of min, max"):
            run.define_metric("x", summary="minimum")
        with pytest.raises(forebear.InvalidInput, match="needs goal="):
            run.define_metric("x", summary="best")
    done = store.run(run.id)
    assert [(row["step"], row.get("loss")) for row in done.history()] == [
        (0, 0.5), (1, 0.2), (2, 0.4), (3, None), (10, None),
    ]  # fmt: skip
    assert done.history()[3] == {"step": 3, "val/acc": 0.7, "acc": 0.6}
    assert done.history()[4] == {"step": 10, "acc": 0.9, "epoch": 1}
    assert done.summary == {
        "loss": {"min": 0.2}, "val/acc": {"max": 0.7, "mean": 0.6}, "acc": {"best": 0.9},
        "epoch": 1,
    }  # fmt: skip
    assert [row["_step"] for row in done.scan_history(keys=["acc"])] == [3, 10]
    assert list(done.scan_history(keys=["loss"], min_step=1, max_step=2)) == [
        {"step": 1, "loss": 0.2, "_step": 1}
    ]
    assert (done.path, done.state) == (f"p/{run.id}", "finished")
    assert forebear.summary == {}  # no active run
    # W&B's history arguments: keys, samples, and a DataFrame with `_step`
    assert done.history(keys=["acc"]) == [{"step": 3, "acc": 0.6}, {"step": 10, "acc": 0.9}]
    assert [row["step"] for row in done.history(samples=3)] == [0, 2, 10]
    assert [row["step"] for row in done.history(samples=1)] == [10]
    with pytest.raises(forebear.InvalidInput, match="samples must be a whole number"):
        done.history(samples=0)
    frame = forebear.Api(store).run(f"p/{run.id}").history(pandas=True)
    assert list(frame["_step"]) == [0, 1, 2, 3, 10]
    assert list(frame["loss"].dropna()) == [0.5, 0.2, 0.4]
    assert frame["loss"].min() == 0.2
    assert list(done.history(keys="loss", pandas=True).columns) == ["_step", "loss"]


def test_a_runs_w_and_b_descriptions(store: forebear.Store) -> None:
    described = {"job_type": "train", "group": "g1", "notes": "first try", "entity": "team"}
    with forebear.init(project="p", store=store, tags=["a", "b"], **described) as run:
        assert (run.job_type, run.group, run.notes, run.entity) == tuple(described.values())
        assert run.tags == ["a", "b"]
    assert store.run(run.id).job_type == "train"
    assert forebear.login() is True  # a store on this machine needs no login


def test_a_run_is_changed_after_the_fact_as_w_and_b_changes_one(store: forebear.Store) -> None:
    """W&B's users rename, tag, annotate and re-configure runs once they ended
    (``run.update()``): the change reaches the catalog, is audited, and a run read back
    changes nothing until it is asked to."""
    with forebear.init(
        project="p", store=store, tags=["debug"], notes="n", config={"lr": 1}
    ) as run:
        run.tags = run.tags + ("rc",)  # noqa: RUF005 (W&B's way, for a run under way: saved at once)
        assert store.run(run.id).tags == ["debug", "rc"]
        run.name = "renamed"  # changed in place: saved as the run finishes
    assert store.run(run.id).name == "renamed"

    read = store.run(run.id)
    read.config["post_hoc"] = "b2"
    read.config["pair"] = (1, 2)  # kept as JSON holds it: a list
    read.name = "resnet-v2"
    read.tags.append("reviewed")
    read.notes = "Final baseline."
    unchanged = store.run(run.id)  # a run read back is a copy until update()
    assert (unchanged.name, unchanged.tags, unchanged.notes) == ("renamed", ["debug", "rc"], "n")
    assert unchanged.config == {"lr": 1}
    read.update()
    saved = store.run(run.id)
    assert (saved.name, saved.tags, saved.notes) == ("resnet-v2", ["debug", "rc", "reviewed"],
                                                     "Final baseline.")  # fmt: skip
    assert saved.config == read.config == {"lr": 1, "post_hoc": "b2", "pair": [1, 2]}
    saved.summary["test_acc"] = 0.9  # a summary is saved as it changes
    saved.summary.update()  # W&B's way of saying so: nothing more to save
    assert store.run(run.id).summary == {"test_acc": 0.9}
    edits = [e for e in store.audit() if e.action == "edit-run"]
    assert [e.target for e in edits] == [f"run {run.id}"] * 4
    assert edits[2].details == {
        "name": {"from": "renamed", "to": "resnet-v2"},
        "tags": {"added": ["reviewed"], "removed": []},
        "notes": {"from": "n", "to": "Final baseline."},
        "config": {"keys": ["pair", "post_hoc"]},
    }
    saved.update()  # nothing changed: nothing saved
    read.update()
    assert len([e for e in store.audit() if e.action == "edit-run"]) == 4

    first, second = store.run(run.id), store.run(run.id)  # two readers at once
    first.config["by_first"] = 1
    first.tags.append("first")
    first.update()
    second.notes = "from the second"
    second.update()  # saves its notes, and undoes nothing the first saved
    both = store.run(run.id)
    assert both.config["by_first"] == 1 and "first" in both.tags
    assert both.notes == "from the second"
    events = len([e for e in store.audit() if e.action == "edit-run"])

    bad = store.run(run.id)
    for change in (lambda: setattr(bad, "tags", "x"), lambda: setattr(bad, "notes", 5)):
        with pytest.raises(forebear.InvalidInput):
            change()
    bad.name = ""
    with pytest.raises(forebear.InvalidInput, match="at most 256 characters"):
        bad.update()
    assert store.run(run.id).name == "resnet-v2"
    assert len([e for e in store.audit() if e.action == "edit-run"]) == events
    store.delete_run(run.id)
    gone = store.run(run.id)
    gone.notes = "late"
    with pytest.raises(forebear.InvalidInput, match="deleted"):
        gone.update()


def test_w_and_b_run_attributes_scripts_read(store: forebear.Store) -> None:
    """``run.dir`` keeps what is written into it; ``url`` is the run's page on a server
    (None for a store reached directly, as W&B's offline run has none); the flags of a
    run that is not resumed, offline or in a sweep; ``delete()``."""
    with forebear.init(project="p", name="train", config={"lr": 0.1}, store=store) as run:
        assert run.config.as_dict() == {"lr": 0.1} and type(run.config.as_dict()) is dict
        folder = Path(run.dir)
        assert run.dir == str(folder) and folder.is_dir() and not any(folder.iterdir())
        (folder / "model.pt").write_bytes(b"weights")
        (folder / "plots").mkdir()
        (folder / "plots" / "loss.txt").write_text("0.5")
        assert (run.resumed, run.offline, run.disabled, run.sweep_id) == (False, False, False, None)
        assert (run.starting_step, run.lastHistoryStep, run.project_name()) == (0, -1, "p")
        run.log({"loss": 1.0})
        run.log({"loss": 0.5})
        assert run.lastHistoryStep == 1
        assert run.start_time == run.started_at.timestamp()
        run.display_name = "train-2"
        assert run.name == run.display_name == "train-2"
        assert store.run(run.id).name == "train"  # saved as the run finishes, or:
        assert run.save() is True and forebear.save() is True  # W&B's older call saves now
        assert store.run(run.id).name == "train-2"
        url = run.url
    read = forebear.Api(store).run(run.id)
    assert read.name == "train-2" and sorted(read.files()) == ["model.pt", "plots/loss.txt"]
    assert read.summary._json_dict == {"loss": 0.5}  # as W&B's guide to exporting reads it
    assert read.metadata == read.context and read.metadata["python"] and read.sweep is None
    assert read.system_metrics == {} and read.ended_at is not None
    assert read.heartbeat_at == read.ended_at.isoformat()
    assert read.file("model.pt").download(folder / "back").read_bytes() == b"weights"
    assert run.dir == str(folder)  # still there once the run finished
    server = getattr(store, "server", None)
    if server is None:
        assert url is None and run.get_url() is None and run.get_project_url() is None
    else:  # the page itself, as a token holder's browser gets it
        assert url == run.get_url() == f"{server.url}/runs/{run.id}"
        auth = {"authorization": f"Bearer {server.admin_token}"}
        assert "train-2" in httpx.get(url, headers=auth).text
        listed = httpx.get(run.get_project_url(), headers=auth).text
        assert f"/runs/{run.id}" in listed
    with forebear.init(project="p", name="empty-folder", store=store) as quiet:
        assert Path(quiet.dir).is_dir()  # nothing written: nothing kept, no warning
    assert forebear.Api(store).run(quiet.id).files() == []
    assert read.delete() == [] and [r.name for r in store.runs("p")] == ["empty-folder"]
    with pytest.raises(forebear.RunStateError, match="cannot give a folder for files"):
        _ = read.dir


def test_numbers_of_array_libraries_are_logged_as_numbers(store: forebear.Store) -> None:
    """NumPy's scalars (``np.float32(0.25)``, a 0-d array, what ``loss.mean()`` returns)
    are numbers in the history, the summary and a config, as W&B keeps them, not text."""
    import numpy as np

    class Odd:  # an object with an item() that refuses: kept as its text
        ndim = 0

        def item(self) -> float:
            raise RuntimeError("no")

        def __str__(self) -> str:
            return "odd"

    with forebear.init(project="p", store=store, config={"lr": np.float32(0.5)}) as run:
        run.log({"loss": np.float32(0.25), "seen": np.int64(3), "mean": np.array(1.5)})
        run.log({"loss": np.float32("nan"), "odd": Odd(), "arr": np.array([1, 2])})
        with pytest.raises(forebear.InvalidInput, match="finite"):
            run.config.update({"bad": np.float32("inf")})
    read = store.run(run.id)
    assert read.config == {"lr": 0.5}
    assert read.history() == [{"step": 0, "loss": 0.25, "seen": 3, "mean": 1.5}]
    assert {k: read.summary[k] for k in ("loss", "seen", "mean", "odd", "arr")} == {
        "loss": "NaN", "seen": 3, "mean": 1.5, "odd": "odd", "arr": "[1 2]",
    }  # fmt: skip


def test_w_and_b_keyword_names(store: forebear.Store, tmp_path: Path) -> None:
    """Scripts written for W&B name the arguments as W&B does."""
    (tmp_path / "loss.png").write_bytes(b"a plot")
    artifact = forebear.Artifact(
        name="plots", type="media", incremental=False, use_as=None, storage_region="eu"
    )
    named = artifact.add_file(local_path=tmp_path / "loss.png", name="a/loss.png", is_tmp=True)
    assert named == f"a/{hash_bytes(b'a plot')[:20]}.png"
    with pytest.raises(forebear.InvalidInput, match=r"new_draft\(\)"):
        forebear.Artifact("plots", type="media", incremental=True)
    with forebear.init(project="p", store=store) as run:
        logged = run.log_artifact(artifact_or_path=artifact, aliases=["first"])
        assert run.use_artifact(artifact_or_name="plots:first", type="media") == logged
        assert forebear.use_artifact(artifact_or_name="plots:latest") == logged
        forebear.log_artifact(artifact_or_path=tmp_path / "loss.png", name="raw-plot")
        run.finish(exit_code=3)  # W&B's: not 0, so failed
    assert store.run(run.id).status == "failed" and [v.name for v in run.outputs] == [
        "plots", "raw-plot",
    ]  # fmt: skip
    forebear.init(project="p", store=store)
    forebear.finish(exit_code=0, quiet=True)
    assert store.runs("p")[-1].status == "finished"


def test_a_run_keeps_its_own_files_and_code(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    (work / "src").mkdir()
    (work / ".venv").mkdir()
    monkeypatch.chdir(work)
    (work / "model.h5").write_bytes(b"weights-1")
    (work / "ckpt" / "a.ckpt").write_bytes(b"a")
    (work / "train.py").write_text("print('train')\n")
    (work / "src" / "util.py").write_text("X = 1\n")
    (work / "src" / "notes.txt").write_text("not code\n")
    (work / ".venv" / "site.py").write_text("hidden\n")
    with forebear.init(project="p", name="fit", store=store) as run:
        assert forebear.save("model.h5") == ["model.h5"]
        assert run.save(str(work / "ckpt" / "*.ckpt")) == ["a.ckpt"]  # absolute: by name
        assert run.save("ckpt/*.ckpt", base_path=work, policy="end") == []
        with pytest.warns(forebear.ForebearWarning, match="no file matches 'nothing-\\*'"):
            assert run.save("nothing-*") == []
        with pytest.raises(forebear.InvalidInput, match="policy must be one of"):
            run.save("model.h5", policy="sometimes")
        with pytest.raises(forebear.InvalidInput, match="is not under base_path"):
            run.save("../*.h5", base_path=work)  # nothing saved above the base path
        with pytest.raises(forebear.InvalidInput, match="is not under base_path"):
            run.save(str(work / "model.h5"), base_path=work / "ckpt", policy="end")
        (work / "model.h5").write_bytes(b"weights-2")  # "live": saved again at the end
        code = run.log_code()
        assert code is not None and code.type == "code"
        assert code.files() == ["src/util.py", "train.py"]
        notes = run.log_code(work / "src", "notes", include_fn=lambda path: path.endswith(".txt"))
        assert notes is not None and notes.files() == ["notes.txt"]
        assert (
            run.log_code(work / "src", include_fn=lambda path, root: path.endswith(".md")) is None
        )
    done = store.run(run.id)
    assert done.files() == ["a.ckpt", "ckpt/a.ckpt", "model.h5"]
    kept = done.file("model.h5")
    assert kept.size == 9  # type: ignore[attr-defined]
    assert kept.download(tmp_path / "out").read_bytes() == b"weights-2"  # type: ignore[attr-defined]
    with pytest.raises(forebear.NotFound, match=r"kept no file 'nope\.h5'"):
        done.file("nope.h5")
    with forebear.init(project="p", store=store):  # W&B's restore, into a folder
        with forebear.restore("model.h5", run_path=f"team/p/{run.id}", root=tmp_path / "r") as f:
            assert f.read() == b"weights-2"
        (tmp_path / "r" / "model.h5").write_bytes(b"mine")
        with forebear.restore("model.h5", run_path=run.id, root=tmp_path / "r") as f:
            assert f.read() == b"mine"  # already there: kept
        with forebear.restore("model.h5", run_path=run.id, replace=True, root=tmp_path / "r") as f:
            assert f.read() == b"weights-2"
        assert forebear.restore("nope.h5", run_path=run.id) is None
    saved = store.versions(f"p/run-{run.id}-files")
    assert [v.version for v in saved] == ["v0", "v1", "v2"]  # two saves, then the end
    assert done.outputs[-1] == saved[-1]
    assert store.run(run.id).status == "finished"


def test_w_and_b_names_without_a_counterpart_say_what_to_do() -> None:
    for name, says in (("Object3D", "run.save(path)"), ("Molecule", "Artifact"),
                       ("sweep", "one run per trial"), ("agent", "one run per trial"),
                       ("sklearn", "forebear.plot (confusion_matrix")):  # fmt: skip
        with pytest.raises(AttributeError, match=f"no attribute '{name}' .*{re.escape(says)}"):
            getattr(forebear, name)
    assert not hasattr(forebear, "Object3D")  # feature checks (hasattr) still answer no
    with pytest.raises(AttributeError, match=r"no attribute 'nothing'$"):
        forebear.nothing  # type: ignore[attr-defined]  # noqa: B018


def test_the_w_and_b_options_of_init(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = forebear.init(project="p", store=store, id="abc123", resume="allow", mode="offline")
    assert first.id == "abc123" and store.run("abc123").status == "running"
    assert forebear.init(project="p", store=store, reinit="return_previous") is first
    second = forebear.init(
        project="p", store=store, reinit=True, dir=tmp_path, anonymous="allow",
        settings=forebear.Settings(start_method="thread", _disable_stats=True),
    )  # fmt: skip
    assert store.run("abc123").status == "finished" and forebear.run is second
    second.finish()
    with pytest.raises(forebear.InvalidInput, match="run abc123 exists already"):
        forebear.init(project="p", store=store, id="abc123", resume="never")
    with pytest.raises(forebear.InvalidInput, match="no run has id 'zz9'"):
        forebear.init(project="p", store=store, id="zz9", resume="must")
    for bad in ("x" * 65, "a/b", "-a", "a b"):
        with pytest.raises(forebear.InvalidInput, match="a run id is 1 to 64 letters"):
            forebear.init(project="p", store=store, id=bad)
    with pytest.raises(forebear.InvalidInput, match="use 'online'"):
        forebear.init(project="p", store=store, mode="dryrun")
    for rewind in ({"resume_from": "abc123?_step=2"}, {"fork_from": "abc123?_step=2"}):
        with pytest.raises(forebear.InvalidInput, match="neither rewinds nor forks"):
            forebear.init(project="p", store=store, **rewind)  # type: ignore[arg-type]
    config = {"lr": 0.1, "secret": "s", "batch": 8}
    with forebear.init(project="p", store=store, config=config, config_exclude_keys=["secret"]):
        assert forebear.config == {"lr": 0.1, "batch": 8}
    with forebear.init(
        project="p", store=store, config=config, config_include_keys=["lr"], force=True,
        magic=True, tensorboard=False,
    ):  # fmt: skip
        assert forebear.config == {"lr": 0.1}
    assert len(store.runs("p")) == 4  # the refused ones made no run
    script = tmp_path / "train.py"
    script.write_text("import forebear\n")
    monkeypatch.setattr("__main__.__file__", str(script), raising=False)
    with forebear.init(project="p", name="fit", store=store, save_code=True) as run:
        pass
    (code,) = [v for v in run.outputs if v.type == "code"]
    assert code.files() == ["train.py"] and code.name == "source-p-fit"


def test_w_and_b_download_options_and_files_by_name(store: forebear.Store, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    target = tmp_path / "elsewhere.txt"
    target.write_text("far")
    artifact = forebear.Artifact("refs", type="dataset")
    artifact.add_file(tmp_path / "a.txt")
    artifact.add_reference(target.as_uri(), name="far.txt")
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(artifact)
    assert version.files(names=["a.txt", "nope"]) == ["a.txt"]
    far = version.get_entry("far.txt")
    assert far.ref == far.ref_target() == target.as_uri()  # W&B's names for its target
    assert version.get_entry("a.txt").ref is None
    with pytest.raises(ValueError, match=r"'a\.txt' of p/refs:v0 is stored in the store"):
        version.get_entry("a.txt").ref_target()
    target.unlink()
    with pytest.raises(forebear.ObjectNotFound, match="cannot read reference"):
        version.download(tmp_path / "strict")
    with pytest.warns(forebear.ForebearWarning, match="1 references whose targets are gone"):
        done = version.download(tmp_path / "out", allow_missing_references=True, skip_cache=True)
    assert tree(done) == {"a.txt": "a"}


def test_a_file_of_a_listing_downloads_as_w_and_b_s_file_does(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B's ``File.download(root=".", replace=False, exist_ok=False)``: into the current
    folder by default, never over a file already there unless told."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model-best.h5").write_bytes(b"weights")
    with forebear.init(project="p", store=store) as run:
        run.save(str(tmp_path / "src" / "model-best.h5"), base_path=str(tmp_path / "src"))
    kept = forebear.Api(store).run(run.id).file("model-best.h5")
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    assert kept.download().resolve() == work / "model-best.h5"
    (work / "model-best.h5").write_bytes(b"my own edit")
    with pytest.raises(forebear.InvalidInput, match="exists already: pass replace=True"):
        kept.download()
    assert kept.download(exist_ok=True).read_bytes() == b"my own edit"  # left as it was
    assert kept.download(replace=True).read_bytes() == b"weights"
    draft = forebear.Artifact("d", type="dataset")
    assert draft.is_draft()
    draft.add_file(str(tmp_path / "src" / "model-best.h5"))
    assert not draft.save(project="p", store=store).is_draft() and not draft.is_draft()
    listed = run.store.artifact(f"p/run-{run.id}-files:latest").files()[0]
    assert listed.download(tmp_path / "out", replace=True, api=None).read_bytes() == b"weights"


def test_tables_go_into_artifacts_and_runs(store: forebear.Store) -> None:
    table = forebear.Table(columns=["id", "label", "score"])
    table.add_data(1, "cat", 0.9)
    table.add_data(2, "dog", 0.4)
    with pytest.raises(forebear.InvalidInput, match="has 3 values"):
        table.add_data(3, "cow")
    with pytest.raises(forebear.InvalidInput, match="must hold finite numbers"):
        table.add_data(3, "cow", float("nan"))
    artifact = forebear.Artifact("preds", type="predictions")
    assert artifact.add(table, "val") == "val.table.json"
    artifact["test"] = forebear.Table(data=[[1, 2]])
    with pytest.raises(forebear.InvalidInput, match=r"takes a forebear\.Table"):
        artifact.add({"a": 1}, "nope")  # type: ignore[arg-type]
    with forebear.init(project="p", name="eval", store=store) as run:
        version = run.log_artifact(artifact)
        run.log({"samples": table, "acc": 0.5})
    assert version.files() == ["test.table.json", "val.table.json"]
    assert version.get("val") == table and version["val.table.json"] == table
    assert version.get("test").columns == ["Column_1", "Column_2"]  # type: ignore[union-attr]
    assert version.get("nothing") is None
    assert table.get_column("label") == ["cat", "dog"]
    logged = store.run(run.id).summary["samples"]
    assert (logged["_type"], logged["nrows"], logged["ncols"]) == ("table-file", 2, 3)
    assert store.run(run.id).history() == [{"step": 0, "acc": 0.5}]  # the table is no metric
    kept = store.artifact(logged["artifact"])
    assert kept.type == "run_table" and kept.get("samples") == table
    frame = table.get_dataframe()
    assert list(frame.columns) == ["id", "label", "score"]
    assert forebear.Table(dataframe=frame) == table


def test_a_table_is_read_back_the_ways_w_and_b_scripts_read_one() -> None:
    table = forebear.Table(columns=["id", "score"], data=[[1, 0.5], [2, 0.25]])
    assert list(table.iterrows()) == [(0, [1, 0.5]), (1, [2, 0.25])]
    assert table.get_index() == [0, 1]
    scores = table.get_column("score", convert_to="numpy")
    assert isinstance(scores, np.ndarray) and scores.tolist() == [0.5, 0.25]
    with pytest.raises(forebear.InvalidInput, match="None or 'numpy'"):
        table.get_column("score", convert_to="torch")
    table.add_computed_columns(lambda index, row: {"double": row["score"] * 2, "n": index})
    assert table.columns == ["id", "score", "double", "n"]
    assert table.data == [[1, 0.5, 1.0, 0], [2, 0.25, 0.5, 1]]
    with pytest.raises(forebear.InvalidInput, match="columns already"):
        table.add_computed_columns(lambda index, row: {"id": 0})
    with pytest.raises(forebear.InvalidInput, match="the same new columns for every row"):
        table.add_computed_columns(lambda index, row: {f"c{index}": 0})
    table.cast("id", "int")  # W&B's column typing: nothing to keep
    assert table.columns == ["id", "score", "double", "n"]


def test_nested_values_are_charted_under_dotted_names(store: forebear.Store) -> None:
    with forebear.init(project="p", store=store) as run:
        run.log({"train": {"loss": 0.5, "tag": "x", "deep": {"acc": 1}}, "val/loss": 0.7})
    (row,) = store.run(run.id).history()
    assert row == {"step": 0, "train.loss": 0.5, "train.deep.acc": 1.0, "val/loss": 0.7}
    assert store.run(run.id).summary["train"] == {"loss": 0.5, "tag": "x", "deep": {"acc": 1}}
