"""Generate a large, realistic lineage graph straight into a forebear catalog.

Shape: pipelines of 3-40 stages; each stage has 1-2 runs; each run reads 1-5 versions
(about 70 % from the previous stage, the rest from the three stages before it, and 5 % from some
other pipeline) and writes 1-3 new versions. Reads across pipelines make upstream chains
longer than any one pipeline (about 100 hops).

Used by `benchmarks/lineage_bench.py` (about a million edges) and by the tests (small).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine, insert, text

from forebear.db.schema import (
    ArtifactRow,
    EdgeRow,
    ProjectRow,
    RunRow,
    StoreInfoRow,
    VersionRow,
    utcnow,
)


@dataclass
class Graph:
    """Edges as ``(run_pk, direction, version_id)``; runs and versions numbered from 1."""

    versions: int = 0
    runs: int = 0
    edges: list[tuple[int, str, int]] = field(default_factory=list)
    # version id -> (artifact number, version number within that artifact)
    artifact_of: dict[int, tuple[int, int]] = field(default_factory=dict)
    artifacts: int = 0


def generate(target_edges: int, seed: int = 42, cross: float = 0.05) -> Graph:
    rng = random.Random(seed)
    graph = Graph()
    pipelines: list[list[list[int]]] = []  # pipeline -> stage -> version ids
    while len(graph.edges) < target_edges:
        stages: list[list[int]] = []
        pipelines.append(stages)
        for stage in range(rng.randint(3, 40)):
            produced: list[int] = []
            first_artifact = graph.artifacts + 1  # a stage writes up to three artifacts,
            numbers = [0, 0, 0]  # and each rerun of the stage adds versions to them
            for _ in range(rng.randint(1, 2)):
                graph.runs += 1
                run_pk = graph.runs
                if stage > 0:
                    inputs = set()
                    for _ in range(rng.randint(1, 5)):
                        roll = rng.random()
                        if roll < cross and len(pipelines) > 1:
                            other = rng.choice(pipelines[:-1])
                            pool = rng.choice(other)
                        elif roll < 0.73:
                            pool = stages[stage - 1]
                        else:
                            pool = stages[max(0, stage - rng.randint(1, 3))]
                        inputs.add(rng.choice(pool))
                    graph.edges.extend((run_pk, "in", v) for v in sorted(inputs))
                for output in range(rng.randint(1, 3)):
                    graph.versions += 1
                    graph.artifact_of[graph.versions] = (first_artifact + output, numbers[output])
                    numbers[output] += 1
                    graph.artifacts = max(graph.artifacts, first_artifact + output)
                    produced.append(graph.versions)
                    graph.edges.append((run_pk, "out", graph.versions))
            stages.append(produced)
    return graph


def run_id(pk: int) -> str:
    """An 8-character base-36 run id, unique per key."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    for _ in range(8):
        pk, rest = divmod(pk, 36)
        text = digits[rest] + text
    return text


def load(engine: Engine, graph: Graph, batch: int = 20_000) -> str:
    """Insert the graph as one project of single-version artifacts, in one transaction;
    returns the store id recorded with it (an object location opened with this catalog
    must carry the same id: its synthetic versions have no objects to recognise it by)."""
    now = utcnow()
    store_id = uuid.uuid4().hex
    with engine.begin() as connection:
        connection.execute(insert(StoreInfoRow), [{"key": "store_id", "value": store_id}])
        connection.execute(insert(ProjectRow), [{"id": 1, "name": "bench", "created_at": now}])

        def chunks(rows: list[dict[str, object]], table: object) -> None:
            for start in range(0, len(rows), batch):
                connection.execute(insert(table), rows[start : start + batch])  # type: ignore[arg-type]

        chunks(
            [
                {"id": i, "project_id": 1, "name": f"a{i}", "type": "dataset" if i % 3 else "model",
                 "created_at": now, "next_number": 0}
                for i in range(1, graph.artifacts + 1)
            ],
            ArtifactRow,
        )  # fmt: skip
        producer: dict[int, int] = {v: r for r, d, v in graph.edges if d == "out"}
        chunks(
            [
                {"pk": pk, "id": run_id(pk), "project_id": 1, "name": f"step-{pk}",
                 "status": "finished", "config": {}, "summary": {}, "context": {},
                 "started_at": now}
                for pk in range(1, graph.runs + 1)
            ],
            RunRow,
        )  # fmt: skip
        chunks(
            [
                {"id": i, "artifact_id": graph.artifact_of[i][0], "number": graph.artifact_of[i][1],
                 "digest": f"{i:032x}",
                 "hash_algorithm": "xxh3-128", "size": 0, "file_count": 0,
                 "metadata_": {}, "created_at": now, "created_by": run_id(producer[i])}
                for i in range(1, graph.versions + 1)
            ],
            VersionRow,
        )  # fmt: skip
        chunks(
            [{"run_pk": r, "direction": d, "version_id": v} for r, d, v in graph.edges],
            EdgeRow,
        )
    if engine.dialect.name == "postgresql":
        # What autovacuum would soon do on a live server: statistics and a visibility map
        # (so index-only scans need not visit the table).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return store_id
