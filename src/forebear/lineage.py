"""The `Lineage` graph: runs and versions around one version, as a networkx DiGraph.

The backend does the traversal (in the database, for a local store) and hands over what
it found (`records.LineageData`); this module turns it into a graph with the attributes
diagrams and users need. networkx is only used on the part of the graph asked about.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .records import LineageData
from .render import DEFAULT_MAX_NODES

if TYPE_CHECKING:
    import networkx as nx


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


def build_lineage(found: LineageData, type_: str | None = None) -> Lineage:
    """The graph in data-flow direction (input version -> run -> output version),
    optionally showing only versions of one type."""
    import networkx as nx

    versions, aliases, runs, edges = found.versions, found.aliases, found.runs, found.edges
    version_nodes = {
        version_id: f"{data.project}/{data.name}:v{data.number}"
        for version_id, data in versions.items()
    }
    run_nodes = {pk: run_node(run.id) for pk, run in runs.items()}
    graph = nx.DiGraph()
    graph.add_nodes_from(
        (
            version_nodes[version_id],
            {
                "kind": "version",
                "ref": f"{data.name}:v{data.number}",
                "project": data.project,
                "name": data.name,
                "version": f"v{data.number}",
                "type": data.type,
                "aliases": aliases[version_id],
                "digest": data.digest,
                "size": data.size,
                "created_at": data.created_at.isoformat(),
                "deleted": data.deleted_at is not None,
            },
        )
        for version_id, data in versions.items()
    )
    graph.add_nodes_from(
        (
            run_nodes[pk],
            {
                "kind": "run",
                "id": run.id,
                "project": run.project,
                "name": run.name,
                "status": run.status,
                "created_at": run.started_at.isoformat(),
                "deleted": bool(run.deleted),
            },
        )
        for pk, run in runs.items()
    )
    graph.add_edges_from(
        (run_nodes[run_pk], version_nodes[version_id])
        if direction == "out"
        else (version_nodes[version_id], run_nodes[run_pk])
        for run_pk, direction, version_id in edges
    )
    graph.add_edges_from(
        (version_nodes[source], version_nodes[link], {"kind": "link"})
        for source, link in found.links
        if source in version_nodes and link in version_nodes
    )
    root = versions[found.root]
    lineage = Lineage(graph, f"{root.project}/{root.ref}")
    return lineage.only_type(type_) if type_ is not None else lineage


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

    def only_type(self, type_: str) -> Lineage:
        """The same lineage showing only versions of one type (and the asked-about one);
        the versions left out are bridged over, so every path stays visible."""
        graph = self.graph.copy()
        for node, data in list(graph.nodes(data=True)):
            if data["kind"] == "version" and data["type"] != type_ and node != self.root:
                graph.add_edges_from(
                    (before, after)
                    for before in graph.predecessors(node)
                    for after in graph.successors(node)
                )
                graph.remove_node(node)
        return Lineage(graph, self.root)

    def nodes(self) -> list[dict[str, Any]]:
        """Every node's attributes, with its ``node`` id; versions and runs alike."""
        return [{"node": n, **d} for n, d in sorted(self.graph.nodes(data=True))]

    def versions(self) -> list[str]:
        """Qualified refs of every version in the graph."""
        return sorted(n for n, d in self.graph.nodes(data=True) if d["kind"] == "version")

    def to_dot(self, max_nodes: int | None = DEFAULT_MAX_NODES) -> str:
        """Graphviz DOT text; beyond ``max_nodes`` the farthest nodes become "+N more"."""
        from .render import collapse, to_dot

        return to_dot(collapse(self.graph, self.root, max_nodes), self.root)

    def to_mermaid(self, max_nodes: int | None = DEFAULT_MAX_NODES) -> str:
        """Mermaid flowchart text; beyond ``max_nodes`` the farthest nodes become "+N more"."""
        from .render import collapse, to_mermaid

        return to_mermaid(collapse(self.graph, self.root, max_nodes), self.root)

    def to_json(self) -> str:
        """The whole graph as networkx node-link JSON, plus the ``root`` node id."""
        from .render import to_json

        return to_json(self.graph, self.root)

    def to_text(self) -> str:
        """An indented tree for terminals: what the version came from, then what it fed."""
        from .render import to_text

        return to_text(self.graph, self.root)

    def render(
        self, path: str | os.PathLike[str], *, max_nodes: int | None = DEFAULT_MAX_NODES
    ) -> Path:
        """Write the diagram; the format comes from the suffix (.svg .png .pdf .dot .mmd
        .json). SVG, PNG and PDF need Graphviz's `dot` program. JSON is never collapsed."""
        from .render import collapse, write

        target = Path(path)
        graph = (
            self.graph
            if target.suffix.lower() == ".json"
            else collapse(self.graph, self.root, max_nodes)
        )
        return write(graph, self.root, target)

    def to_svg(
        self,
        link: Callable[[str, dict[str, Any]], str | None] | None = None,
        *,
        max_nodes: int | None = DEFAULT_MAX_NODES,
    ) -> str:
        """The diagram as SVG text (needs `dot`); ``link(node, attributes)`` may give each
        node a URL to open when it is clicked."""
        from .render import collapse, to_svg

        return to_svg(collapse(self.graph, self.root, max_nodes), self.root, link)

    def _repr_svg_(self) -> str:
        return self.to_svg()
