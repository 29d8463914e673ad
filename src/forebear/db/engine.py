"""Engines and schema set-up: SQLite in WAL mode with a busy timeout, or PostgreSQL.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so concurrent writers queue on
the busy timeout instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from ..errors import StoreError, StoreVersionError

# The newest migration; a test checks it matches the migrations folder.
SCHEMA_HEAD = "0003"
BUSY_TIMEOUT_SECONDS = 60
_BEGIN_OPTION = "forebear_begin"
_PG_SCHEMA_LOCK = 0x666F7265  # "fore": serialises concurrent schema creation


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparsable database URL>"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise StoreError(
            f"invalid database URL {url!r}: expected e.g. 'sqlite:///path/meta.db' or "
            "'postgresql+psycopg://user@host/db'"
        ) from error
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ImportError as error:
        raise StoreError(
            f"no driver for {redact(url)}: {error}; for PostgreSQL run "
            "'pip install \"psycopg[binary]\"'"
        ) from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event below decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take the write lock at once on SQLite."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return engine


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error."""
    with (
        translate_db_errors(engine),
        Session(writer(engine), expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with translate_db_errors(engine), Session(engine, expire_on_commit=False) as session:
        yield session


@contextlib.contextmanager
def translate_db_errors(engine: Engine) -> Iterator[None]:
    try:
        yield
    except exc.OperationalError as error:
        message = str(error.orig) if error.orig is not None else str(error)
        if "locked" in message:
            raise StoreError(
                f"the database {redact(str(engine.url))} stayed locked for "
                f"{BUSY_TIMEOUT_SECONDS} s by another writer; try again when it finishes"
            ) from error
        raise StoreError(
            f"cannot use the database {redact(str(engine.url))}: {message.strip()}"
        ) from error
    except exc.InterfaceError as error:
        raise StoreError(f"cannot reach the database {redact(str(engine.url))}") from error


def current_revision(connection: Connection) -> str | None:
    try:
        with connection.begin_nested() if connection.in_transaction() else _nullcontext():
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    except exc.DatabaseError:
        return None
    return None if row is None else str(row[0])


@contextlib.contextmanager
def _nullcontext() -> Iterator[None]:
    yield


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema; safe when several processes do it at once."""
    with translate_db_errors(engine):
        with engine.connect() as connection:
            revision = current_revision(connection)
            connection.rollback()
        if revision == SCHEMA_HEAD:
            _forget_edge_statistics(engine)
            return
        if revision is not None and revision > SCHEMA_HEAD:
            raise StoreVersionError(
                f"the database {redact(str(engine.url))} has schema {revision}, newer than "
                f"this forebear knows ({SCHEMA_HEAD}); upgrade forebear"
            )
        with writer(engine).connect() as connection, connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})"))
            if current_revision(connection) != SCHEMA_HEAD:
                _upgrade(connection)


def _forget_edge_statistics(engine: Engine) -> None:
    """Drop SQLite's planner statistics for the edges table, if an ANALYZE left any.

    With them, SQLite 3.38+ adds a Bloom filter to every step of the recursive lineage
    queries: a fixed cost of 100+ ms each, where the plain index search takes a few ms on
    a million edges. Without them the planner keeps the covering-index search.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        has_stats = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).first()
        stale = (
            has_stats
            and connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_stat1 WHERE tbl = 'edges' LIMIT 1"
            ).first()
        )
        connection.rollback()
    if stale:
        with writer(engine).connect() as connection, connection.begin():
            connection.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'edges'")
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE sqlite_schema")  # reload the planner's view
            connection.commit()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "forebear.db:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
