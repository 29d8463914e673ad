"""``forebear import mlflow`` against a real MLflow tracking store (SQLite, written by
MLflow's own client in another process): what arrives, that importing again changes
nothing, and one clear error for each kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import forebear
from forebear.mlflow_import import import_mlflow, project_name

from .conftest import clean_env, run_cli

# What a user's MLflow scripts leave behind: two experiments, finished, failed and running
# runs, a metric history, artifacts, a registered model with aliases, an MLflow 3 model.
MAKE = textwrap.dedent(
    """
    import json, os, sys
    import mlflow
    import numpy
    import mlflow.pyfunc
    from mlflow import MlflowClient

    root = sys.argv[1]
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    mlflow.create_experiment("churn model", artifact_location=f"{root}/artifacts")
    mlflow.set_experiment("churn model")
    os.makedirs(f"{root}/model", exist_ok=True)
    made = {}
    for i in range(2):
        with open(f"{root}/model/MLmodel", "w") as f:
            f.write("flavors: {}")
        with open(f"{root}/model/weights.bin", "w") as f:
            f.write(f"weights {i}")
        with mlflow.start_run(run_name=f"train-{i}") as run:
            mlflow.log_params({"lr": 0.1 * (i + 1), "epochs": 3})
            for step in range(3):
                values = {"loss": 1.0 / (step + 1 + i), "acc": 0.5 + step / 10}
                mlflow.log_metrics(values, step=step)
            mlflow.set_tag("team", "risk")
            mlflow.log_metric("lr_final", 0.01 * (i + 1))  # once, with no step: step 0
            rows = numpy.array([3, 40])
            data = mlflow.data.from_numpy(rows, name="churn-rows", source="s3://b/x.csv")
            mlflow.log_input(data, context="training")
            mlflow.log_artifacts(f"{root}/model", artifact_path="model")
            mlflow.log_text("same report", "report.txt")
            mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
            made[f"train-{i}"] = run.info.run_id
    client = MlflowClient()
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_registered_model_alias("churn", "challenger", "2")
    client.set_model_version_tag("churn", "1", "validation_status", "approved")
    client.update_model_version("churn", "1", description="the first good one")
    client.set_registered_model_tag("churn", "owner", "risk team")
    try:
        with mlflow.start_run(run_name="broken"):
            mlflow.log_param("lr", 9)
            mlflow.log_text("half written", "model/partial.txt")  # no MLmodel in it
            raise RuntimeError("diverged")
    except RuntimeError:
        pass
    experiment = client.get_experiment_by_name("churn model").experiment_id
    running = client.create_run(experiment, run_name="still-going")
    made["still-going"] = running.info.run_id

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input

    mlflow.create_experiment("eval", artifact_location=f"{root}/eval")
    mlflow.set_experiment("eval")
    with mlflow.start_run(run_name="package") as run:
        mlflow.log_metric("odd", float("nan"))
        mlflow.pyfunc.log_model(name="echo", python_model=Echo(), registered_model_name="echo")
        # a model whose saving failed (a serializer missing): MLflow marks it, with no files
        half = MlflowClient().create_logged_model(
            run.info.experiment_id, name="half-saved", source_run_id=run.info.run_id
        )
        MlflowClient().finalize_logged_model(half.model_id, "FAILED")
        made["package"] = run.info.run_id
    print(json.dumps(made))
    """
)

LATER = textwrap.dedent(
    """
    import sys
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{sys.argv[1]}/mlflow.db")
    client.log_metric(sys.argv[2], "loss", 0.1, step=0)
    client.set_terminated(sys.argv[2], "FINISHED")
    client.set_registered_model_alias("churn", "champion", "2")
    client.set_registered_model_alias("churn", "challenger", "1")
    """
)


def mlflow_store(root: Path) -> dict[str, str]:
    """A real MLflow tracking store under ``root``; the MLflow run ids by run name."""
    root.mkdir()
    made = subprocess.run(
        [sys.executable, "-c", MAKE, str(root)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    ids: dict[str, str] = json.loads(made.stdout.strip().splitlines()[-1])
    return ids


@pytest.fixture(scope="module")
def untouched_mlflow(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tracking URI of an MLflow store that the tests using it only read."""
    root = tmp_path_factory.mktemp("shared") / "mlflow"
    mlflow_store(root)
    return f"sqlite:///{root / 'mlflow.db'}"


