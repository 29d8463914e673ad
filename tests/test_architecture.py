"""The shape of the code, as docs/design/architecture.md describes it, checked on every
run: layers that import one way, no reaching into another object's private names, SQL
only in ``db/``, settings only in ``settings``, and modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "forebear"
MIGRATIONS = PACKAGE / "db" / "migrations"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (migrations are Alembic's, not ours)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if MIGRATIONS in path.parents:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """The nodes that run on import or call: ``if TYPE_CHECKING:`` blocks are left out."""
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            typing_only.update(id(inner) for inner in ast.walk(node))
    return [node for node in ast.walk(tree) if id(node) not in typing_only]


def imported_modules(name: str, path: Path) -> set[str]:
    """What a module imports at run time, anywhere in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if node.module:  # not for "from . import x": that imports x, not the package
                targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    return targets


def import_graph() -> nx.DiGraph:
    known = modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for name, path in known.items():
        for target in imported_modules(name, path):
            if target in known and target != name:
                graph.add_edge(name, target)
    return graph


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    # a package's __init__ re-exporting its own modules is not a cycle between layers
    for name in list(graph.nodes):
        for child in list(graph.successors(name)):
            if child.startswith(name + "."):
                graph.remove_edge(name, child)
    cycles = sorted(nx.simple_cycles(graph), key=len)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


# The layers of docs/design/architecture.md, lowest first: a module imports only from its
# own layer or those below.
LAYERS = (
    [
        "errors",
        "units",
        "urls",
        "util",
        "config_files",
        "jsonvalues",
        "tables",
        "media",
        "media_files",
        "kept_media",
        "histograms",
        "plot",
        "logged_values",
        "metrics",
        "history_rows",
        "history_buffer",
        "runfilters",
        "runchecks",
        "paths",
        "hashing",
        "hash_workers",
        "direct",
        "stat_worker",
        "chunking",
        "cutting",
        "manifest",
        "records",
        "reports",
        "readers",
        "destination",
        "links",
        "spool",
        "heartbeat",
        "processes",
        "progress",
        "settings",
        "statcache",
        "wire",
        "pages",
    ],
    ["objects", "db"],
    ["backend"],
    [
        "walk",
        "artifacts",
        "fingerprint",
        "treekey",
        "references",
        "ingest",
        "chunk_storing",
        "staged",
        "cache",
        "content",
        "download",
        "folders",
        "liveness",
        "context",
        "repair_from",
    ],
    ["local", "remote"],
    [
        "store",
        "views",
        "editing",
        "lifecycle",
        "registry",
        "habits",
        "version_files",
        "runfiles",
        "run_updates",
        "run_listing",
        "run_attributes",
        "version_attributes",
        "fs",
        "disabled_run",
        "resuming",
        "runs",
        "api",
        "mlflow_import",
        "active",
        "lineage",
        "render",
        "testing",
        "accounts",
        "connect",
    ],
    ["cli", "web", "server", "__main__"],
)


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: the public API
        return 5
    for number, names in enumerate(LAYERS):
        if parts[1] in names:
            return number
    raise AssertionError(f"{module} belongs to no layer: add it to docs/design/architecture.md")


def test_every_import_points_down_the_layers() -> None:
    upward = [
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, target in import_graph().edges
        if layer_of(target) > layer_of(source)
    ]
    assert upward == []


def top_part(module: str) -> str:
    """``db`` for ``forebear.db.versions``; empty for the package itself."""
    return [*module.split("."), ""][1]


def test_objects_and_sql_know_nothing_of_each_other() -> None:
    crossing = [
        (source, target)
        for source, target in import_graph().edges
        if {top_part(source), top_part(target)} == {"objects", "db"}
    ]
    assert crossing == []


def test_front_ends_use_only_the_public_api() -> None:
    """The CLI and the web UI call the public API, never the local backend or SQL."""
    graph = import_graph()
    offenders = {
        (source, target)
        for source, target in graph.edges
        if source.startswith(("forebear.cli", "forebear.web"))
        and target.startswith(("forebear.local", "forebear.db", "forebear.objects"))
    }
    assert offenders == set()


def test_nothing_reaches_into_another_objects_private_names() -> None:
    offenders = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and is_private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                    continue
                if ast.unparse(node) in STANDARD_UNDERSCORED:
                    continue
                offenders.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                offenders.extend(
                    f"{name}:{node.lineno}: imports {alias.name}"
                    for alias in node.names
                    if is_private(alias.name)
                )
    assert offenders == []


NAMED_TUPLE_API = {"_asdict", "_replace", "_fields", "_make"}  # public, underscored against clashes
# the standard library's documented functions whose names begin with an underscore
STANDARD_UNDERSCORED = {"os._exit"}


def is_private(attribute: str) -> bool:
    if attribute in NAMED_TUPLE_API:
        return False
    return attribute.startswith("_") and not attribute.startswith("__")


def test_only_db_speaks_sql() -> None:
    offenders = {
        name
        for name, path in modules().items()
        if not name.startswith("forebear.db")
        for target in imported_modules(name, path)
        if target.split(".")[0] in ("sqlalchemy", "alembic")
    }
    assert offenders == set()


def test_settings_are_read_in_settings_only() -> None:
    offenders = []
    for name, path in modules().items():
        if name == "forebear.settings":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("FOREBEAR_")
            ):
                offenders.append(f"{name}:{node.lineno}: {node.value}")
    assert offenders == []


def test_modules_stay_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert sizes["forebear.store"] <= 300, "Store is a façade over its parts"
    assert {name: n for name, n in sizes.items() if n > 600} == {}
