"""Drawing a lineage graph: DOT, Mermaid, a terminal tree, and SVG/PNG/PDF through `dot`.

Takes a `networkx.DiGraph` whose nodes carry ``kind`` and label attributes; never touches
the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GraphvizNotFound, RenderError
from .paths import REGISTRY

if TYPE_CHECKING:
    import graphviz
    import networkx as nx

TYPE_COLOURS = {
    "dataset": "#dbeafe",
    "model": "#dcfce7",
    "evaluation": "#fef9c3",
    "code": "#f3e8ff",
}
OTHER_COLOUR = "#f1f5f9"
RUN_COLOUR = "#ffffff"
ROOT_BORDER = "#dc2626"
INSTALL_HINT = (
    "the Graphviz 'dot' program is not installed; install it ('apt-get install graphviz', "
    "'brew install graphviz' or 'conda install graphviz'), or render to .dot, .mmd or .json, "
    "which need no program"
)
FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv", ".mmd", ".json")
# Diagrams beyond this many nodes stop being readable; the rest is shown as "+N more".
DEFAULT_MAX_NODES = 100


def collapse(graph: nx.DiGraph, root: str, max_nodes: int | None) -> nx.DiGraph:
    """Keep the ``max_nodes`` nodes nearest to ``root`` (in hops, either direction) and
    stand the rest in for by explicit "+N more" nodes, so nothing is cut silently."""
    import networkx as nx

    if max_nodes is None or graph.number_of_nodes() <= max_nodes:
        return graph
    if max_nodes < 1:
        raise RenderError(f"max_nodes must be at least 1, not {max_nodes}")
    distance = nx.single_source_shortest_path_length(graph.to_undirected(as_view=True), root)
    ranked = sorted(graph.nodes, key=lambda n: (distance.get(n, len(graph)), n))
    kept = set(ranked[:max_nodes])
    dropped = set(graph.nodes) - kept
    upstream = dropped & nx.ancestors(graph, root)
    downstream = dropped - upstream
    small = graph.subgraph(kept).copy()
    for side, members in (("upstream", upstream), ("downstream", downstream)):
        if not members:
            continue
        more = f"more:{side}"
        small.add_node(more, kind="more", name=f"+{len(members)} more {side}", count=len(members))
        for node in kept:
            if side == "upstream" and any(p in members for p in graph.predecessors(node)):
                small.add_edge(more, node)
            if side == "downstream" and any(s in members for s in graph.successors(node)):
                small.add_edge(node, more)
    return small


def version_label(data: dict[str, Any]) -> str:
    aliases = [a for a in data.get("aliases", [])]
    suffix = f" ({', '.join(aliases)})" if aliases else ""
    deleted = " [deleted]" if data.get("deleted") else ""
    # registry versions keep their project in view: they share names with models
    ref = f"{REGISTRY}/{data['ref']}" if data.get("project") == REGISTRY else data["ref"]
    return f"{ref}{suffix}{deleted}"


def run_status(data: dict[str, Any]) -> str:
    return f"{data['status']}, deleted" if data.get("deleted") else str(data["status"])


def run_label(data: dict[str, Any]) -> str:
    return f"{data['name']} [{run_status(data)}]"


def _colour(type_: str) -> str:
    return TYPE_COLOURS.get(type_, OTHER_COLOUR)


Link = Callable[[str, dict[str, Any]], "str | None"]
"""Maps a node (id, attributes) to the URL it should open when clicked, or None."""


def _text(value: str) -> str:
    """Any user text as a plain DOT label: never an HTML-like label (which could carry
    links), backslash escapes kept literal."""
    import graphviz

    return graphviz.escape(value)  # type: ignore[no-any-return]


def _digraph(graph: nx.DiGraph, root: str, link: Link | None = None) -> graphviz.Digraph:
    import graphviz

    dot = graphviz.Digraph("lineage", graph_attr={"rankdir": "LR", "fontname": "Helvetica"})
    dot.attr("node", fontname="Helvetica", fontsize="11")
    ids = {node: f"n{i}" for i, node in enumerate(sorted(graph.nodes))}
    types_seen: set[str] = set()
    for node, data in sorted(graph.nodes(data=True)):
        border: dict[str, str] = {"color": ROOT_BORDER, "penwidth": "2.5"} if node == root else {}
        url = link(node, data) if link is not None else None
        if url:
            border = {**border, "URL": url, "target": "_top"}
        if data["kind"] == "more":
            dot.node(ids[node], label=_text(data["name"]), shape="note", style="dashed")
        elif data["kind"] == "version":
            types_seen.add(data["type"])
            dot.node(
                ids[node],
                label=_text(f"{version_label(data)}\n{data['type']}"),
                shape="box",
                style="rounded,filled,dashed" if data.get("deleted") else "rounded,filled",
                fillcolor=_colour(data["type"]),
                tooltip=_text(node),
                **border,
            )
        else:
            dot.node(
                ids[node],
                label=_text(f"{data['name']}\n{run_status(data)} · {data['id']}"),
                shape="ellipse",
                style="filled,dashed" if data.get("deleted") else "filled",
                fillcolor=RUN_COLOUR,
                tooltip=_text(f"run {data['id']}"),
                **border,
            )
    for src, dst, edge in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        if edge.get("kind") == "link":  # a registry version and the source it links
            dot.edge(ids[src], ids[dst], label="link", style="dashed", fontsize="9")
        else:
            dot.edge(ids[src], ids[dst])
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", fontsize="10", style="dashed", color="#94a3b8")
        for i, type_ in enumerate(sorted(types_seen)):
            legend.node(
                f"legend{i}",
                label=_text(type_),
                shape="box",
                style="rounded,filled",
                fillcolor=_colour(type_),
                fontsize="9",
            )
        legend.node("legend_run", label="run", shape="ellipse", fontsize="9")
    return dot


def to_dot(graph: nx.DiGraph, root: str) -> str:
    return str(_digraph(graph, root).source)


def _pipe(graph: nx.DiGraph, root: str, fmt: str, link: Link | None = None) -> bytes:
    import graphviz

    try:
        return bytes(_digraph(graph, root, link).pipe(format=fmt))
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizNotFound(INSTALL_HINT) from exc
    except graphviz.CalledProcessError as exc:
        raise RenderError(f"Graphviz failed to draw the lineage: {exc}") from exc


def to_svg(graph: nx.DiGraph, root: str, link: Link | None = None) -> str:
    """The diagram as an ``<svg>`` element, safe to inline in a page (see `safe_svg`)."""
    return safe_svg(_pipe(graph, root, "svg", link).decode("utf-8"))


_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"
_ACTIVE = {"script", "foreignObject", "iframe", "object", "embed", "handler", "listener"}


def safe_svg(svg: str) -> str:
    """Only the ``<svg>`` element of Graphviz's output, without anything that could run:
    no scripts or foreign content, no event attributes, and links only to this site
    (paths starting with one ``/``) or within the page."""
    import xml.etree.ElementTree as ET

    start = svg.find("<svg")
    if start < 0:
        raise RenderError("Graphviz produced no SVG")
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", _XLINK)
    try:
        tree = ET.fromstring(svg[start:])
    except ET.ParseError as exc:
        raise RenderError(f"Graphviz produced unreadable SVG: {exc}") from exc
    for parent in list(tree.iter()):
        for child in list(parent):
            if child.tag.rsplit("}", 1)[-1] in _ACTIVE:
                parent.remove(child)
        for name, value in list(parent.attrib.items()):
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or (local == "href" and not _local_link(value)):
                del parent.attrib[name]
    return ET.tostring(tree, encoding="unicode")


def _local_link(url: str) -> bool:
    # browsers drop whitespace and control characters in URLs and read "\\" as "/"
    text = "".join(c for c in url if c > " " and c != "\x7f").replace("\\", "/")
    return text.startswith("#") or (text.startswith("/") and not text.startswith("//"))


_MERMAID_UNSAFE = re.compile(r'["<>#&]')


def _mermaid_text(text: str) -> str:
    return _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", text)


def to_mermaid(graph: nx.DiGraph, root: str) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(sorted(graph.nodes))}
    lines = ["flowchart LR"]
    for node, data in sorted(graph.nodes(data=True)):
        if data["kind"] == "more":
            lines.append(f'    {ids[node]}[/"{_mermaid_text(data["name"])}"/]')
        elif data["kind"] == "version":
            label = _mermaid_text(f"{version_label(data)} · {data['type']}")
            lines.append(f'    {ids[node]}["{label}"]')
        else:
            lines.append(f'    {ids[node]}(["{_mermaid_text(run_label(data))}"])')
    for src, dst, edge in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        arrow = "-. link .->" if edge.get("kind") == "link" else "-->"
        lines.append(f"    {ids[src]} {arrow} {ids[dst]}")
    lines.append(f"    style {ids[root]} stroke:{ROOT_BORDER},stroke-width:3px")
    return "\n".join(lines) + "\n"


def to_text(graph: nx.DiGraph, root: str) -> str:
    """An indented tree from the root: upstream (what it came from), then downstream.

    A node reached a second time (a diamond) is printed once more as "(see above)" and not
    expanded again, so the output grows with the graph, never with the number of paths.
    """

    def label(node: str) -> str:
        data = graph.nodes[node]
        if data["kind"] == "version":
            return f"{version_label(data)} [{data['type']}]"
        return f"run {data['name']} ({data['id']}, {run_status(data)})"

    lines = [label(root)]

    def tree(neighbours: Any) -> None:
        shown = {root}
        # (node, prefix, is-last-child); iterative, so 100-hop chains need no recursion
        stack = [(child, "", i == 0) for i, child in enumerate(sorted(neighbours(root))[::-1])]
        while stack:
            node, prefix, last = stack.pop()
            marker = "└── " if last else "├── "
            if node in shown:
                lines.append(f"{prefix}{marker}{label(node)} (see above)")
                continue
            shown.add(node)
            lines.append(f"{prefix}{marker}{label(node)}")
            inner = prefix + ("    " if last else "│   ")
            children = sorted(neighbours(node))
            stack.extend((child, inner, i == 0) for i, child in enumerate(children[::-1]))

    has_up = graph.in_degree(root) > 0
    has_down = graph.out_degree(root) > 0
    if has_up:
        if has_down:
            lines.append("upstream:")
        tree(graph.predecessors)
    if has_down:
        if has_up:
            lines.append("downstream:")
        tree(graph.successors)
    if not has_up and not has_down:
        lines.append("(no recorded lineage)")
    return "\n".join(lines) + "\n"


def to_json(graph: nx.DiGraph, root: str) -> str:
    """Node-link JSON (networkx's format) plus the ``root`` node id."""
    import networkx as nx

    data = nx.node_link_data(graph, edges="links")
    data["root"] = root
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def write(graph: nx.DiGraph, root: str, path: Path) -> Path:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise RenderError(
            f"cannot render to {str(path)!r}: unknown suffix {suffix or '(none)'}; "
            f"use one of {' '.join(FORMATS)}"
        )
    if suffix in (".dot", ".gv"):
        data = to_dot(graph, root).encode()
    elif suffix == ".mmd":
        data = to_mermaid(graph, root).encode()
    elif suffix == ".json":
        data = to_json(graph, root).encode()
    elif suffix == ".svg":
        data = to_svg(graph, root).encode()
    else:
        data = _pipe(graph, root, suffix[1:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise RenderError(
            f"cannot write {str(path)!r}: {exc.strerror or exc}; choose a path you can write to"
        ) from exc
    return path
