"""Many small files to and from S3: forebear in format 2 (one object per file) and format 3
(packs) side by side with DVC, MLflow, `aws s3 sync`, rclone and a raw boto3 client of 32
threads, one run, on SeaweedFS on this machine.

    python benchmarks/packs_bench.py --setup-peers         # install the peers first
    python benchmarks/packs_bench.py                       # 20,000 files of 8 KiB
    python benchmarks/packs_bench.py --files 500           # a quick smoke run
    python benchmarks/packs_bench.py --write docs/benchmarks.md

Each tool runs in a child process: an upload of the folder, then a download of everything
into an empty folder (forebear with an empty cache), timed, with the child's peak memory.
For forebear and boto3 the S3 requests are counted in the child (botocore's ``before-send``
event). DVC (``dvc add`` + ``dvc push``; ``dvc pull`` in a fresh repository), MLflow
(``log_artifacts``; ``download_artifacts``) and ``aws s3 sync`` run from their own virtual
environments under benchmarks/.venvs, rclone (``copy``, 32 transfers) from the system; a
peer that is not installed is skipped. The S3 server comes from scripts/s3.sh unless
FOREBEAR_TEST_S3_* name one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section
from speed_bench import MEASURE, VENVS, setup_peer

MARK = "packs-bench"
REPO = Path(__file__).resolve().parent.parent
BUCKET = "forebear-bench"

# Runs in the child: counts every request botocore sends, then does one tool's step.
CHILD = r"""
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REQUESTS = [0]

def count(**_):
    REQUESTS[0] += 1

def counted(client):
    client.meta.events.register("before-send", count, unique_id="packs-bench-count")
    return client

tool, step, folder, url, out = sys.argv[1:6]
if tool.startswith("forebear"):
    import s3fs
    real = s3fs.S3FileSystem.set_session

    async def set_session(self, *args, **kwargs):
        return counted(await real(self, *args, **kwargs))

    s3fs.S3FileSystem.set_session = set_session
    import forebear
    made = {"forebear": 2, "forebear-packs": 3}[tool] if step == "upload" else None
    store = forebear.Store(
        f"sqlite:///{folder}/catalog.db", url, cache_dir=f"{folder}/cache", format=made
    )
    start = time.perf_counter()
    if step == "upload":
        with forebear.init(project="bench", store=store) as run:
            run.log_artifact(f"{folder}/data", name="small")
    else:
        store.artifact("bench/small").download(out)
    seconds = time.perf_counter() - start
else:
    import boto3
    from botocore.config import Config
    client = counted(boto3.client("s3", config=Config(max_pool_connections=32)))
    bucket, prefix = url[len("s3://"):].split("/", 1)
    names = sorted(os.listdir(f"{folder}/data"))
    start = time.perf_counter()
    def put(name):
        with open(f"{folder}/data/{name}", "rb") as f:
            client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=f.read())
    def get(name):
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()
        with open(f"{out}/{name}", "wb") as f:
            f.write(body)
    if step == "download":
        os.makedirs(out, exist_ok=True)
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put if step == "upload" else get, names))
    seconds = time.perf_counter() - start
import resource
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "requests": REQUESTS[0], "peak_mib": peak}))
"""

TOOLS = ("forebear", "forebear-packs", "boto3", "dvc", "mlflow", "aws", "rclone")
LABELS = {
    "forebear": "forebear, format 2",
    "forebear-packs": "forebear, format 3 (packs)",
    "boto3": "raw boto3, 32 threads",
    "dvc": "DVC (add + push; pull)",
    "mlflow": "MLflow (log_artifacts; download_artifacts)",
    "aws": "`aws s3 sync`",
    "rclone": "rclone copy, 32 transfers",
}
IN_PROCESS = ("forebear", "forebear-packs", "boto3")  # run by CHILD, requests counted

MLFLOW_DRIVER = r"""
import sys
import mlflow

step, tracking, url, data, out = sys.argv[1:6]
mlflow.set_tracking_uri(tracking)
if step == "upload":
    mlflow.create_experiment("bench", artifact_location=url)
    mlflow.set_experiment("bench")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(data)
else:
    [run] = mlflow.search_runs(experiment_names=["bench"], output_format="list")
    mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=out)
