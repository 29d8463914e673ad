"""Stores with very many runs: the command line, the web UI and W&B's ``Api.runs`` read
them a page at a time, so memory does not grow with the number of runs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import forebear

from .conftest import clean_env

MEMORY_PROBE = """
import contextlib, json, sys, tracemalloc
import forebear
from forebear import run_listing
from forebear.cli.app import main
run_listing.PAGE = 100
store, out = sys.argv[1], sys.argv[2]
where = ["--db", f"sqlite:///{store}/meta.db", "--objects", store]
with open(out, "w") as listed, contextlib.redirect_stdout(listed):
    main([*where, "runs", "--project", "none", "--json"])  # what every listing imports
    tracemalloc.start()
    main([*where, "runs", "--json"])
cli = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
with forebear.open(store) as opened:
    found = forebear.Api(store=opened).runs("p", filters={"display_name": "wanted"})
    assert [run.name for run in found] == ["wanted"], found
    api = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    every = sum(1 for run in forebear.Api(store=opened).runs("p", order="-created_at"))
    assert every == len(forebear.Api(store=opened).runs("p")), every
loop = tracemalloc.get_traced_memory()[1]
print(json.dumps({"cli": cli, "api": api, "loop": loop}))
"""


def store_with_runs(path: Path, count: int) -> list[str]:
    """A store holding ``count`` runs like a real one (the context of this machine), with
    one named ``wanted`` in the middle; their ids, newest first."""
    with (
        forebear.open(path) as store,
        forebear.init(project="p", name="first", store=store, config={"lr": 0.1}) as run,
    ):
        run.log({"loss": 0.5})
    db = sqlite3.connect(path / "meta.db")
    with db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(runs)") if row[1] != "pk"]
        (first,) = db.execute(f"SELECT {', '.join(columns)} FROM runs").fetchall()
        copies = []
        for number in range(1, count):
            values = dict(zip(columns, first, strict=True))
            values["id"] = f"c{number:07d}"
            values["name"] = "wanted" if number == count // 2 else f"copy-{number}"
            values["started_at"] = first[columns.index("started_at")] + number
            copies.append(tuple(values[c] for c in columns))
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})", copies)
        ids = [row[0] for row in db.execute("SELECT id FROM runs ORDER BY started_at DESC")]
    db.close()
    return ids


def test_memory_does_not_grow_with_the_number_of_runs(tmp_path: Path) -> None:
    """Python's traced allocations for `forebear runs --json`, for a filtered
    ``Api.runs`` and for a loop over every run of ``Api.runs`` (W&B's export loop), over
    300 and 1,800 runs (pages scaled down to 100): the larger may not need more.
    Measured: 5.5 and 5.6 MB to list, 5.8 and 6.2 MB to filter, 6.0 and 6.5 MB to loop;
    before runs were read by page, 17 and 103 MB to list, 13 and 49 MB to filter."""

    def probe(count: int) -> dict[str, int]:
        ids = store_with_runs(tmp_path / f"store{count}", count)
        out = tmp_path / f"runs{count}.json"
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(tmp_path / f"store{count}"), str(out)],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        result: dict[str, int] = json.loads(done.stdout)
        listed = json.loads(out.read_text().split("\n", 1)[-1])  # after the "[]" of none
        assert [run["id"] for run in listed] == ids  # every run, newest first, once
        return result

    small, large = probe(300), probe(1800)
    assert large["cli"] < small["cli"] * 1.25, (small, large)
    assert large["api"] < small["api"] * 1.25, (small, large)
    assert large["loop"] < small["loop"] * 1.25, (small, large)
