"""Logging speed, memory and bytes stored: forebear side by side with DVC and MLflow.

    python benchmarks/speed_bench.py                                  # forebear, and peers found
    python benchmarks/speed_bench.py --setup-peers                    # install DVC, MLflow first
    python benchmarks/speed_bench.py --scale 0.01 --tools forebear    # a quick smoke run
    python benchmarks/speed_bench.py --write docs/benchmarks.md

Builds the same datasets for every tool (one 2 GiB file; 50,000 files of 8 KiB; a 512 MiB
CSV table, then three more versions of it: 1 % more rows appended, 1 % of rows edited in one
block mid-file, 1 % of rows edited at scattered places), and times each tool's first log,
unchanged re-log and later versions as a child process, with the child's peak memory and the
bytes its store holds after each step. DVC and MLflow run from their own virtual environments
(default benchmarks/.venvs/dvc and benchmarks/.venvs/mlflow, made by --setup-peers); a peer
that is not installed is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section

MARK = "speed-bench"
REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / "benchmarks" / ".venvs"
TIMES = "\u00d7"
MiB = 1 << 20
GiB = 1 << 30
TOOLS = ("forebear", "forebear-packs", "dvc", "mlflow")
LABELS = {
    "forebear": "forebear, format 2",
    "forebear-packs": "forebear, format 3 (packs)",
    "dvc": "DVC",
    "mlflow": "MLflow",
    "cp": "plain copy (`cp`)",
}
FIRST, RELOG, SECOND = "first log", "unchanged re-log", "second version"
APPENDED, EDITED, SCATTERED = "v2: +1 % rows", "v3: 1 % edited mid-file", "v4: 1 % scattered"
# Data is this much older than the log that reads it, as in a pipeline: forebear hashes a
# file changed less than 2 s before a log again on the next log (racy-file rule).
SETTLE_SECONDS = 2.5

# A child forked from this process would report our own resident pages as its peak (exec keeps
# the pre-exec high-water mark), so a fresh interpreter forks the tool and reports wait4's
# ru_maxrss (KiB on Linux); its own few MiB before exec are the floor of what is measured.
MEASURE = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""

MLFLOW_DRIVER = '''\
"""Log a file or folder as MLflow artifacts of a new run (or, with 'init', make the store)."""
import os
import sys

import mlflow

action, uri, artifacts, path, name = sys.argv[1:6]
mlflow.set_tracking_uri(uri)
if action == "init":
    mlflow.create_experiment("bench", artifact_location=artifacts)
    sys.exit(0)
mlflow.set_experiment("bench")
with mlflow.start_run():
    if os.path.isdir(path):
        mlflow.log_artifacts(path, artifact_path=name)
    else:
        mlflow.log_artifact(path)
'''


@dataclass
class Measure:
    """One timed child process: wall time, its peak RSS, and the store size afterwards."""

    seconds: float
    peak_mib: float
    ok: bool
    error: str = ""
    stored: int | None = None


@dataclass
class Dataset:
    """A generated dataset, the steps run on it, and how a step's version is made in place
    from the previous one (untimed), with the data's size after it."""

    key: str
    title: str
    name: str
    source: Path
    size: int
    steps: tuple[str, ...]
    changes: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass
