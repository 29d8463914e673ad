"""Lineage queries: multi-hop, depth and type filters, acyclic by construction, checked
against networkx on random graphs, and a query plan that ANALYZE cannot spoil."""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

import forebear
from forebear.db import runs as db_runs
from forebear.db import traversal
from forebear.db import versions as db_versions
from forebear.db.engine import ensure_schema, make_engine, read_session, write_session
from forebear.hashing import hash_bytes

# -- random DAGs against networkx ----------------------------------------------------------

# Each run reads some earlier versions (indices into the versions made so far, taken
# modulo their number) and writes 1-2 new ones.
runs_strategy = st.lists(
    st.tuples(st.lists(st.integers(0, 10_000), max_size=4), st.integers(1, 2)),
    min_size=1,
    max_size=25,
)


def build_catalog(plan: list[tuple[list[int], int]], db: Path) -> tuple[object, nx.DiGraph]:
    engine = make_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    reference = nx.DiGraph()
    versions: list[int] = []
    with write_session(engine) as session:
        for number, (inputs, outputs) in enumerate(plan):
            run = db_runs.create_run(
                session, run_id=f"r{number:07d}", project="p", name=f"run{number}",
                config={}, context={},
            )  # fmt: skip
            if versions:
                for index in sorted({i % len(versions) for i in inputs}):
                    db_runs.add_edge(session, run.pk, versions[index], "in")
                    reference.add_edge(("v", versions[index]), ("r", run.pk))
            for k in range(outputs):
                version, created = db_versions.commit_version(
                    session, project="p", name=f"a{number}-{k}", type_="dataset",
                    contents=db_versions.Contents(0, 0, ()),
                    digest=hash_bytes(f"{number}-{k}".encode()),
                    description=None, metadata={}, run_id=run.id, aliases=(),
                )  # fmt: skip
                assert created
                versions.append(version.id)
                reference.add_edge(("r", run.pk), ("v", version.id))
    return engine, reference


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs_strategy, st.data())
def test_queries_agree_with_networkx(
    plan: list[tuple[list[int], int]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine, reference = build_catalog(plan, Path(folder) / "c.db")
        versions = sorted(n[1] for n in reference if n[0] == "v")
        start = data.draw(st.sampled_from(versions))
        depth = data.draw(st.none() | st.integers(0, 4))
        node = ("v", start)
        with Session(engine) as session:
            for upstream, related in ((True, nx.ancestors), (False, nx.descendants)):
                expected = {n[1] for n in related(reference, node) if n[0] == "v"}
                assert traversal.closure(session, start, upstream) == expected | {start}
                walked = traversal.walk(session, start, upstream)
                graph = reference if not upstream else reference.reverse(copy=False)
                lengths = nx.single_source_shortest_path_length(graph, node)
                assert walked.distances == {n[1]: d // 2 for n, d in lengths.items() if n[0] == "v"}
                limited = traversal.walk(session, start, upstream, depth)
                assert limited.distances == {
                    v: d for v, d in walked.distances.items() if depth is None or d <= depth
                }
        engine.dispose()


# -- through the public API --------------------------------------------------------------


@pytest.fixture
def diamond(store: forebear.Store, make_tree: Callable[..., Path]) -> dict[str, forebear.Run]:
    """raw -> (clean, features) -> model -> report; evaluate only reads the model."""
    runs = {}

    def step(name: str, uses: list[str], logs: list[tuple[str, str]]) -> None:
        with forebear.init(project="p", name=name, store=store) as run:
            for ref in uses:
                run.use_artifact(ref)
            for artifact, type_ in logs:
                folder = make_tree(f"{name}-{artifact}", {"f": f"{name} {artifact}"})
                run.log_artifact(folder, name=artifact, type=type_)
        runs[name] = run

    step("ingest", [], [("raw", "dataset")])
    step("clean", ["raw"], [("clean", "dataset")])
    step("featurize", ["raw"], [("features", "dataset")])
    step("train", ["clean", "features"], [("model", "model")])
    step("report", ["model"], [("report", "evaluation")])
    step("evaluate", ["model"], [])
    return runs


def refs(versions: list[forebear.ArtifactVersion]) -> list[str]:
    return [v.ref for v in versions]


def test_diamond_depth_and_type(store: forebear.Store, diamond: dict[str, forebear.Run]) -> None:
    model = store.artifact("model")
    raw = store.artifact("raw")
    assert refs(model.upstream()) == ["clean:v0", "features:v0", "raw:v0"]  # raw once
    assert refs(model.upstream(depth=1)) == ["clean:v0", "features:v0"]
    assert refs(model.upstream(depth=0)) == []
    assert refs(raw.downstream()) == ["clean:v0", "features:v0", "model:v0", "report:v0"]
    assert refs(raw.downstream(type="model")) == ["model:v0"]
    assert refs(raw.downstream(type="evaluation", depth=2)) == []
    assert refs(raw.downstream(type="evaluation", depth=3)) == ["report:v0"]
    with pytest.raises(forebear.InvalidInput, match="depth"):
        model.upstream(depth=-1)

    lineage = store.lineage("model", upstream=True, downstream=True)
    graph = lineage.graph
    assert nx.is_directed_acyclic_graph(graph)
    runs = {d["name"] for _, d in graph.nodes(data=True) if d["kind"] == "run"}
    assert runs == {"ingest", "clean", "featurize", "train", "report", "evaluate"}
    evaluate = f"run:{diamond['evaluate'].id}"
    assert list(graph.predecessors(evaluate)) == ["p/model:v0"]
    assert list(graph.successors(evaluate)) == []  # a run that only consumes
    ingest = f"run:{diamond['ingest'].id}"
    assert list(graph.predecessors(ingest)) == []  # a run that only produces

    text = model.lineage().to_text().splitlines()
    assert text[0] == "model:v0 (latest) [model]"
    raw_lines = [line for line in text if "raw:v0" in line]
    assert len(raw_lines) == 2 and raw_lines[1].endswith("(see above)")  # diamond: once
    assert sum("run ingest" in line for line in text) == 1

    near = store.lineage("model", depth=1)
    assert sorted(near.versions()) == ["p/clean:v0", "p/features:v0", "p/model:v0"]
    assert ingest not in near.graph

    only_models = store.lineage("report", upstream=True, type="model")
    assert sorted(only_models.versions()) == ["p/model:v0", "p/report:v0"]
    assert nx.has_path(only_models.graph, ingest, "p/report:v0")  # bridged, not cut


def test_several_producers_and_consumers(
    store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    data = make_tree("data", {"x": "same bytes"})
    for name in ("first", "second"):
        with forebear.init(project="p", name=name, store=store) as run:
            run.log_artifact(data, name="ds")
    for name in ("reader-a", "reader-b"):
        with forebear.init(project="p", name=name, store=store) as run:
            run.use_artifact("ds")
    version = store.artifact("ds")
    assert [r.name for r in version.producers] == ["first", "second"]
    assert [r.name for r in version.consumers] == ["reader-a", "reader-b"]
    graph = version.lineage(upstream=True, downstream=True).graph
    assert graph.in_degree("p/ds:v0") == 2 and graph.out_degree("p/ds:v0") == 2


def test_lineage_cannot_loop(store: forebear.Store, make_tree: Callable[..., Path]) -> None:
    data = make_tree("data", {"x": "bytes"})
    with forebear.init(project="p", name="make", store=store) as run:
        original = run.log_artifact(data, name="ds")
    # A run re-creating the exact bytes of its own input is not that input's producer.
    with forebear.init(project="p", name="noop-clean", store=store) as run:
        used = run.use_artifact("ds")
        again = run.log_artifact(data, name="ds")
    assert again == used == original
    assert [r.name for r in original.producers] == ["make"]
    assert [r.name for r in original.consumers] == ["noop-clean"]
    # A run reading back its own output, or something made from it, is not its consumer.
    with forebear.init(project="p", name="long", store=store) as long_run:
        out = long_run.log_artifact(make_tree("out", {"o": "o"}), name="out")
        with forebear.init(project="p", name="derive", store=store) as derive:
            derive.use_artifact(out)
            derived = derive.log_artifact(make_tree("derived", {"d": "d"}), name="derived")
        assert long_run.use_artifact("derived") == derived
        assert long_run.use_artifact("out") == out
    assert store.run(long_run.id).inputs == []
    for ref in ("ds", "out", "derived"):
        graph = store.lineage(ref, upstream=True, downstream=True).graph
        assert nx.is_directed_acyclic_graph(graph)


def test_big_diagrams_collapse_into_explicit_more_nodes(
    store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    with forebear.init(project="p", name="source", store=store) as run:
        run.log_artifact(make_tree("src", {"s": "s"}), name="source")
    for i in range(12):
        with forebear.init(project="p", name=f"consumer-{i}", store=store) as run:
            run.use_artifact("source")
            run.log_artifact(make_tree(f"o{i}", {"o": str(i)}), name=f"out-{i}")
    lineage = store.lineage("source", upstream=True, downstream=True)
    assert lineage.graph.number_of_nodes() == 1 + 1 + 12 * 2
    dot = lineage.to_dot(max_nodes=10)
    hidden = [int(n) for n in re.findall(r"\+(\d+) more (?:up|down)stream", dot)]
    assert sum(hidden) == 26 - 10  # every node left out is counted, none cut silently
    assert "more downstream" in dot
    shown = re.findall(r"^\tn\d+ \[", dot, flags=re.MULTILINE)
    assert len(shown) == 10 + len(hidden)
    assert "more downstream" in lineage.to_mermaid(max_nodes=10)
    full = lineage.to_dot(max_nodes=None)
    assert "more downstream" not in full and full.count('label="out-') == 12
    svg = lineage.render(tmp_path / "big.svg", max_nodes=10).read_text()
    assert "more downstream" in svg
    # JSON is data, never collapsed
    assert '"out-11"' in lineage.render(tmp_path / "big.json", max_nodes=10).read_text()


def test_recursive_plan_survives_analyze(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    previous = None
    for i in range(30):
        with forebear.init(project="p", name=f"step{i}", store=local_store) as run:
            if previous:
                run.use_artifact(previous)
            previous = run.log_artifact(make_tree(f"d{i}", {"f": str(i)}), name=f"d{i}").ref
    database = local_store.db_url.removeprefix("sqlite:///")
    local_store.close()
    with sqlite3.connect(database) as raw:
        raw.execute("ANALYZE")
        assert raw.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'edges'").fetchone()[0]
    reopened = forebear.open(Path(database).parent)
    with read_session(reopened.backend.engine) as session:  # type: ignore[attr-defined]
        plan = " | ".join(
            row[3]
            for row in session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + traversal._CLOSURE.text,
                {"start": 1, "near": "out", "far": "in"},
            )
        )
    assert "BLOOM FILTER" not in plan
    assert "SEARCH near USING COVERING INDEX ix_edges_version_id_direction_run_pk" in plan
    assert "SEARCH far USING PRIMARY KEY" in plan
    assert len(reopened.artifact(previous or "").upstream()) == 29
