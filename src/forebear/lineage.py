"""Lineage: walking run/version edges in the database, and the `Lineage` graph.

The walk goes one hop at a time for the whole frontier (two indexed queries per hop), so
hop distances come for free and only the part of the graph asked about is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import catalog
from .db.schema import EdgeRow, RunRow
from .errors import InvalidInput

if TYPE_CHECKING:
    import networkx as nx

    from .artifacts import ArtifactVersion
    from .store import Store

_CHUNK = 900  # stays under SQLite's bound-parameter limit


def _edges_of_versions(
    session: Session, version_ids: Sequence[int], direction: str
) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    for start in range(0, len(version_ids), _CHUNK):
        rows.extend(
            (int(v), str(r))
            for v, r in session.execute(
                select(EdgeRow.version_id, EdgeRow.run_id).where(
                    EdgeRow.direction == direction,
                    EdgeRow.version_id.in_(version_ids[start : start + _CHUNK]),
                )
            )
        )
    return rows


def _edges_of_runs(
    session: Session, run_ids: Sequence[str], direction: str
) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    for start in range(0, len(run_ids), _CHUNK):
        rows.extend(
            (str(r), int(v))
            for r, v in session.execute(
                select(EdgeRow.run_id, EdgeRow.version_id).where(
                    EdgeRow.direction == direction,
                    EdgeRow.run_id.in_(run_ids[start : start + _CHUNK]),
                )
            )
        )
    return rows


Edge = tuple[tuple[str, Any], tuple[str, Any]]


def walk(
    session: Session, start: int, upstream: bool, depth: int | None
) -> tuple[dict[int, int], set[Edge]]:
    """Versions reachable from ``start`` with their hop distance, and the data-flow edges
    crossed (``(("version", id), ("run", id))`` or the reverse)."""
    if depth is not None and depth < 0:
        raise InvalidInput(f"depth must be 0 or more, not {depth}")
    near_direction, far_direction = ("out", "in") if upstream else ("in", "out")
    distances = {start: 0}
    edges: set[Edge] = set()
    seen_runs: set[str] = set()
    frontier = [start]
    hop = 0
    while frontier and (depth is None or hop < depth):
        hop += 1
        runs: set[str] = set()
        for version_id, run_id in _edges_of_versions(session, frontier, near_direction):
            v, r = ("version", version_id), ("run", run_id)
            edges.add((r, v) if upstream else (v, r))
            runs.add(run_id)
        new_runs = sorted(runs - seen_runs)
        seen_runs.update(new_runs)
        next_frontier: list[int] = []
        for run_id, version_id in _edges_of_runs(session, new_runs, far_direction):
            v, r = ("version", version_id), ("run", run_id)
            edges.add((v, r) if upstream else (r, v))
            if version_id not in distances:
                distances[version_id] = hop
                next_frontier.append(version_id)
        frontier = sorted(set(next_frontier))
    return distances, edges


def build_lineage(
    store: Store,
    session: Session,
    root: ArtifactVersion,
    upstream: bool,
    downstream: bool,
    depth: int | None,
) -> Lineage:
    import networkx as nx

    edges: set[Edge] = set()
    version_ids: set[int] = {root.id}
    for direction, wanted in ((True, upstream), (False, downstream)):
        if wanted:
            distances, found = walk(session, root.id, direction, depth)
            edges |= found
            version_ids |= set(distances)
    graph = nx.DiGraph()
    versions = {}
    for version_id in sorted(version_ids):
        version = store._version(session, catalog.version_by_id(session, version_id))
        versions[version_id] = version
        graph.add_node(version.qualified_ref, **_version_attributes(version, session))
    run_ids = sorted({node[1] for edge in edges for node in edge if node[0] == "run"})
    for run_id in run_ids:
        row = session.get_one(RunRow, run_id)
        graph.add_node(f"run:{run_id}", **_run_attributes(row, session))
    for src, dst in edges:
        graph.add_edge(_node_id(src, versions), _node_id(dst, versions))
    return Lineage(graph, root.qualified_ref)


def _node_id(node: tuple[str, Any], versions: dict[int, ArtifactVersion]) -> str:
    kind, key = node
    return f"run:{key}" if kind == "run" else versions[key].qualified_ref


def _version_attributes(version: ArtifactVersion, session: Session) -> dict[str, Any]:
    return {
        "kind": "version",
        "ref": version.ref,
        "project": version.project,
        "name": version.name,
        "version": version.version,
        "type": version.type,
        "aliases": catalog.aliases_of(session, version.id),
        "digest": version.digest,
        "size": version.size,
        "created_at": version.created_at.isoformat(),
    }


def _run_attributes(row: RunRow, session: Session) -> dict[str, Any]:
    return {
        "kind": "run",
        "id": row.id,
        "project": catalog.project_name(session, row.project_id),
        "name": row.name,
        "status": row.status,
        "created_at": row.started_at.isoformat(),
    }


class Lineage:
    """Runs and versions around one version, as a `networkx.DiGraph` in data-flow
    direction (input version -> run -> output version)."""

    def __init__(self, graph: nx.DiGraph, root: str) -> None:
        self.graph = graph
        self.root = root

    def __repr__(self) -> str:
        versions = sum(1 for _, d in self.graph.nodes(data=True) if d["kind"] == "version")
        runs = self.graph.number_of_nodes() - versions
        return f"<Lineage of {self.root}: {versions} versions, {runs} runs>"

    def nodes(self) -> list[dict[str, Any]]:
        """Every node's attributes, with its ``node`` id; versions and runs alike."""
        return [{"node": n, **d} for n, d in sorted(self.graph.nodes(data=True))]

    def versions(self) -> list[str]:
        """Qualified refs of every version in the graph."""
        return sorted(n for n, d in self.graph.nodes(data=True) if d["kind"] == "version")

    def to_dot(self) -> str:
        from .render import to_dot

        return to_dot(self.graph, self.root)

    def to_mermaid(self) -> str:
        from .render import to_mermaid

        return to_mermaid(self.graph, self.root)

    def to_json(self) -> str:
        from .render import to_json

        return to_json(self.graph, self.root)

    def to_text(self) -> str:
        from .render import to_text

        return to_text(self.graph, self.root)

    def render(self, path: str | os.PathLike[str]) -> Path:
        """Write the diagram; the format comes from the suffix (.svg .png .pdf .dot .mmd
        .json). SVG, PNG and PDF need Graphviz's `dot` program."""
        from .render import write

        return write(self.graph, self.root, Path(path))

    def _repr_svg_(self) -> str:
        from .render import to_svg

        return to_svg(self.graph, self.root)


def iter_version_nodes(graph: nx.DiGraph) -> Iterable[tuple[str, dict[str, Any]]]:
    return ((n, d) for n, d in graph.nodes(data=True) if d["kind"] == "version")