class Results:
    """Everything measured in one run, keyed by dataset, step and tool."""

    steps: dict[str, dict[str, dict[str, Measure]]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    help_seconds: float | None = None
    ls_seconds: float | None = None

    def put(self, dataset: str, step: str, tool: str, measure: Measure) -> None:
        self.steps.setdefault(dataset, {}).setdefault(step, {})[tool] = measure

    def get(self, dataset: str, step: str, tool: str) -> Measure | None:
        return self.steps.get(dataset, {}).get(step, {}).get(tool)


def child_env() -> dict[str, str]:
    """Environment for every child: no progress bars, no telemetry, no inherited store."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FOREBEAR_", "MLFLOW_", "DVC_")) and k != "VIRTUAL_ENV"
    }
    env.update(
        FOREBEAR_NO_PROGRESS="1",
        DVC_NO_ANALYTICS="1",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_child(cmd: list[str], cwd: Path, log: Path) -> Measure:
    """Run one command through the small helper, so its peak RSS is the tool's, not ours."""
    stats = log.with_suffix(".rusage")
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", MEASURE, str(stats), *cmd],
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        seconds, peak_kib, code = stats.read_text().split()
    except (OSError, ValueError):
        return Measure(0, 0, False, tail(log) or "the measuring helper failed")
    ok = int(code) == 0
    return Measure(float(seconds), int(peak_kib) / 1024, ok, "" if ok else tail(log))


def run_quiet(cmd: list[str], cwd: Path | None = None) -> str:
    """Run an untimed setup command and return its output; raise with the output if it fails."""
    done = subprocess.run(
        cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def tail(log: Path, lines: int = 15) -> str:
    """The end of a child's output, enough to say why it failed."""
    text = log.read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def tree_size(root: Path) -> int:
    """Apparent size (st_size) of the regular files under root, each inode counted once."""
    total, seen, stack = 0, set(), [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


def read_all(root: Path) -> None:
    """Read every byte once so each tool starts with the data in the page cache."""
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        with path.open("rb") as f:
            while f.read(MiB):
                pass


def copy_into(source: Path, dest: Path) -> None:
    """Untimed copy of a dataset into a tool's workspace (fresh mtimes, like new data)."""
    if source.is_dir():
        shutil.copytree(source, dest, copy_function=shutil.copyfile)
    else:
        shutil.copyfile(source, dest)


def replace_file(path: Path, data: bytes) -> None:
    """Write a new file and rename it over the old one, never writing through a tool's inode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".new")
    temp.write_bytes(data)
    os.replace(temp, path)


# ---- datasets -------------------------------------------------------------------------------


def make_big(folder: Path, scale: float) -> Dataset:
    """One file of incompressible bytes, so no tool can win by compressing."""
    size = max(1, int(2 * GiB * scale))
    path = folder / "big.bin"
    with path.open("wb") as f:
        left = size
        while left:
            block = min(MiB, left)
            f.write(os.urandom(block))
            left -= block
    title = f"One {human(size)} file of random bytes"
    return Dataset("big", title, "big.bin", path, size, (FIRST, RELOG))


def make_small(folder: Path, scale: float) -> Dataset:
    """Many 8 KiB files in folders of 500, where per-file overhead dominates."""
    count = max(1, round(50_000 * scale))
    rng = random.Random(1)
    root = folder / "small"
    for i in range(count):
        sub = root / f"d{i // 500:03d}"
        if i % 500 == 0:
            sub.mkdir(parents=True)
        (sub / f"f{i:05d}.bin").write_bytes(rng.randbytes(8 * 1024))
    step = max(1, count // max(1, round(count * 0.01)))
    changed = {
        f"d{i // 500:03d}/f{i:05d}.bin": rng.randbytes(8 * 1024) for i in range(0, count, step)
    }
    added = {
        f"d{i // 500:03d}/new{i:05d}.bin": rng.randbytes(8 * 1024) for i in range(0, count, step)
    }
    edits = changed | added

    def to_second(workspace: Path) -> None:
        for rel, data in edits.items():
            replace_file(workspace / rel, data)

    title = (
        f"{count:,} files of 8 KiB (second version: {len(changed):,} changed, {len(added):,} added)"
    )
    size = count * 8 * 1024
    second = size + len(added) * 8 * 1024
    steps = (FIRST, RELOG, SECOND)
    return Dataset(
        "small", title, "small", root, size, steps, {SECOND: to_second}, {SECOND: second}
    )


def csv_rows(rng: random.Random, start: int, stop: int) -> bytes:
    """Deterministic rows of numbers and short text."""
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    lines = [
        f"{i},{1_600_000_000 + i * 7},{rng.choice(words)},{rng.random():.6f},"
        f"{rng.randint(0, 10**6)},{rng.choice(words)}-{rng.randint(0, 999)}\n"
        for i in range(start, stop)
    ]
    return "".join(lines).encode()


def make_table(folder: Path, scale: float) -> Dataset:
    """A 512 MiB CSV, then three versions made from it in turn: 1 % more rows appended; 1 %
    of the rows, in one block in the middle, each rewritten a little longer (every later
    offset shifts); 1 % of the rows rewritten the same way at scattered places."""
    target = max(1, int(512 * MiB * scale))
    rng = random.Random(2)
    path = folder / "table.csv"
    rows, size = 0, 0
    with path.open("wb") as f:
        f.write(b"id,time,user,value,count,label\n")
        while size < target:
            chunk = csv_rows(rng, rows, rows + 10_000)
            f.write(chunk)
            rows += 10_000
            size = f.tell()
    extra = csv_rows(rng, rows, rows + max(1, rows // 100))
    block = line_starts_in_block(rows)
    scattered = sorted(random.Random(4).sample(range(1, rows), max(1, rows // 100)))

    def append(workspace: Path) -> None:
        with workspace.open("ab") as f:
            f.write(extra)

    def edit_block(workspace: Path) -> None:
        data = workspace.read_bytes()
        replace_file(workspace, lengthen(data, line_offsets(data, block)))

    def edit_scattered(workspace: Path) -> None:
        data = workspace.read_bytes()
        replace_file(workspace, lengthen(data, line_offsets(data, scattered)))

    edited = len(block) * len(EDIT_MARK)
    sizes = {
        APPENDED: size + len(extra),
        EDITED: size + len(extra) + edited,
        SCATTERED: size + len(extra) + edited + len(scattered) * len(EDIT_MARK),
    }
    title = (
        f"A {human(size)} CSV of {rows:,} rows; v2 appends {len(extra) // 1024:,} KiB of rows, "
        f"v3 lengthens {len(block):,} rows in one block mid-file, v4 {len(scattered):,} rows "
        "at scattered places"
    )
    changes = {APPENDED: append, EDITED: edit_block, SCATTERED: edit_scattered}
    steps = (FIRST, APPENDED, EDITED, SCATTERED)
    return Dataset("table", title, "table.csv", path, size, steps, changes, sizes)


EDIT_MARK = b"-edited"


def line_starts_in_block(rows: int) -> list[int]:
    """The row numbers of 1 % of ``rows``, one block starting halfway."""
    return list(range(rows // 2, rows // 2 + max(1, rows // 100)))


def line_offsets(data: bytes, numbers: list[int]) -> list[int]:
    """Byte offsets of the end of each numbered line (0 is the header), in order."""
    wanted = iter(sorted(numbers))
    offsets: list[int] = []
    target = next(wanted, None)
    line, position = 0, -1
    while target is not None:
        position = data.index(b"\n", position + 1)
        if line == target:
            offsets.append(position)
            target = next(wanted, None)
        line += 1
    return offsets


def lengthen(data: bytes, line_ends: list[int]) -> bytes:
    """Each line ending at one of ``line_ends`` gets a longer last value."""
    parts, last = [], 0
    for end in line_ends:
        parts += [data[last:end], EDIT_MARK]
        last = end
    parts.append(data[last:])
    return b"".join(parts)


# ---- tools ----------------------------------------------------------------------------------


class Tool:
    """A tool under test: untimed store setup, the timed log command, and its store's size."""

    key = ""

    def workspace(self, folder: Path) -> Path:
        return folder / "work"

    def setup(self, folder: Path) -> None:
        self.workspace(folder).mkdir(parents=True)

    def command(self, folder: Path, name: str) -> tuple[list[str], Path]:
        raise NotImplementedError

    def stored(self, folder: Path) -> int:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def interpreter(self) -> Path:
        """The Python that runs the tool (its bytecode is compiled before timing)."""
        raise NotImplementedError


class Forebear(Tool):
    """forebear's own command line, with the catalog and objects in one store folder made
    in format 2 (one file per object, as forebear before packs)."""

    key = "forebear"
    store_format = "2"

    def __init__(self, exe: Path) -> None:
        self.exe = exe

    def setup(self, folder: Path) -> None:
        super().setup(folder)
        store = str(folder / "store")
        init = [str(self.exe), "--objects", store, "init", "--format", self.store_format]
        run_quiet(init, cwd=folder)

    def command(self, folder: Path, name: str) -> tuple[list[str], Path]:
        store, data = folder / "store", self.workspace(folder) / name
        return [str(self.exe), "--objects", str(store), "log", "-n", name, str(data)], folder

    def stored(self, folder: Path) -> int:
        return tree_size(folder / "store" / "objects")

    def version(self) -> str:
        return run_quiet([str(self.exe), "--version"]).rsplit(" ", 1)[-1]

    def interpreter(self) -> Path:
        return script_interpreter(self.exe)


class ForebearPacks(Forebear):
    """forebear on a store in format 3, as `forebear init` makes one: small files and
    chunks go into packs."""

    key = "forebear-packs"
    store_format = "3"

    def stored(self, folder: Path) -> int:
        return tree_size(folder / "store" / "objects") + tree_size(folder / "store" / "packs")


class Dvc(Tool):
    """DVC without git (init --no-scm), data inside the repository as DVC expects."""

    key = "dvc"

    def __init__(self, venv: Path) -> None:
        self.exe = venv / "bin" / "dvc"

    def workspace(self, folder: Path) -> Path:
        return folder / "repo"

    def setup(self, folder: Path) -> None:
        repo = self.workspace(folder)
        super().setup(folder)
        run_quiet([str(self.exe), "init", "--no-scm", "-q"], cwd=repo)
        for key, value in (
            ("core.analytics", "false"),
            ("core.check_update", "false"),
            ("core.site_cache_dir", str(folder / "site-cache")),
        ):
            run_quiet([str(self.exe), "config", key, value], cwd=repo)

    def command(self, folder: Path, name: str) -> tuple[list[str], Path]:
        return [str(self.exe), "add", name], self.workspace(folder)

    def stored(self, folder: Path) -> int:
        return tree_size(self.workspace(folder) / ".dvc" / "cache")

    def version(self) -> str:
        return run_quiet([str(self.exe), "--version"])

    def interpreter(self) -> Path:
        return script_interpreter(self.exe)


def script_interpreter(script: Path) -> Path:
    """The interpreter named by a console script's ``#!`` line."""
    with Path(shutil.which(str(script)) or script).open("rb") as file:
        first = file.readline().decode(errors="replace")
    return Path(first[2:].strip().split()[0]) if first.startswith("#!") else Path(sys.executable)


class Mlflow(Tool):
    """MLflow's Python API: a new run logging the data as artifacts, SQLite tracking store."""

    key = "mlflow"

    def __init__(self, venv: Path, driver: Path) -> None:
        self.python, self.driver = venv / "bin" / "python", driver

    def args(self, action: str, folder: Path, name: str) -> list[str]:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        data = self.workspace(folder) / name
        return [
            str(self.python),
            str(self.driver),
            action,
            uri,
            str(folder / "artifacts"),
            str(data),
            name,
        ]

    def setup(self, folder: Path) -> None:
        super().setup(folder)
        run_quiet(self.args("init", folder, "-"), cwd=folder)

    def command(self, folder: Path, name: str) -> tuple[list[str], Path]:
        return self.args("log", folder, name), folder

    def stored(self, folder: Path) -> int:
        return tree_size(folder / "artifacts")

    def version(self) -> str:
        return run_quiet([str(self.python), "-c", "import mlflow; print(mlflow.__version__)"])

    def interpreter(self) -> Path:
        return self.python


# ---- running --------------------------------------------------------------------------------


def run_tool(tool: Tool, dataset: Dataset, work: Path, results: Results) -> None:
    """All steps of one tool on one dataset, each from the state the previous step left."""
    folder = work / f"{tool.key}-{dataset.key}"
    folder.mkdir()
    try:
        tool.setup(folder)
        data = tool.workspace(folder) / dataset.name
        copy_into(dataset.source, data)
        time.sleep(SETTLE_SECONDS)
        for step in dataset.steps:
            if step in dataset.changes:
                dataset.changes[step](data)
                time.sleep(SETTLE_SECONDS)
            cmd, cwd = tool.command(folder, dataset.name)
            os.sync()
            log = work / f"{tool.key}-{dataset.key}-{step.replace(' ', '-')}.log"
            measure = run_child(cmd, cwd, log)
            measure.stored = tool.stored(folder)
            results.put(dataset.key, step, tool.key, measure)
            print(f"  {tool.key:8} {step:17} {describe(measure)}", file=sys.stderr)
            if not measure.ok:
                break
        else:
            if tool.key == "forebear":
                store = str(folder / "store")
                results.ls_seconds = best_of_five([str(tool.exe), "--objects", store, "ls"], work)
    except RuntimeError as exc:
        results.put(dataset.key, dataset.steps[0], tool.key, Measure(0, 0, False, str(exc)))
        print(f"  {tool.key:8} setup failed: {exc}", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_copy(dataset: Dataset, work: Path, results: Results) -> None:
    """The floor every tool is compared with: cp of the same data, on the same disk."""
    dest = work / f"copy-of-{dataset.name}"
    os.sync()
    cmd = ["cp", "-r", str(dataset.source), str(dest)]
    measure = run_child(cmd, work, work / f"cp-{dataset.key}.log")
    measure.stored = tree_size(dest) if dest.is_dir() else dest.stat().st_size
    results.put(dataset.key, FIRST, "cp", measure)
    print(f"  {'cp':8} {FIRST:17} {describe(measure)}", file=sys.stderr)
    shutil.rmtree(dest) if dest.is_dir() else dest.unlink()


def best_of_five(cmd: list[str], work: Path) -> float:
    """The fastest of five runs of a quick command (`forebear --help`: the start-up cost
    every command pays; `forebear ls`: opening a store and listing it)."""
    return min(run_child(cmd, work, work / "quick.log").seconds for _ in range(5))


def setup_peer(venv: Path, package: str) -> None:
    """python3 -m venv, pip install uv, then uv pip install the peer; never stops the run."""
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            run_quiet([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)])
        if not (venv / "bin" / "uv").exists():
            run_quiet([str(python), "-m", "pip", "install", "-q", "uv"])
        run_quiet(
            [
                str(venv / "bin" / "uv"),
                "pip",
                "install",
                "-q",
                "--compile-bytecode",
                "--python",
                str(python),
                package,
            ]
        )
        print(f"installed {package} in {venv}", file=sys.stderr)
    except RuntimeError as exc:
        print(f"could not install {package}: {exc}", file=sys.stderr)


def peers(args: argparse.Namespace, work: Path, results: Results) -> list[Tool]:
    """The tools asked for that are installed; the others are recorded as not installed."""
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    found: list[Tool] = []
    for key in wanted:
        tool: Tool
        if key == "forebear":
            tool = Forebear(args.forebear)
        elif key == "forebear-packs":
            tool = ForebearPacks(args.forebear)
        elif key == "dvc":
            tool = Dvc(args.dvc_venv)
        elif key == "mlflow":
            driver = work / "mlflow_driver.py"
            driver.write_text(MLFLOW_DRIVER)
            tool = Mlflow(args.mlflow_venv, driver)
        else:
            raise SystemExit(f"unknown tool {key!r}; choose from {', '.join(TOOLS)}")
        try:
            results.versions[key] = tool.version()
            found.append(tool)
        except (RuntimeError, OSError):
            results.missing[key] = "not installed"
            continue
        compile_bytecode(tool.interpreter())
    return found


def compile_bytecode(python: Path) -> None:
    """Compile every module the tool's interpreter can import, as ``pip install`` does: the
    children run with PYTHONDONTWRITEBYTECODE, so a tool installed without its bytecode
    (``uv pip install`` leaves it out, an editable install has none) would compile its
    modules again on every command. Quick when they are compiled already."""
    folders = run_quiet([str(python), "-c", COMPILED_FOLDERS]).split("\n")
    for folder in filter(None, folders):
        try:
            run_quiet([str(python), "-m", "compileall", "-q", "-j0", folder])
        except RuntimeError as exc:  # an unreadable file: that module compiles when used
            print(f"could not compile all of {folder}: {exc}", file=sys.stderr)


# site-packages, and the source folder of an editable forebear
COMPILED_FOLDERS = """
import importlib.util, os, sysconfig
print(sysconfig.get_paths()["purelib"])
spec = importlib.util.find_spec("forebear")
if spec is not None and spec.origin:
    print(os.path.dirname(spec.origin))
"""


# ---- report ---------------------------------------------------------------------------------


def human(size: float) -> str:
    """Bytes in binary units, as the tables print them."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def seconds(value: float) -> str:
    return f"{value:.2f}" if value < 9.995 else f"{value:.1f}"


def describe(measure: Measure) -> str:
    if not measure.ok:
        return "failed: " + (measure.error.splitlines() or [""])[-1]
    stored = "" if measure.stored is None else f", stores {human(measure.stored)}"
    return f"{seconds(measure.seconds)} s, {measure.peak_mib:.0f} MiB{stored}"


def filesystem(path: Path) -> str:
    """The filesystem type under path: the longest matching mount point in /proc/mounts."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            inside = str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount
            if inside and len(mount) >= len(best):
                best, kind = mount, parts[2]
    except OSError:
        kind = (
            subprocess.run(
                ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True
            ).stdout.strip()
            or kind
        )
    return kind


def step_table(dataset: Dataset, results: Results, tools: list[str]) -> str:
    """Time and peak RSS per step, two columns per tool."""
    columns = [*tools, "cp"]
    head = "| step | " + " | ".join(f"{LABELS[t]} s | {LABELS[t]} MiB" for t in columns) + " |"
    lines = [head, "|---" * (1 + 2 * len(columns)) + "|"]
    for step in dataset.steps:
        cells = []
        for tool in columns:
            measure = results.get(dataset.key, step, tool)
            if measure is None:
                cells += ["", ""]
            elif not measure.ok:
                cells += ["failed", ""]
            else:
                cells += [seconds(measure.seconds), f"{measure.peak_mib:.0f}"]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stored_table(datasets: list[Dataset], results: Results, tools: list[str]) -> str:
    """Bytes in each store after each step, new bytes in parentheses."""
    lines = [
        "| dataset, step | data | " + " | ".join(LABELS[t] for t in tools) + " |",
        "|---" * (2 + len(tools)) + "|",
    ]
    for dataset in datasets:
        before: dict[str, int] = {}
        for step in dataset.steps:
            data = dataset.sizes.get(step, dataset.size)
            cells = []
            for tool in tools:
                measure = results.get(dataset.key, step, tool)
                if measure is None or measure.stored is None or not measure.ok:
                    cells.append("")
                    continue
                new = measure.stored - before.get(tool, 0)
                before[tool] = measure.stored
                cells.append(f"{human(measure.stored)} (+{human(new)})")
            label = f"{dataset.key}, {step}"
            lines.append(f"| {label} | {human(data)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio(results: Results, dataset: str, step: str, tool: str, other: str) -> str:
    """forebear's time as a multiple of another tool's, or why there is none."""
    mine, theirs = results.get(dataset, step, tool), results.get(dataset, step, other)
    if mine is None or theirs is None or not (mine.ok and theirs.ok):
        return f"n/a ({LABELS[other]} {results.missing.get(other, 'not measured')})"
    return (
        f"**{mine.seconds / theirs.seconds:.2f}{TIMES}** ({seconds(mine.seconds)} s vs "
        f"{seconds(theirs.seconds)} s)"
    )


def new_bytes(results: Results, dataset: Dataset, step: str, tool: str) -> str:
    """Bytes a tool added to its store for one step's version, and their share of the data."""
    steps = dataset.steps
    last = results.get(dataset.key, step, tool)
    prior = results.get(dataset.key, steps[steps.index(step) - 1], tool)
    if last is None or prior is None or last.stored is None or prior.stored is None:
        return f"{LABELS[tool]} n/a"
    added = last.stored - prior.stored
    share = 100 * added / dataset.sizes.get(step, dataset.size)
    return f"{LABELS[tool]} {human(added)} ({share:.1f} %)"


def ratios(datasets: list[Dataset], results: Results, tools: list[str]) -> list[str]:
    """The targets, each as the number of the store a new user gets (format 3, when it
    ran) over its comparison."""
    by_key = {d.key: d for d in datasets}
    mine = "forebear-packs" if "forebear-packs" in tools else "forebear"
    name = LABELS[mine]
    out = []
    if "big" in by_key:
        out.append(
            f"{by_key['big'].title}, first log: {name} / DVC "
            f"{ratio(results, 'big', FIRST, mine, 'dvc')}; {name} / plain copy "
            f"{ratio(results, 'big', FIRST, mine, 'cp')}"
        )
        out.append(
            f"Same file, unchanged re-log: {name} / DVC {ratio(results, 'big', RELOG, mine, 'dvc')}"
        )
    if "small" in by_key:
        out.append(
            f"{by_key['small'].title.split(' (')[0]}, first log: {name} / DVC "
            f"{ratio(results, 'small', FIRST, mine, 'dvc')}; {name} / MLflow "
            f"{ratio(results, 'small', FIRST, mine, 'mlflow')}; {name} / `cp -r` "
            f"{ratio(results, 'small', FIRST, mine, 'cp')}"
        )
        out.append(
            f"Same files, unchanged re-log: {name} / DVC "
            f"{ratio(results, 'small', RELOG, mine, 'dvc')}"
        )
    for dataset in datasets:
        for step in dataset.changes:
            added = "; ".join(new_bytes(results, dataset, step, t) for t in tools)
            out.append(f"New bytes stored for {dataset.key}, {step} (share of its size): {added}")
    peaks = [
        (m.peak_mib, f"{LABELS[tool]}, {key}, {step}")
        for key, steps in results.steps.items()
        for step, by_tool in steps.items()
        for tool, m in by_tool.items()
        if tool.startswith("forebear") and m.ok
    ]
    if peaks:
        peak, where = max(peaks)
        out.append(f"forebear's peak memory over all steps: **{peak:.0f} MiB** ({where})")
    if results.help_seconds is not None:
        out.append(f"`forebear --help`: **{results.help_seconds * 1000:.0f} ms** (best of 5)")
    if results.ls_seconds is not None:
        out.append(
            f"`forebear ls` of the last store: **{results.ls_seconds * 1000:.0f} ms** (best of 5)"
        )
    return [f"- {line}" for line in out]


def report(
    datasets: list[Dataset], results: Results, tools: list[str], scale: float, work: Path
) -> str:
    """The markdown section: method, machine, one table per dataset, bytes stored, ratios."""
    versions = ", ".join(f"{LABELS[k]} {v}" for k, v in results.versions.items())
    missing = "".join(f"; {LABELS[k]} {why}" for k, why in results.missing.items())
    store = ""
    if "mlflow" in results.versions:
        store = ", with a SQLite tracking store made untimed (this MLflow refuses the file store)"
    parts = [
        "## Logging speed against DVC and MLflow\n",
        "`python benchmarks/speed_bench.py --setup-peers --write docs/benchmarks.md` builds the "
        "same datasets for every tool, copies each into a fresh folder per tool (untimed), and "
        "runs every step as a child process: wall time, and the child's peak resident memory "
        "from `wait4` (forked by a small helper whose own ~7 MiB before `exec` are the floor). "
        "forebear runs `forebear --objects STORE log -n NAME PATH` after an untimed "
        "`forebear init --format 2` (one file per object) or `forebear init` (format 3, "
        "packs, what a new store is); DVC runs `dvc add` in a repository made by "
        "`dvc init --no-scm` (untimed, analytics off); MLflow logs the data with "
        f"`mlflow.log_artifacts` / `log_artifact` in a new run, each run a new process{store}. "
        "The second version is made in place in each tool's copy (untimed). Runs are warm: "
        "the data was read once after it was built and sits in the page cache; nothing is "
        "dropped from it; dirty pages are flushed (`sync`) before each step, none are forced "
        "out after. forebear's times include making its new objects durable (one `syncfs` "
        "before its commit); DVC, MLflow and `cp` leave their writes in the page cache. Data "
        f"is changed at least {SETTLE_SECONDS:g} s before the step that logs it. Bytes stored "
        "are apparent sizes (`st_size`) of the files under forebear's "
        "`objects/`, DVC's `.dvc/cache` and MLflow's artifact folder.\n",
        f"Machine: {machine()}; workdir filesystem {filesystem(work)}. "
        f"Versions: {versions}{missing}. Scale {scale:g}.\n",
    ]
    for dataset in datasets:
        parts.append(f"### {dataset.title}\n")
        parts.append(step_table(dataset, results, tools) + "\n")
    parts.append("### Bytes stored after each step (new bytes in parentheses)\n")
    parts.append(stored_table(datasets, results, tools) + "\n")
    parts.append("### Ratios\n")
    parts.append(f"forebear's time over the other's: below 1{TIMES} forebear is faster.\n")
    parts.append("\n".join(ratios(datasets, results, tools)) + "\n")
    failures = [
        f"- {LABELS[tool]}, {key}, {step}:\n\n```\n{m.error}\n```"
        for key, steps in results.steps.items()
        for step, by_tool in steps.items()
        for tool, m in by_tool.items()
        if not m.ok
    ]
    if failures:
        parts.append("### Failures\n")
        parts.append("\n".join(failures) + "\n")
    return "\n".join(parts)


# ---- main -----------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every dataset")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    parser.add_argument("--dvc-venv", type=Path, default=VENVS / "dvc")
    parser.add_argument("--mlflow-venv", type=Path, default=VENVS / "mlflow")
    parser.add_argument("--setup-peers", action="store_true", help="install DVC and MLflow first")
    parser.add_argument("--forebear", type=Path, default=default_forebear())
    parser.add_argument("--workdir", type=Path, help="parent of the scratch folder (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="leave the scratch folder (its logs)")
    parser.add_argument("--write", type=Path, help="update this benchmark's section of this file")
    parser.add_argument(
        "--datasets", default="big,small,table", help="comma-separated subset of big,small,table"
    )
    return parser.parse_args()


def default_forebear() -> Path:
    """The forebear next to the running interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "forebear"
    return beside if beside.exists() else Path(shutil.which("forebear") or "forebear")


def main() -> None:
    args = parse()
    if args.setup_peers:
        setup_peer(args.dvc_venv, "dvc")
        setup_peer(args.mlflow_venv, "mlflow")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="speed-bench-", dir=args.workdir))
    results = Results()
    started = time.perf_counter()
    try:
        tools = peers(args, work, results)
        keys = [t.key for t in tools]
        if "forebear" in keys:
            results.help_seconds = best_of_five([str(args.forebear), "--help"], work)
        makers = {"big": make_big, "small": make_small, "table": make_table}
        datasets = []
        for key in [k.strip() for k in args.datasets.split(",") if k.strip()]:
            print(f"{key}: building", file=sys.stderr)
            dataset = makers[key](work, args.scale)
            read_all(dataset.source)
            run_copy(dataset, work, results)
            for tool in tools:
                run_tool(tool, dataset, work, results)
            dataset.source.unlink() if dataset.source.is_file() else shutil.rmtree(dataset.source)
            datasets.append(dataset)
        body = report(datasets, results, keys, args.scale, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(body)
    print(
        f"total {time.perf_counter() - started:.0f} s; python {platform.python_version()}",
        file=sys.stderr,
    )
    if args.write:
        write_section(args.write, body, MARK)


if __name__ == "__main__":
    main()
