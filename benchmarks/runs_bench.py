"""Listing very many runs: time and peak memory of `forebear runs`, the web UI's runs pages
and W&B's ``Api.runs``, each in a child process.

    python benchmarks/runs_bench.py                       # 100,000 runs
    python benchmarks/runs_bench.py --runs 2000           # a quick smoke run
    python benchmarks/runs_bench.py --write docs/benchmarks.md

Builds a store holding one run recorded by `forebear.init` (with this machine's context:
git state, command line, host, Python and package versions, about 4 KB of JSON), copied in
the catalog to the count asked for (one named ``wanted`` in the middle), then times each
listing as a child process: its wall time and peak resident memory (from ``wait4``).
Memory that stays the same however many runs there are is the point.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section
from speed_bench import MEASURE, Measure, child_env, default_forebear, describe

import forebear

MARK = "runs-bench"

WEB_PAGE = """
import sys
from starlette.testclient import TestClient
import forebear
from forebear.web.app import create_app
with forebear.open(sys.argv[1]) as store:
    client = TestClient(create_app(store), base_url="http://127.0.0.1")
    page = client.get("/runs", params={"page": sys.argv[2]})
    assert page.status_code == 200, page.status_code
"""

EXPORT_LOOP = """
import sys
import forebear
api = forebear.Api(sys.argv[1])
rows = [(run.id, len(run.summary)) for run in api.runs("bench")]  # W&B's export loop
assert len(rows) == int(sys.argv[2]), len(rows)
"""

FILTERED = """
import sys
import forebear
found = forebear.Api(sys.argv[1]).runs("bench", filters={"display_name": "wanted"})
assert [run.name for run in found] == ["wanted"], found
"""


def build(folder: Path, count: int) -> None:
    """A store in ``folder`` holding ``count`` runs like a real one (see the docstring)."""
    with (
        forebear.open(folder) as store,
        forebear.init(project="bench", name="first", config={"lr": 0.1}, store=store) as run,
    ):
        run.log({"loss": 0.5, "acc": 0.9})
    db = sqlite3.connect(folder / "meta.db")
    with db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(runs)") if row[1] != "pk"]
        (first,) = db.execute(f"SELECT {', '.join(columns)} FROM runs").fetchall()
        values = dict(zip(columns, first, strict=True))
        started = values["started_at"]
        marks = ", ".join("?" for _ in columns)
        insert = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})"
        for batch in range(1, count, 10_000):
            rows = []
            for number in range(batch, min(batch + 10_000, count)):
                values["id"] = f"c{number:07d}"
                values["name"] = "wanted" if number == count // 2 else f"copy-{number}"
                values["started_at"] = started - (count - number) * 1_000_000  # a second apart
                rows.append(tuple(values[c] for c in columns))
            db.executemany(insert, rows)
    db.close()


def measured(cmd: list[str], log: Path) -> Measure:
    """One child process (its output thrown away, its errors kept in ``log``)."""
    stats = log.with_suffix(".rusage")
    with log.open("wb") as errors:
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", MEASURE, str(stats), *cmd],
            env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
    try:
        took, peak_kib, code = stats.read_text().split()
    except (OSError, ValueError):
        return Measure(0, 0, False, "the measuring helper failed")
    ok = int(code) == 0
    error = "" if ok else log.read_text(errors="replace").strip()[-500:]
    return Measure(float(took), int(peak_kib) / 1024, ok, error)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--forebear", type=Path, default=default_forebear())
    parser.add_argument("--write", type=Path, help="update the runs section of this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runs-bench-") as folder:
        work = Path(folder)
        store = work / "store"
        began = time.perf_counter()
        build(store, args.runs)
        built = time.perf_counter() - began
        where = [str(args.forebear), "--db", f"sqlite:///{store}/meta.db", "--objects", str(store)]
        python = [sys.executable, "-c"]
        last = -(-args.runs // 50)  # the web UI shows 50 runs a page
        steps = [
            ("`forebear runs` (a table, piped)", [*where, "runs"]),
            ("`forebear runs --json`", [*where, "runs", "--json"]),
            ("`forebear runs -n 20`", [*where, "runs", "-n", "20"]),
            ("web UI, first runs page", [*python, WEB_PAGE, str(store), "1"]),
            (f"web UI, last runs page ({last:,})", [*python, WEB_PAGE, str(store), str(last)]),
            (
                "W&B's export loop: `for run in api.runs(project)`",
                [*python, EXPORT_LOOP, str(store), str(args.runs)],
            ),
            ("`api.runs(project, filters=...)` finding one run", [*python, FILTERED, str(store)]),
        ]
        results = [
            (label, measured(cmd, work / f"step{index}.log"))
            for index, (label, cmd) in enumerate(steps)
        ]
    lines = [
        "## Listing very many runs",
        "",
        "`python benchmarks/runs_bench.py --write docs/benchmarks.md` builds a store of "
        f"{args.runs:,} runs, each a copy of one run `forebear.init` recorded with this "
        f"machine's context (about 4 KB of JSON; built in {built:.0f} s), and times each "
        "listing as a child process: wall time and peak resident memory (from `wait4`). "
        f"Machine: {machine()}.",
        "",
        f"| listing | {args.runs:,} runs |",
        "|---|---|",
        *[f"| {label} | {describe(measure)} |" for label, measure in results],
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        write_section(args.write, body, MARK)
    if not all(measure.ok for _, measure in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