"""


def start_s3() -> dict[str, str]:
    """The S3 server named by FOREBEAR_TEST_S3_*, else a new one (its _DIR set: to stop)."""
    if os.environ.get("FOREBEAR_TEST_S3_ENDPOINT"):
        found = {k: v for k, v in os.environ.items() if k.startswith("FOREBEAR_TEST_S3_")}
        return {k: v for k, v in found.items() if k != "FOREBEAR_TEST_S3_DIR"}
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "s3.sh"), "start"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )


def run_child(tool: str, step: str, folder: Path, url: str, out: Path, env: dict[str, str]) -> dict:
    if tool not in IN_PROCESS:
        return run_peer(tool, step, folder, url, out, env)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, tool, step, str(folder), url, str(out)],
        capture_output=True, text=True, env=env, timeout=3600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{tool} {step} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def peer_command(
    tool: str, step: str, folder: Path, url: str, out: Path, env: dict[str, str]
) -> tuple[list[str], Path]:
    """The command line of one peer's step, and the folder it runs in (after untimed set-up)."""
    data = (folder / "data").resolve()
    if tool == "rclone":
        remote = "bench:" + url[len("s3://") :]
        source, target = (str(data), remote) if step == "upload" else (remote, str(out))
        return ["rclone", "copy", source, target, "--transfers", "32", "--checkers", "32"], folder
    if tool == "aws":
        aws = str(VENVS / "awscli" / "bin" / "aws")
        source, target = (str(data), url) if step == "upload" else (url, str(out))
        return [aws, "s3", "sync", "--only-show-errors", source, target], folder
    if tool == "mlflow":
        python = str(VENVS / "mlflow" / "bin" / "python")
        tracking = f"sqlite:///{folder}/mlflow.db"
        return [python, "-c", MLFLOW_DRIVER, step, tracking, url, str(data), str(out)], folder
    dvc = str(VENVS / "dvc" / "bin" / "dvc")
    repo = folder / ("repo" if step == "upload" else "clone")
    repo.mkdir()
    for setup in (
        [dvc, "init", "--no-scm", "-q"],
        [dvc, "config", "core.analytics", "false"],
        [dvc, "remote", "add", "-d", "bench", url],
        [dvc, "remote", "modify", "bench", "endpointurl", env["AWS_ENDPOINT_URL"]],
    ):
        subprocess.run(setup, cwd=repo, env=env, check=True, capture_output=True)
    if step == "upload":
        subprocess.run(["cp", "-r", str(data), str(repo / "data")], check=True)
        return ["sh", "-c", f"{dvc} add -q data && {dvc} push -q"], repo
    (repo / "data.dvc").write_bytes((folder / "repo" / "data.dvc").read_bytes())
    return [dvc, "pull", "-q"], repo


def peer_ready(tool: str) -> bool:
    if tool == "rclone":
        return shutil.which("rclone") is not None
    venv = {"aws": "awscli"}.get(tool, tool)
    return (VENVS / venv / "bin" / ("aws" if tool == "aws" else "python")).exists()


def run_peer(tool: str, step: str, folder: Path, url: str, out: Path, env: dict[str, str]) -> dict:
    """One peer's step, timed by a helper that reports its peak memory from ``wait4``."""
    command, cwd = peer_command(tool, step, folder, url, out, env)
    if tool == "rclone":  # its S3 client cannot take a CA bundle over plain http
        env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
    report = folder / f"{step}.measure"
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(report), *command],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    seconds, peak_kib, status = report.read_text().split()
    if done.returncode != 0 or status != "0":
        raise SystemExit(f"{tool} {step} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    if tool == "dvc" and step == "download":
        out.mkdir(parents=True, exist_ok=True)
        for item in (cwd / "data").iterdir():
            item.rename(out / item.name)  # where the others put the files (untimed)
    return {"seconds": float(seconds), "requests": None, "peak_mib": int(peak_kib) / 1024}


def same_files(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=8 << 10, help="bytes per file")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--write", type=Path, help="update this benchmark's section of this file")
    parser.add_argument(
        "--setup-peers", action="store_true", help="install DVC, MLflow, awscli and rclone first"
    )
    args = parser.parse_args()
    if args.setup_peers:
        setup_peers()
    s3 = start_s3()
    try:
        measure(args, s3)
    finally:
        if "FOREBEAR_TEST_S3_DIR" in s3:
            subprocess.run(
                ["bash", str(REPO / "scripts" / "s3.sh"), "stop", s3["FOREBEAR_TEST_S3_DIR"]]
            )


def setup_peers() -> None:
    """The peers' virtual environments, and rclone from the system's packages."""
    setup_peer(VENVS / "dvc", "dvc[s3]")
    setup_peer(VENVS / "mlflow", "mlflow")
    setup_peer(VENVS / "mlflow", "boto3")
    setup_peer(VENVS / "awscli", "awscli")
    if shutil.which("rclone") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "rclone"], check=False)


