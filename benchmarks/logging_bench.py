"""Logging metrics from a training loop: the cost of each `run.log` call against MLflow's
``mlflow.log_metrics`` (synchronous, and with ``synchronous=False``), both on SQLite, and
the time `forebear import mlflow` takes to bring a long MLflow run across.

    python benchmarks/logging_bench.py                    # 20,000 logs, 100,000 steps
    python benchmarks/logging_bench.py --logs 500 --steps 2000   # a quick smoke run
    python benchmarks/logging_bench.py --write docs/benchmarks.md

Each loop logs two values a step (``loss`` and ``acc``) as fast as it can, in a child
process of its own, and is timed from its first call to the end of its run (when every
value is in the catalog).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section

MARK = "logging-bench"

FOREBEAR_LOOP = """
import json, sys, time
import forebear
logs = int(sys.argv[2])
run = forebear.init(project="bench", store=sys.argv[1])
began = time.perf_counter()
for step in range(logs):
    run.log({"loss": 1 / (step + 1), "acc": step / logs})
logged = time.perf_counter() - began
run.finish()
total = time.perf_counter() - began
assert len(forebear.open(sys.argv[1]).run(run.id).history()) == logs
print(json.dumps({"logged": logged, "total": total}))
"""

MLFLOW_LOOP = """
import json, logging, sys, time
logging.disable(logging.WARNING)
import mlflow
logs, synchronous = int(sys.argv[2]), sys.argv[3] == "sync"
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}/mlflow.db")
mlflow.set_experiment("bench")
with mlflow.start_run() as run:
    began = time.perf_counter()
    for step in range(logs):
        mlflow.log_metrics(
            {"loss": 1 / (step + 1), "acc": step / logs}, step=step, synchronous=synchronous
        )
    logged = time.perf_counter() - began
total = time.perf_counter() - began  # the end of the run waits for what is queued
history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
assert len(history) == logs, len(history)
print(json.dumps({"logged": logged, "total": total}))
"""

MLFLOW_LONG_RUN = """
import logging, sys, time
logging.disable(logging.WARNING)
import mlflow
from mlflow.entities import Metric
steps = int(sys.argv[2])
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}/mlflow.db")
mlflow.set_experiment("long")
client = mlflow.MlflowClient()
with mlflow.start_run(run_name="long") as run:
    now = int(time.time() * 1000)
    for start in range(0, steps, 500):
        stop = min(start + 500, steps)
        client.log_batch(run.info.run_id, metrics=[
            Metric(key, 1 / (i + 1) if key == "loss" else i / steps, now, i)
            for i in range(start, stop) for key in ("loss", "acc")
        ])
"""


def child(script: str, *args: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
    env["FOREBEAR_NO_PROGRESS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def timed_import(folder: Path, steps: int) -> float:
    """Seconds `forebear import mlflow` takes for one MLflow run of ``steps`` steps."""
    child(MLFLOW_LONG_RUN, str(folder), str(steps))
    forebear = Path(sys.executable).parent / "forebear"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
    env["FOREBEAR_NO_PROGRESS"] = "1"
    began = time.perf_counter()
    subprocess.run(
        [str(forebear), "--objects", str(folder / "store"), "import", "mlflow",
         "--tracking-uri", f"sqlite:///{folder}/mlflow.db"],
        env=env, capture_output=True, check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=20_000, help="calls in each loop")
    parser.add_argument("--mlflow-logs", type=int, default=2_000, help="MLflow's, synchronous")
    parser.add_argument("--steps", type=int, default=100_000, help="of the MLflow run imported")
    parser.add_argument("--write", type=Path, help="update the logging section of this file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="logging-bench-") as folder:
        work = Path(folder)
        for label, script, extra, logs in (
            ("forebear `run.log`", FOREBEAR_LOOP, (), args.logs),
            ("MLflow `log_metrics`", MLFLOW_LOOP, ("sync",), args.mlflow_logs),
            ("MLflow `log_metrics(synchronous=False)`", MLFLOW_LOOP, ("async",), args.logs),
        ):
            place = work / label.split()[0].lower() / str(len(rows))
            place.mkdir(parents=True)
            target = str(place / "store") if script is FOREBEAR_LOOP else str(place)
            result = child(script, target, str(logs), *extra)
            per_call = result["logged"] / logs * 1e6
            rows.append(f"| {label} | {logs:,} | {per_call:,.0f} µs | {result['total']:.2f} s |")
        (work / "import").mkdir()
        imported = timed_import(work / "import", args.steps)
    lines = [
        "## Logging metrics from a training loop",
        "",
        "`python benchmarks/logging_bench.py --write docs/benchmarks.md`: each loop logs two "
        "values a step as fast as it can, in a child process of its own, on SQLite. "
        f"Machine: {machine()}.",
        "",
        "| loop | calls | each call | until all are in the catalog |",
        "|---|---|---|---|",
        *rows,
        "",
        f"`forebear import mlflow` of one MLflow run of {args.steps:,} steps (two metrics "
        f"each): **{imported:.1f} s**.",
        "",
    ]
    body = "\n".join(lines)
    if args.write:
        write_section(args.write, body, MARK)
    print(body)


if __name__ == "__main__":
    main()
