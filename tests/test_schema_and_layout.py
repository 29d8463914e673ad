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
    built_by_migrations(postgres_url)
    engine = make_engine(postgres_url)
    ensure_schema(engine)  # at the head already: nothing to do
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
    built_by_migrations(f"sqlite:///{tmp_path / 'm.db'}")
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    ensure_schema(engine)  # at the head already: a no-op
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    with create_engine(f"sqlite:///{tmp_path / 'm.db'}").connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_postgresql_catalog_with_runs_takes_longer_run_ids_once_upgraded(
    postgres_url: str, tmp_path: Path
) -> None:
    built_by_migrations(postgres_url, "0013")  # run ids of at most 8 characters
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        project = connection.execute(
            Base.metadata.tables["projects"].insert().values(name="p")
        ).inserted_primary_key[0]
        connection.execute(
            Base.metadata.tables["runs"].insert(),
            {"id": "old12345", "project_id": project, "name": "before", "status": "finished",
             "config": {}, "summary": {}, "context": {}},
        )  # fmt: skip
    engine.dispose()
    store = forebear.Store(postgres_url, str(tmp_path / "objects"))  # upgraded on opening
    chosen = "an-experiment-named-in-full-" + "x" * 36  # 64 characters
    with forebear.init(project="p", id=chosen, store=store) as run:
        (tmp_path / "w.txt").write_text("w")
        version = run.log_artifact(str(tmp_path / "w.txt"), name="model", aliases=["best"])
    assert store.run("old12345").name == "before"
    assert version.created_by == chosen and store.run(chosen).outputs[0].ref == version.ref
    store.close()


def built_by_migrations(url: str, revision: str = "head") -> None:
    """Every migration from the first (up to ``revision``), as an old catalog is upgraded."""
    from alembic import command

    engine = make_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":  # as ensure_schema does for table rebuilds
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys = OFF")
        with connection.begin():
            config = Config()
            config.set_main_option("script_location", "forebear.db:migrations")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    engine.dispose()


def described(url: str) -> dict[str, object]:
    """Every table's columns, keys, indexes and constraints, and the schema revision."""
    from sqlalchemy import inspect

    engine = make_engine(url)
    with engine.connect() as connection:
        found = inspect(connection)
        tables: dict[str, object] = {}
        for table in sorted(found.get_table_names()):
            tables[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in found.get_columns(table)
                ],
                "primary key": found.get_pk_constraint(table)["constrained_columns"],
                "foreign keys": sorted(
                    (f["constrained_columns"], f["referred_table"], f["referred_columns"])
                    for f in found.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (
                        i["name"],
                        i["column_names"],
                        i["unique"],
                        sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items()),
                    )
                    for i in found.get_indexes(table)
                ),
                "unique": sorted(u["column_names"] for u in found.get_unique_constraints(table)),
            }
        revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    engine.dispose()
    return {"tables": tables, "revision": revision}


def test_a_new_catalog_is_built_as_the_migrations_build_it(tmp_path: Path) -> None:
    migrated, created = f"sqlite:///{tmp_path / 'old.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    built_by_migrations(migrated)
    engine = make_engine(created)
    ensure_schema(engine)
    engine.dispose()
    assert described(created) == described(migrated)
    assert described(created)["revision"] == SCHEMA_HEAD


def test_a_new_catalog_is_built_as_the_migrations_build_it_on_postgresql(
    postgres_url: str,
) -> None:
    from sqlalchemy import text

    other = postgres_url.rsplit("/", 1)[0] + "/forebear_migrated"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS forebear_migrated"))
        connection.execute(text("CREATE DATABASE forebear_migrated"))
    admin.dispose()
    built_by_migrations(other)
    engine = make_engine(postgres_url)
    ensure_schema(engine)
    engine.dispose()
    assert described(postgres_url) == described(other)


def test_public_names_are_pinned() -> None:
    expected = {
        "Api", "Artifact", "ArtifactNotFound", "ArtifactVersion", "AuditEvent", "Delivery", "Diff",
        "ForebearError", "ForebearWarning", "GraphvizNotFound", "IntegrityError", "InvalidInput",
        "InvalidName", "InvalidPath", "InvalidRef", "Lineage", "Manifest", "ManifestEntry",
        "NotFound", "ObjectNotFound", "PermissionDenied", "Problem", "RenderError", "Run",
        "RunNotFound", "RunStateError", "Store", "StoreError", "StoreNotFound",
        "StoreVersionError", "VersionNotFound", "AuthenticationError", "Webhook", "__version__",
        "finish", "init",
        "log", "log_artifact", "open", "use_artifact", "define_metric", "link_model", "log_model",
        "login", "restore", "save", "unwatch", "use_model", "watch", "Table", "Settings",
        "join", "setup", "termlog", "termwarn", "termerror", "util", "alert", "AlertLevel", "Image",
        "Histogram", "plot", "Audio", "Video", "Html",
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


def test_a_sqlite_catalog_loads_no_postgresql_dialect(tmp_path: Path) -> None:
    # SQLAlchemy imports a dialect to check an argument named after it: a PostgreSQL-only
    # index condition cost every command on SQLite 30 ms (now given on opening PostgreSQL)
    (tmp_path / "data.txt").write_text("x")
    code = (
        "import sys, forebear\n"
        f"store = forebear.open({str(tmp_path / 'store')!r})\n"
        "with forebear.init(project='p', store=store) as run:\n"
        f"    run.log_artifact({str(tmp_path / 'data.txt')!r}, name='data')\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_postgresql_gets_the_live_versions_condition() -> None:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    from forebear.db.schema import VersionRow, for_postgresql

    for_postgresql()
    for_postgresql()  # each PostgreSQL catalog opened calls it: the condition is given once
    (index,) = [i for i in VersionRow.__table__.indexes if i.name == "uq_versions_live_digest"]
    ddl = str(CreateIndex(index).compile(dialect=postgresql.dialect()))
    assert ddl.endswith("(artifact_id, digest) WHERE deleted_at IS NULL")


# Lower layers never import higher ones: storage and hashing know nothing of runs.
FORBIDDEN = {
    "errors": {"*"},
    "hashing": {"*"} - {"errors"},
    "hash_workers": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "statcache": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "fingerprint": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "links": {"*"},
    "paths": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "objects": {"runs", "store", "artifacts", "db", "lineage", "cli", "render", "manifest"},
    "chunking": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli", "manifest"},
    "manifest": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli", "render"},
    "references": {"runs", "store", "artifacts", "db", "lineage", "cli", "render"},
    "db": {"runs", "store", "artifacts", "objects", "lineage", "cli", "render", "download"},
    "render": {"runs", "store", "artifacts", "db", "objects", "lineage", "cli"},
    "lineage": {"runs", "cli"},
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