def measure(args: argparse.Namespace, s3: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
    env.update(
        AWS_ACCESS_KEY_ID=s3["FOREBEAR_TEST_S3_KEY"],
        AWS_SECRET_ACCESS_KEY=s3["FOREBEAR_TEST_S3_SECRET"],
        AWS_ENDPOINT_URL=s3["FOREBEAR_TEST_S3_ENDPOINT"],
        AWS_DEFAULT_REGION="us-east-1",
        BOTO_CONFIG="/dev/null",
        FOREBEAR_NO_PROGRESS="1",
        PYTHONPATH=str(REPO / "src"),
        MLFLOW_S3_ENDPOINT_URL=s3["FOREBEAR_TEST_S3_ENDPOINT"],
        RCLONE_CONFIG_BENCH_TYPE="s3",
        RCLONE_CONFIG_BENCH_PROVIDER="Other",
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=s3["FOREBEAR_TEST_S3_KEY"],
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=s3["FOREBEAR_TEST_S3_SECRET"],
        RCLONE_CONFIG_BENCH_ENDPOINT=s3["FOREBEAR_TEST_S3_ENDPOINT"],
    )
    os.environ.update({k: env[k] for k in env if k.startswith("AWS_") or k == "BOTO_CONFIG"})
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    deadline = time.monotonic() + 120  # a new bucket takes writes once its volumes are made
    while True:
        try:
            fs.pipe_file(f"{BUCKET}/ready", b"ready")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="packs-bench-") as scratch:
        work = Path(scratch)
        data = work / "data"
        data.mkdir()
        for i in range(args.files):
            (data / f"f{i:06d}.bin").write_bytes(os.urandom(args.size))
        for tool in args.tools.split(","):
            if tool not in IN_PROCESS and not peer_ready(tool):
                print(f"{tool} is not installed (--setup-peers): skipped", file=sys.stderr)
                continue
            folder = work / tool
            folder.mkdir()
            (folder / "data").symlink_to(data)
            url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"
            results[tool] = {}
            for step in ("upload", "download"):
                out = work / f"{tool}-out"
                results[tool][step] = run_child(tool, step, folder, url, out, env)
                print(tool, step, results[tool][step], file=sys.stderr)
            if not same_files(data, out):
                raise SystemExit(f"{tool}: the downloaded files differ from the logged ones")
    report = render(args, results)
    print(report)
    if args.write:
        write_section(args.write, report, MARK)


def render(args: argparse.Namespace, results: dict[str, dict[str, dict]]) -> str:
    total = args.files * args.size / (1 << 20)
    lines = [
        f"{args.files:,} files of {args.size // 1024} KiB ({total:.0f} MiB), to and from SeaweedFS "
        f"on 127.0.0.1 ({machine()}); one run of "
        "`python benchmarks/packs_bench.py`. Requests are those the tool sent, counted in its "
        "process (— where the tool is another program); memory is the peak resident size of "
        "the tool's process.",
        "",
        "| tool | upload | requests | download into an empty folder | requests | peak memory |",
        "|---|---|---|---|---|---|",
    ]
    for tool, steps in results.items():
        up, down = steps["upload"], steps["download"]
        lines.append(
            f"| {LABELS[tool]} | {up['seconds']:.1f} s | {count(up['requests'])} | "
            f"{down['seconds']:.1f} s | {count(down['requests'])} | "
            f"{max(up['peak_mib'], down['peak_mib']):.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def count(requests: int | None) -> str:
    return "—" if requests is None else f"{requests:,}"


if __name__ == "__main__":
    main()
