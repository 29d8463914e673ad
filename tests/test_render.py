"""Lineage diagrams in every format, checked for real (the `dot` program included)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest

import forebear


@pytest.fixture
def lineage(store: forebear.Store, make_tree: Callable[..., Path]) -> forebear.Lineage:
    with forebear.init(project="demo", name="prepare", store=store) as run:
        run.log_artifact(make_tree("raw", {"r.csv": "1"}), name="raw", aliases=["gold"])
    with forebear.init(project="demo", name='train <fast> & "loud"', store=store) as run:
        run.use_artifact("raw")
        model = run.log_artifact(make_tree("m", {"m.bin": "m"}), name="model", type="model")
    return model.lineage()


def test_graph_nodes_and_edges_follow_the_data(lineage: forebear.Lineage) -> None:
    graph = lineage.graph
    assert isinstance(graph, nx.DiGraph)
    assert lineage.root == "demo/model:v0"
    (train,) = [n for n, d in graph.nodes(data=True) if d["kind"] == "run" and "train" in d["name"]]
    (prepare,) = [n for n, d in graph.nodes(data=True) if d.get("name") == "prepare"]
    assert list(nx.topological_sort(graph)) == [prepare, "demo/raw:v0", train, "demo/model:v0"]
    raw = graph.nodes["demo/raw:v0"]
    assert (raw["kind"], raw["type"], raw["version"], raw["aliases"]) == (
        "version",
        "dataset",
        "v0",
        ["latest", "gold"],
    )
    assert graph.nodes[train]["status"] == "finished"


def test_dot_and_mermaid_text(lineage: forebear.Lineage) -> None:
    dot = lineage.to_dot()
    assert dot.startswith("digraph lineage {")
    assert "raw:v0 (latest, gold)" in dot
    assert "shape=box" in dot and "shape=ellipse" in dot
    assert "cluster_legend" in dot
    mermaid = lineage.to_mermaid()
    assert mermaid.startswith("flowchart LR\n")
    assert "raw:v0 (latest, gold) · dataset" in mermaid
    assert "-->" in mermaid
    assert "<fast>" not in mermaid and "#60;fast#62;" in mermaid  # escaped for Mermaid


def test_json_is_node_link(lineage: forebear.Lineage) -> None:
    data = json.loads(lineage.to_json())
    assert data["root"] == "demo/model:v0"
    assert {n["id"] for n in data["nodes"]} >= {"demo/raw:v0", "demo/model:v0"}
    rebuilt = nx.node_link_graph(data, edges="links")
    assert nx.is_isomorphic(rebuilt, lineage.graph)


def test_render_every_format(lineage: forebear.Lineage, tmp_path: Path) -> None:
    svg = lineage.render(tmp_path / "l.svg").read_text()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "raw:v0 (latest, gold)" in svg
    assert "&lt;fast&gt;" in svg  # user text is escaped in the SVG
    assert lineage.render(tmp_path / "l.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert lineage.render(tmp_path / "l.pdf").read_bytes()[:5] == b"%PDF-"
    assert lineage.render(tmp_path / "l.dot").read_text() == lineage.to_dot()
    assert lineage.render(tmp_path / "l.mmd").read_text() == lineage.to_mermaid()
    assert json.loads(lineage.render(tmp_path / "sub" / "l.json").read_text())["root"]
    assert ET.fromstring(lineage._repr_svg_()).tag.endswith("svg")
    with pytest.raises(forebear.RenderError, match=r"\.svg"):
        lineage.render(tmp_path / "l.bmp")


def test_missing_dot_is_a_clear_error(
    lineage: forebear.Lineage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(forebear.GraphvizNotFound, match="apt-get install graphviz"):
        lineage.render(tmp_path / "l.svg")
    assert not (tmp_path / "l.svg").exists()
    # formats that need no program still work
    assert lineage.render(tmp_path / "l.dot").exists()
    assert lineage.render(tmp_path / "l.mmd").exists()
    assert lineage.render(tmp_path / "l.json").exists()
    assert os.environ["PATH"] == str(tmp_path / "empty-bin")
