"""Lineage query speed on a generated store of about a million edges.

    python benchmarks/lineage_bench.py                         # SQLite only
    python benchmarks/lineage_bench.py --postgres URL          # and an existing PostgreSQL
    python benchmarks/lineage_bench.py --start-postgres        # and a throwaway PostgreSQL
    python benchmarks/lineage_bench.py --write docs/benchmarks.md

Measures, per database: the upstream of a version with about 10,000 ancestors (hop
distances included) and the downstream of a version with about 150,000 descendants,
through the frontier walk, the ids-only closure and the public API; the database size;
and, for comparison, loading the whole graph into networkx first.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_graph import Graph, generate, load

import forebear
from forebear.db import traversal
from forebear.db.engine import ensure_schema, make_engine
from forebear.objects import open_location

REPO = Path(__file__).resolve().parent.parent


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def pick(session: Session, candidates: list[int], upstream: bool, wanted: int) -> tuple[int, int]:
    sizes = [(len(traversal.closure(session, v, upstream)) - 1, v) for v in candidates]
    return min(sizes, key=lambda item: abs(item[0] - wanted))


def database_size(url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as connection:  # fold the write-ahead log in first
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    engine = create_engine(url)
    with engine.connect() as connection:
        size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return int(size or 0)


def networkx_baseline(url: str, start: int) -> tuple[float, float]:
    """Seconds to load every edge into a DiGraph, and to answer the upstream query there."""
    engine = make_engine(url)
    begin = time.perf_counter()
    graph = nx.DiGraph()
    with engine.connect() as connection:
        for run, direction, version in connection.execute(
            text("SELECT run_pk, direction, version_id FROM edges")
        ):
            if direction == "out":
                graph.add_edge(-run, version)
            else:
                graph.add_edge(version, -run)
    loaded = time.perf_counter() - begin
    begin = time.perf_counter()
    ancestors = {n for n in nx.ancestors(graph, start) if n > 0}
    lengths = nx.single_source_shortest_path_length(graph.reverse(copy=False), start)
    assert len(lengths) > len(ancestors)
    engine.dispose()
    return loaded, time.perf_counter() - begin


def bench(label: str, url: str, graph: Graph, repeat: int) -> dict[str, Any]:
    print(f"[{label}] loading {len(graph.edges):,} edges ...", flush=True)
    engine = make_engine(url)
    ensure_schema(engine)
    began = time.perf_counter()
    store_id = load(engine, graph)
    load_s = time.perf_counter() - began
    objects = tempfile.mkdtemp(prefix="forebear-bench-objects-")
    open_location(objects).ensure_format(store_id)
    store = forebear.Store(url, objects)
    rng = random.Random(7)
    with Session(engine) as session:
        up_n, up_v = pick(session, rng.sample(range(1, graph.versions), 400), True, 10_000)
        early = rng.sample(range(1, max(2, graph.versions // 15)), 60)
        down_n, down_v = pick(session, early, False, 150_000)
        walk_up = traversal.walk(session, up_v, True)
        hops = max(walk_up.distances.values())
        result: dict[str, Any] = {
            "label": label,
            "load_s": load_s,
            "up_n": up_n,
            "up_hops": hops,
            "down_n": down_n,
            "walk_up": median_ms(lambda: traversal.walk(session, up_v, True), repeat),
            "closure_up": median_ms(lambda: traversal.closure(session, up_v, True), repeat),
            "walk_down": median_ms(lambda: traversal.walk(session, down_v, False), repeat),
            "closure_down": median_ms(lambda: traversal.closure(session, down_v, False), repeat),
        }
    version = store.artifact(_ref(store, up_v))
    down_version = store.artifact(_ref(store, down_v))
    result["api_up"] = median_ms(version.upstream, repeat)
    result["api_down"] = median_ms(down_version.downstream, max(1, repeat // 2))
    result["lineage_up"] = median_ms(lambda: store.lineage(version), repeat)
    result["size"] = database_size(url)
    result["nx_load_s"], result["nx_query_s"] = networkx_baseline(url, up_v)
    store.close()
    engine.dispose()
    shutil.rmtree(objects, ignore_errors=True)
    return result


def _ref(store: forebear.Store, version_id: int) -> str:
    from forebear.db import versions as db_versions
    from forebear.db.engine import read_session

    with read_session(store.backend.engine) as session:
        data = db_versions.load_versions(session, [version_id])[version_id]
    return f"{data.project}/{data.name}:v{data.number}"


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"MemTotal:\s*(\d+)", meminfo.read_text())
        memory = f", {int(found.group(1)) / 1024**2:.0f} GiB RAM" if found else ""
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}"
    )


def table(results: list[dict[str, Any]], graph: Graph) -> str:
    lines = [
        f"Generated store: {graph.versions:,} versions of {graph.artifacts:,} artifacts, "
        f"{graph.runs:,} runs, {len(graph.edges):,} edges (pipelines of 3-40 stages, "
        "fan-in 1-5, reads across pipelines). Machine: " + machine() + ".",
        "",
        "| | " + " | ".join(r["label"] for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]

    def row(name: str, render: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {name} | " + " | ".join(render(r) for r in results) + " |")

    row("upstream size (versions, max hops)", lambda r: f"{r['up_n']:,} ({r['up_hops']} hops)")
    row("upstream, frontier walk with hop distances", lambda r: f"**{r['walk_up']:.1f} ms**")
    row("upstream, ids-only closure (recursive CTE)", lambda r: f"{r['closure_up']:.1f} ms")
    row("`version.upstream()` (ArtifactVersion objects)", lambda r: f"{r['api_up']:.0f} ms")
    row("`store.lineage(version)` (networkx graph)", lambda r: f"{r['lineage_up']:.0f} ms")
    row("downstream size (versions)", lambda r: f"{r['down_n']:,}")
    row("downstream, frontier walk with hop distances", lambda r: f"**{r['walk_down']:.0f} ms**")
    row("downstream, ids-only closure", lambda r: f"{r['closure_down']:.0f} ms")
    row("`version.downstream()`", lambda r: f"{r['api_down']:.0f} ms")
    row("database size", lambda r: f"{r['size'] / 1e6:.0f} MB")
    row("bulk load of the generated graph", lambda r: f"{r['load_s']:.0f} s")
    row(
        "networkx instead: load every edge, then query",
        lambda r: f"{r['nx_load_s']:.1f} s + {r['nx_query_s'] * 1000:.0f} ms",
    )
    return "\n".join(lines) + "\n"


def write_section(path: Path, body: str, mark: str = "lineage-bench") -> None:
    """Replace the text between this benchmark's markers in ``path`` (or append it)."""
    begin, end = f"<!-- {mark}:begin -->", f"<!-- {mark}:end -->"
    block = f"{begin}\n{body}{end}"
    current = path.read_text() if path.exists() else ""
    if begin in current:
        pattern = re.escape(begin) + ".*?" + re.escape(end)
        current = re.sub(pattern, lambda _m: block, current, flags=re.S)
    else:
        current += f"\n{block}\n"
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="a PostgreSQL URL whose database may be filled")
    parser.add_argument("--start-postgres", action="store_true", help="run a throwaway server")
    parser.add_argument("--write", type=Path, help="update the lineage section of this file")
    args = parser.parse_args()

    graph = generate(args.edges)
    results = []
    with tempfile.TemporaryDirectory(prefix="forebear-bench-") as folder:
        results.append(bench("SQLite", f"sqlite:///{folder}/meta.db", graph, args.repeat))
    pg_dir = None
    postgres = args.postgres
    if args.start_postgres:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "postgres.sh"), "start"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        values = dict(re.findall(r"export (\w+)=(\S+)", out))
        postgres, pg_dir = values["FOREBEAR_TEST_PG_URL"], values["FOREBEAR_TEST_PG_DIR"]
    try:
        if postgres:
            engine = create_engine(postgres)
            with engine.connect() as connection:
                version = connection.execute(text("SHOW server_version")).scalar()
            engine.dispose()
            results.append(bench(f"PostgreSQL {version}", postgres, graph, args.repeat))
    finally:
        if pg_dir:
            subprocess.run(["bash", str(REPO / "scripts" / "postgres.sh"), "stop", pg_dir])
    body = table(results, graph)
    print(body)
    if args.write:
        write_section(args.write, body)


if __name__ == "__main__":
    main()
