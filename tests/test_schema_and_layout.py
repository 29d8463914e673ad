"""Migrations match the models, the public surface is pinned, and layers import one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

import forebear
from forebear.db.engine import SCHEMA_HEAD, ensure_schema, make_engine
from forebear.db.schema import Base

SRC = Path(forebear.__file__).parent


def test_schema_head_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", "forebear.db:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_migrations_build_exactly_the_models_on_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    ensure_schema(engine)
    ensure_schema(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        # entries page back in the manifest's code point order whatever the locale
        collation = connection.exec_driver_sql(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_name = 'entries' AND column_name = 'path'"
        ).scalar()
    engine.dispose()
    assert diff == []
    assert revision == SCHEMA_HEAD
    assert collation == "C"


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    ensure_schema(engine)
    ensure_schema(engine)  # a second call is a no-op
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    with create_engine(f"sqlite:///{tmp_path / 'm.db'}").connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_public_names_are_pinned() -> None:
    expected = {
        "Artifact", "ArtifactNotFound", "ArtifactVersion", "AuditEvent", "Delivery", "Diff",
        "ForebearError", "ForebearWarning", "GraphvizNotFound", "IntegrityError", "InvalidInput",
        "InvalidName", "InvalidPath", "InvalidRef", "Lineage", "Manifest", "ManifestEntry",
        "NotFound", "ObjectNotFound", "PermissionDenied", "Problem", "RenderError", "Run",
        "RunNotFound", "RunStateError", "Store", "StoreError", "StoreNotFound",
        "StoreVersionError", "VersionNotFound", "AuthenticationError", "Webhook", "__version__",
        "finish", "init",
        "log", "log_artifact", "open", "use_artifact",
    }  # fmt: skip
    assert set(forebear.__all__) == expected
    for name in expected:
        assert getattr(forebear, name) is not None
    assert issubclass(forebear.ArtifactNotFound, LookupError)
    assert issubclass(forebear.InvalidPath, ValueError)
    assert issubclass(forebear.StoreError, OSError)
    assert issubclass(forebear.ObjectNotFound, FileNotFoundError)
    for error in (forebear.IntegrityError, forebear.VersionNotFound, forebear.InvalidName):
        assert issubclass(error, forebear.ForebearError)


def test_import_forebear_stays_light() -> None:
    heavy = "('sqlalchemy', 'fsspec', 'networkx', 'rich', 'uvicorn', 'starlette', 'psycopg')"
    code = f"import sys, forebear; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_team_client_loads_no_database_driver() -> None:
    # a laptop that reaches its store through a server needs no SQL: the CLI and the
    # remote backend load without SQLAlchemy (the local backend loads only when used)
    heavy = "('sqlalchemy', 'alembic', 'psycopg', 'forebear.local')"
    code = (
        "import sys, forebear.store, forebear.remote, forebear.cli.app; "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Lower layers never import higher ones: storage and hashing know nothing of runs.
FORBIDDEN = {
    "errors": {"*"},
    "hashing": {"*"} - {"errors"},
    "hash_workers": {"run", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "statcache": {"run", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "fingerprint": {"run", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "links": {"*"},
    "paths": {"run", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "objects": {"run", "store", "artifacts", "db", "lineage", "cli", "render", "manifest"},
    "chunking": {"run", "store", "artifacts", "db", "objects", "lineage", "cli", "manifest"},
    "manifest": {"run", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "references": {"run", "store", "artifacts", "db", "lineage", "cli", "render"},
    "db": {"run", "store", "artifacts", "objects", "lineage", "cli", "render", "download"},
    "render": {"run", "store", "artifacts", "db", "objects", "lineage", "cli"},
    "lineage": {"run", "cli"},
    "store": {"cli"},
    "artifacts": {"cli"},
}


def _forebear_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            parts = (node.module or "").split(".")
            if node.level == 2 or (node.level == 1 and path.parent != SRC):
                found.add(path.parent.name if node.level == 1 else parts[0])
            else:
                found.add(parts[0] if parts[0] else "")
                if not parts[0]:
                    found.update(alias.name for alias in node.names)
    return found - {""}


def test_dependencies_point_one_way() -> None:
    for module, forbidden in FORBIDDEN.items():
        path = SRC / module if (SRC / module).is_dir() else SRC / f"{module}.py"
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in files:
            imported = _forebear_imports(file)
            if "*" in forbidden:
                allowed = {"errors"} if module == "hashing" else set()
                assert imported <= allowed, f"{file.name} imports {imported}"
            else:
                assert not (imported & forbidden), f"{file.name} imports {imported & forbidden}"