def snapshot(store: forebear.Store) -> dict[str, object]:
    """Everything an import could change."""
    runs = store.runs()
    return {
        "runs": sorted((r.id, r.status, r.name, str(r.ended_at)) for r in runs),
        "versions": sorted(
            (v.qualified_ref, tuple(v.aliases), v.digest, v.description, str(v.metadata))
            for project in {r.project for r in runs} | {"registry"}
            for v in store.artifacts(project=project)
            for v in store.versions(v.name, project=project)
        ),
        "history": store.alias_history("churn", project="registry"),
    }


@pytest.mark.slow
def test_an_mlflow_store_arrives_whole_and_importing_again_changes_nothing(
    tmp_path: Path,
) -> None:
    ids = mlflow_store(tmp_path / "mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    store_dir = tmp_path / "store"
    first = run_cli("--objects", str(store_dir), "import", "mlflow", "--tracking-uri", uri)
    assert first.returncode == 0, first.stderr
    assert "4 run(s) imported into 2 project(s) (churn-model, eval)" in first.stdout
    assert "1 still running in MLflow" in first.stdout
    assert f"run {ids['package']}: model 'half-saved' (m-" in first.stderr
    assert "never completely logged in MLflow (its status is FAILED); left out" in first.stderr

    with forebear.open(store_dir) as store:
        runs = {r.name: r for r in store.runs()}
        assert set(runs) == {"train-0", "train-1", "broken", "package"}
        train = runs["train-1"]
        assert train.project == "churn-model" and train.status == "finished"
        assert train.config == {"lr": "0.2", "epochs": "3"}  # params are strings
        assert train.history() == [  # lr_final at the one step MLflow has it
            {"step": 0, "acc": 0.5, "loss": 0.5, "lr_final": 0.02},
            {"step": 1, "acc": 0.6, "loss": 1 / 3},
            {"step": 2, "acc": 0.7, "loss": 0.25},
        ]
        assert train.summary == {"acc": 0.7, "loss": 0.25, "lr_final": 0.02}
        assert train.context["tags"]["team"] == "risk"
        [dataset] = train.context["datasets"]  # MLflow kept no bytes of it: no version
        assert (dataset["name"], dataset["context"]) == ("churn-rows", "training")
        assert "s3://b/x.csv" in dataset["source"] and dataset["digest"]
        train.tags.append("reviewed")  # W&B's tags would replace MLflow's: refused
        with pytest.raises(forebear.InvalidInput, match="tags of the MLflow run"):
            train.update()
        assert train.context["imported_from"]["run_id"] == ids["train-1"] == train.id
        assert train.started_at < train.ended_at < runs["broken"].started_at
        assert runs["broken"].status == "failed" and runs["broken"].config == {"lr": "9"}
        partial = runs["broken"].outputs[0]  # an artifact keeps the type it started with
        assert (partial.qualified_ref, partial.type) == ("churn-model/model:v2", "model")
        assert "odd" not in runs["package"].summary  # NaN has no place in a summary

        model = store.artifact("churn-model/model:v1")
        assert model.type == "model" and model.producer == train
        assert model.open("weights.bin").read() == b"weights 1"
        assert model.metadata["mlflow"] == {"run_id": ids["train-1"], "path": "model"}
        report = store.artifact("churn-model/report.txt")
        assert report.version == "v0"  # the same bytes twice: one version, two producers
        assert {r.name for r in report.producers} == {"train-0", "train-1"}

        champion = store.artifact("registry/churn:champion")
        assert champion.source.qualified_ref == "churn-model/model:v0"
        assert store.artifact("registry/churn:challenger").source == model
        assert champion.upstream() == [store.artifact("churn-model/model:v0")]
        # what MLflow says of each registered version stays with its link
        assert champion.description == "the first good one"
        assert champion.metadata["mlflow"]["registered"] == {
            "model": "churn", "version": "1", "tags": {"validation_status": "approved"},
            "model_tags": {"owner": "risk team"},
        }  # fmt: skip
        challenger = store.artifact("registry/churn:challenger")
        assert challenger.description is None
        assert challenger.metadata["mlflow"]["registered"] == {
            "model": "churn", "version": "2", "model_tags": {"owner": "risk team"},
        }  # fmt: skip
        echo = store.artifact("registry/echo:latest").source
        assert echo.qualified_ref == "eval/echo:v0"  # an MLflow 3 logged model
        assert echo.producer == runs["package"] and "MLmodel" in echo.files()
        before = snapshot(store)

    again = run_cli("--objects", str(store_dir), "import", "mlflow", "--tracking-uri", uri,
                    "--json")  # fmt: skip
    assert again.returncode == 0, again.stderr
    said = json.loads(again.stdout)
    assert (said["runs"], said["versions"], said["links"]) == (0, [], 0)
    assert said["runs_known"] == 4 and said["runs_running"] == 1
    with forebear.open(store_dir) as store:
        assert snapshot(store) == before

    later = subprocess.run(
        [sys.executable, "-c", LATER, str(tmp_path / "mlflow"), ids["still-going"]],
        env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert later.returncode == 0, later.stderr
    with forebear.open(store_dir) as store:  # a team decides who moves this one
        store.protect_alias("registry/churn", "challenger")
    third = run_cli("--objects", str(store_dir), "import", "mlflow", "--tracking-uri", uri)
    assert third.returncode == 0, third.stderr
    assert third.stdout.startswith("1 run(s) imported")
    assert "'challenger'" in third.stderr and "protected" in third.stderr
    with forebear.open(store_dir) as store:
        names = [r.name for r in store.runs("churn-model")]
        assert names.count("still-going") == 1
        assert store.artifact("registry/churn:champion").source.qualified_ref == (
            "churn-model/model:v1"
        )
        challenger = store.artifact("registry/churn:challenger").source
        assert challenger.qualified_ref == "churn-model/model:v1"  # where it was: protected
        moves = [m for m in store.alias_history("churn", project="registry")
                 if m["alias"] == "champion"]  # fmt: skip
        assert [m["reason"] for m in moves] == ["imported from MLflow"] * 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # MLflow's
def test_an_interrupted_import_is_done_again_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untouched_mlflow: str
) -> None:
    import mlflow.artifacts

    uri = untouched_mlflow
    download = mlflow.artifacts.download_artifacts
    calls = []

    def fails_on_the_second(*args: object, **kwargs: object) -> str:
        calls.append(kwargs)
        if len(calls) == 2:
            raise OSError("the network went away")
        return str(download(*args, **kwargs))  # type: ignore[arg-type]

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", fails_on_the_second)
    with forebear.open(tmp_path / "store") as store:
        with pytest.raises(OSError, match="network went away"):
            import_mlflow(uri, store=store, experiments=["churn model"])
        assert [r.status for r in store.runs()] == ["crashed"]  # train-0, half imported
        monkeypatch.undo()
        done = import_mlflow(uri, store=store, experiments="churn model")
        assert done.runs == 3 and done.links == 2
        names = sorted(r.name for r in store.runs())
        assert names == ["broken", "train-0", "train-1"]
        train = next(r for r in store.runs() if r.name == "train-0")
        assert sorted(v.name for v in train.outputs) == ["model", "report.txt"]
        # the deleted remains of the first try keep the MLflow id: the import takes a new one
        mlflow_id = train.context["imported_from"]["run_id"]
        assert store.run(mlflow_id).deleted_at is not None and train.id != mlflow_id
        others = [r for r in store.runs() if r.name != "train-0"]
        assert [r.id == r.context["imported_from"]["run_id"] for r in others] == [True, True]


def test_bad_input_gets_one_clear_error_and_makes_nothing(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    missing = tmp_path / "nowhere" / "mlflow.db"
    cases = [
        (("--tracking-uri", f"sqlite:///{missing}"), "does not exist"),
        (("--tracking-uri", str(tmp_path / "mlruns")), "does not exist"),
        (("--tracking-uri", f"file:{tmp_path / 'mlruns'}"), "does not exist"),
        (("--tracking-uri", f"sqlite:///{missing}?mode=ro"), "does not exist"),
        ((), "give the MLflow tracking URI"),
    ]
    for args, words in cases:  # in a folder without mlflow.db or mlruns/
        done = run_cli("--objects", str(store_dir), "import", "mlflow", *args, cwd=tmp_path)
        assert done.returncode == 1, done.stdout
        assert done.stderr.startswith("forebear: error: ") and words in done.stderr
        assert "Traceback" not in done.stderr
    assert not missing.parent.exists() and not (tmp_path / "mlruns").exists()
    assert not store_dir.exists()  # nor a store


@pytest.mark.slow
def test_an_unknown_experiment_imports_nothing(tmp_path: Path, untouched_mlflow: str) -> None:
    uri = untouched_mlflow
    done = run_cli("--objects", str(tmp_path / "store"), "import", "mlflow",
                   "--tracking-uri", uri, "-e", "eval", "-e", "no such")  # fmt: skip
    assert done.returncode == 1
    assert "no active MLflow experiment named 'no such'" in done.stderr
    assert "nothing was imported" in done.stderr
    with forebear.open(tmp_path / "store") as store:
        assert store.runs() == []


LEGACY = textwrap.dedent(
    """
    import os, mlflow
    mlflow.set_tracking_uri(os.environ["URI"])
    mlflow.set_experiment("legacy")
    with mlflow.start_run(run_name="old"):
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("rmse", 0.3, step=0)
        mlflow.log_text("hello", "notes.txt")
        with mlflow.start_run(run_name="trial", nested=True):
            mlflow.log_param("alpha", 0.7)
    """
)


def test_mlflows_own_default_stores_are_found_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a URI, the import reads what MLflow logs to in the folder by default:
    mlflow.db (MLflow 3), or mlruns/ (MLflow 2's file store, which MLflow 3 opens only
    when told to; an import reads it all the same, and leaves the setting as it was)."""
    for kind, uri in (("db", "sqlite:///mlflow.db"), ("files", "file:./mlruns")):
        folder = tmp_path / kind
        folder.mkdir()
        made = subprocess.run(
            [sys.executable, "-c", LEGACY], cwd=folder, capture_output=True, text=True,
            env=clean_env(URI=uri, MLFLOW_ALLOW_FILE_STORE="true"), timeout=600, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        done = run_cli("--objects", str(folder / "store"), "import", "mlflow", cwd=folder)
        assert done.returncode == 0, done.stderr
        assert "2 run(s) imported" in done.stdout
        assert "where MLflow logs by default" in done.stderr  # says which store it read
        with forebear.open(folder / "store") as store:
            run, trial = sorted(store.runs("legacy"), key=lambda r: r.name)
            assert (run.name, run.config, run.summary) == ("old", {"alpha": "0.5"}, {"rmse": 0.3})
            assert (trial.name, trial.group, run.group) == ("trial", "old", None)  # nested
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with forebear.open(tmp_path / "again") as store:
        report = import_mlflow(str(tmp_path / "files" / "mlruns"), store=store)
        assert report.runs == 2 and "MLFLOW_ALLOW_FILE_STORE" not in os.environ


def test_the_mlflow_environment_variable_names_the_store(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "forebear", "--objects", str(tmp_path / "s"), "import", "mlflow"],
        env=clean_env(**env), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "absent.db" in done.stderr
    assert not os.path.exists(tmp_path / "absent.db")


def test_an_experiments_name_becomes_a_project_name_keeping_its_letters() -> None:
    assert project_name("churn model") == "churn-model"
    assert project_name("Données d'été / v2") == "Donnees-d-ete-v2"
    assert project_name("日本語") == "mlflow"  # nothing a name may hold: the default
