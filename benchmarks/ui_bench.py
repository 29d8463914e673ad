"""Web UI page times on large stores: an artifact with 100,000 files, a store with 10,000
versions. Catalog rows are generated directly (the pages never read object bytes).

    python benchmarks/ui_bench.py [--files 100000] [--versions 10000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section

import forebear
from forebear.db import runs as db_runs
from forebear.db import versions as db_versions
from forebear.db.engine import write_session
from forebear.hashing import hash_bytes
from forebear.manifest import Manifest, ManifestEntry
from forebear.web.app import create_app

MARK = "ui-bench"


def _contents(manifest: Manifest) -> db_versions.Contents:
    return db_versions.Contents(
        sum(e.size for e in manifest.entries),
        len(manifest.entries),
        [e.values() for e in manifest.entries],
    )


def fill(store: forebear.Store, files: int, versions: int) -> None:
    with write_session(store.backend.engine) as session:
        run = db_runs.create_run(
            session, run_id="bench000", project="bench", name="generate", config={}, context={}
        )
        big = Manifest(
            tuple(
                ManifestEntry(
                    f"shard-{i // 1000:03d}/part-{i:06d}.bin", hash_bytes(str(i).encode()), i
                )
                for i in range(files)
            )
        )
        db_versions.commit_version(
            session, project="bench", name="many-files", type_="dataset", contents=_contents(big),
            digest=big.digest, description="100k files", metadata={}, run_id=run.id, aliases=(),
        )  # fmt: skip
    per_artifact = 100
    for a in range(versions // per_artifact):
        with write_session(store.backend.engine) as session:
            for n in range(per_artifact):
                one = Manifest((ManifestEntry("f.bin", hash_bytes(f"{a}-{n}".encode()), 1),))
                db_versions.commit_version(
                    session, project="bench", name=f"art-{a:04d}", type_="model",
                    contents=_contents(one), digest=one.digest, description=None, metadata={"n": n},
                    run_id=run.id, aliases=(),
                )  # fmt: skip


def timed(client: TestClient, path: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, forebear.open(folder) as store:
        began = time.perf_counter()
        fill(store, args.files, args.versions)
        filled = time.perf_counter() - began
        client = TestClient(create_app(store), base_url="http://127.0.0.1")
        rows = [
            ("home page (every artifact's latest version)", "/"),
            ("home page, JSON", "/api/artifacts"),
            (
                f"version page of an artifact with {args.files:,} files (page 1)",
                "/artifacts/bench/many-files/v0",
            ),
            ("same, last page of files", "/artifacts/bench/many-files/v0?page=500"),
            ("artifact page with 100 versions", "/artifacts/bench/art-0000"),
            ("runs page", "/runs"),
        ]
        results = [(label, timed(client, path)) for label, path in rows]
    lines = [
        f"Store: {args.versions + 1:,} versions in {args.versions // 100 + 1:,} artifacts, one of "
        f"them with {args.files:,} files (catalog filled in {filled:.0f} s). Machine: "
        f"{machine()}. Median of 5 requests, in process.",
        "",
        "| page | time |",
        "|---|---|",
        *[f"| {label} | {ms:.0f} ms |" for label, ms in results],
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        write_section(args.write, body, MARK)


if __name__ == "__main__":
    main()
