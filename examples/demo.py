"""End-to-end demo on the embedded default (SQLite + a local folder).

1. a "prepare" run makes a dataset from the iris data scikit-learn ships and logs it;
2. a "train" run uses that dataset, fits a random forest and logs the model as "best";
3. we ask which data produced the model, promote it in the registry, and draw the lineage.

Everything lands in ./demo-output/ (the store in ./demo-output/store).
"""

from __future__ import annotations

import csv
import os
import pickle
import shutil
import sys
from pathlib import Path

import forebear

OUT = Path("demo-output")
STORE = OUT / "store"


def prepare(store: forebear.Store) -> forebear.ArtifactVersion:
    from sklearn.datasets import load_iris

    iris = load_iris()
    folder = OUT / "work" / "iris"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "iris.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*iris.feature_names, "species"])
        for row, target in zip(iris.data, iris.target, strict=True):
            writer.writerow([*row, iris.target_names[target]])
    (folder / "README.txt").write_text("Fisher's iris data, 150 rows, from scikit-learn.\n")

    with forebear.init(project="iris", name="prepare", store=store) as run:
        dataset = run.log_artifact(
            folder, name="iris-raw", type="dataset", description="Fisher's iris measurements"
        )
    print(f"prepare: logged {dataset.ref} ({dataset.file_count} files, {dataset.size} bytes)")
    return dataset


def train(store: forebear.Store) -> forebear.ArtifactVersion:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    config = {"n_estimators": 100, "max_depth": 4, "random_state": 0}
    with forebear.init(project="iris", name="rf-baseline", config=config, store=store) as run:
        raw = run.use_artifact("iris-raw:latest")
        data_dir = raw.download()  # a verified local copy
        with (data_dir / "iris.csv").open() as f:
            rows = list(csv.reader(f))[1:]
        features = [[float(x) for x in row[:4]] for row in rows]
        labels = [row[4] for row in rows]
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=0.3, random_state=0, stratify=labels
        )
        model = RandomForestClassifier(**config).fit(x_train, y_train)
        accuracy = float(model.score(x_test, y_test))
        run.log({"accuracy": accuracy})

        model_file = OUT / "work" / "model.pkl"
        model_file.write_bytes(pickle.dumps(model))
        artifact = forebear.Artifact(
            "iris-rf",
            type="model",
            description="Random forest on iris-raw",
            metadata={"accuracy": accuracy, **config},
        )
        artifact.add_file(model_file)
        version = run.log_artifact(artifact, aliases=["best"])
    print(f"train:   used {raw.ref}, logged {version.ref} (accuracy {accuracy:.3f})")
    return version


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    store = forebear.open(STORE)
    prepare(store)
    train(store)

    best = store.artifact("iris-rf:best")
    print(f"\nWhich data produced {best.ref} ({', '.join(best.aliases)})?")
    for version in best.upstream():
        producer = version.producer
        made_by = f", made by run '{producer.name}'" if producer else ""
        print(f"  {version.ref} [{version.type}]{made_by}")

    released = best.link("registry/iris-classifier", aliases=["production"])
    print(f"\nPromoted {best.ref} to {released.qualified_ref} (production)")

    lineage = store.lineage(released, upstream=True)
    print("\nLineage:")
    print(lineage.to_text())
    for suffix in (".svg", ".png", ".mmd"):
        path = lineage.render(OUT / f"lineage{suffix}")
        print(f"wrote {path}")
    print(f"\nTry the CLI: {cli_command()} --objects {STORE} ls")


def cli_command() -> str:
    """How to run forebear's CLI from here: the command on PATH if it is this one, else the
    script installed beside this Python (.venv/bin/forebear after scripts/demo.sh)."""
    beside = Path(sys.executable).parent / "forebear"
    on_path = shutil.which("forebear")
    if on_path and beside.exists() and Path(on_path).resolve() == beside.resolve():
        return "forebear"
    if beside.exists():
        relative = os.path.relpath(beside)
        return relative if len(relative) < len(str(beside)) else str(beside)
    return f"{sys.executable} -m forebear"


if __name__ == "__main__":
    main()
