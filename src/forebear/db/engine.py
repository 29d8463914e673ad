"""Engines and schema set-up: SQLite in WAL mode with a busy timeout, or PostgreSQL.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so concurrent writers queue on
the busy timeout instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

__all__ = ["Engine", "Session"]  # the types other layers hold without importing SQLAlchemy

from ..errors import InvalidInput, StoreError, StoreNotFound, StoreVersionError
from .lite import BUSY_TIMEOUT_SECONDS, SCHEMA_HEAD, read_only

LOW_SPACE_BYTES = 64 << 20  # below this, a bare I/O error of SQLite is put down to space

_BEGIN_OPTION = "forebear_begin"
_PG_SCHEMA_LOCK = 0x666F7265  # "fore": serialises concurrent schema creation


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparsable database URL>"


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except exc.ArgumentError as error:
        raise StoreError(
            f"invalid database URL {url!r}: expected e.g. 'sqlite:///path/meta.db' or "
            "'postgresql+psycopg://user@host/db'"
        ) from error


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite catalog URL (None for other databases and in-memory ones)."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def read_only_reason(url: str) -> str | None:
    """Why a SQLite catalog can only be read ("read-only filesystem", "no write
    permission"), or None when it can be written (or is not a local file)."""
    path = sqlite_file(url)
    if path is None or not os.path.exists(path):
        return None
    return read_only(path)


class CatalogFile:
    """The file of a SQLite catalog as it was when the store was opened, to tell when it
    was deleted or replaced while in use: SQLite would go on writing into the open (and
    now unreachable) file, and a log would report success into nothing."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_file(url)
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (info.st_dev, info.st_ino)

    def check(self) -> None:
        if self.path is None or self.identity is None:
            return
        now = self._identity()
        if now != self.identity:
            what = "deleted" if now is None else "replaced by another file"
            raise StoreError(
                f"the catalog {self.path!r} was {what} while in use; what this command "
                "did last was not recorded there: check the store and run it again"
            )


def make_engine(url: str, *, read_only: str | None = None) -> Engine:
    """An engine for a catalog URL; ``read_only`` (a reason from `read_only_reason`) opens
    a SQLite catalog without ever writing to it, not even its lock files on read-only
    media."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            if read_only:
                immutable = "&immutable=1" if read_only == "read-only filesystem" else ""
                parsed = parsed.set(
                    database=f"file:{os.path.abspath(database)}?mode=ro{immutable}",
                    query={"uri": "true"},
                )
            else:
                os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        _configure_sqlite(engine, read_only is not None)
        return _own_connections_per_process(engine)
    if backend == "postgresql":
        from .schema import for_postgresql

        for_postgresql()
    try:
        return _own_connections_per_process(create_engine(parsed, pool_pre_ping=True))
    except exc.NoSuchModuleError as error:
        raise StoreError(
            f"unknown database {backend!r} in {redact(url)}: forebear's catalog runs on SQLite "
            "('sqlite:///path/meta.db') or PostgreSQL ('postgresql+psycopg://user@host/db')"
        ) from error
    except ImportError as error:
        raise StoreError(
            f"no driver for {redact(url)}: {error}; for PostgreSQL run "
            "'pip install \"psycopg[binary]\"'"
        ) from error


# Every engine made here, so that a forked child can give each a pool of its own.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _fresh_pools_in_child() -> None:
    """In a child just forked, each engine gets a new, empty pool without closing the
    parent's connections (SQLAlchemy's ``dispose(close=False)`` recipe). Its pool's
    lock is new too: a thread of the parent (one reading ahead) may have held the old
    one at the fork, and the child, which has no such thread, would wait on it forever."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_fresh_pools_in_child)


def _own_connections_per_process(engine: Engine) -> Engine:
    """A process forked from one holding a store (a data loader's worker, a multiprocessing
    pool) never uses a connection its parent opened: neither SQLite nor PostgreSQL
    connections survive being shared between processes. The child starts with a new pool
    (`_fresh_pools_in_child`); and, should a connection of the parent's reach it anyway,
    each connection remembers its process, and a checkout in another drops it from the
    child's pool without closing it (the parent still uses it) and connects anew."""
    _ENGINES.add(engine)

    @event.listens_for(engine, "connect")
    def _remember_process(_dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _connect_anew_in_a_child(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        opened_by = record.info.get("pid")
        if opened_by != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError(
                f"connection opened by process {opened_by}, checked out in {os.getpid()}"
            )

    return engine


def _configure_sqlite(engine: Engine, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event below decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        if not read_only:
            _into_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _into_wal(cursor: Any) -> None:
    """Put the database in WAL mode. Switching a new database takes an exclusive lock, and
    SQLite reports another connection switching it at the same moment as "locked" at
    once, without waiting (two processes creating one store): retry until the busy
    timeout, by which time the other has switched it and this is a no-op."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take the write lock at once on SQLite."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return engine


_AFTER_COMMIT: weakref.WeakKeyDictionary[Engine, Callable[[dict[str, Any]], None]] = (
    weakref.WeakKeyDictionary()
)


def after_commit(engine: Engine, callback: Callable[[dict[str, Any]], None]) -> None:
    """Call ``callback(session.info)`` after each write transaction on ``engine`` commits
    (the webhook sender learns of queued events this way, never before they are durable)."""
    _AFTER_COMMIT[engine] = callback


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error."""
    with (
        translate_db_errors(engine),
        Session(writer(engine), expire_on_commit=False) as session,
    ):
        with session.begin():
            yield session
        callback = _AFTER_COMMIT.get(engine)
        if callback is not None and session.info:
            callback(dict(session.info))


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
        if "readonly" in message or "read-only" in message:
            raise StoreError(
                f"the database {redact(str(engine.url))} is read-only here; this needs a store "
                "you can write to"
            ) from error
        if "locked" in message:
            raise StoreError(
                f"the database {redact(str(engine.url))} stayed locked for "
                f"{BUSY_TIMEOUT_SECONDS} s by another writer; try again when it finishes"
            ) from error
        raise StoreError(
            f"cannot use the database {redact(str(engine.url))}: {message.strip()}"
            f"{_space_hint(engine.url, message)}"
        ) from error
    except exc.InterfaceError as error:
        raise StoreError(f"cannot reach the database {redact(str(engine.url))}") from error
    except exc.DataError as error:  # what the API checks first, said plainly if it slipped by
        message = str(error.orig) if error.orig is not None else str(error)
        if "NUL" in message or "0x00" in message or "\\u0000" in message:
            raise InvalidInput(
                "a text holds a NUL character (\\x00), which PostgreSQL cannot store; remove it"
            ) from error
        first = message.strip().splitlines()[0]
        raise InvalidInput(f"the database refused a value: {first}") from error
    except exc.ProgrammingError as error:
        message = str(error.orig) if error.orig is not None else str(error)
        raise StoreError(
            f"the database {redact(str(engine.url))} is not a forebear catalog, or was replaced "
            f"while in use ({message.strip().splitlines()[0]})"
        ) from error


def _space_hint(url: URL, message: str) -> str:
    """What to do when a write failed for want of space: said when the server says so
    (SQLite's "disk is full", PostgreSQL's "No space left on device"), and when SQLite
    reports a bare "disk I/O error" while its file's disk has almost nothing free (a
    journal that could not grow fails that way)."""
    if "disk is full" in message or "No space left" in message:
        return "; free some space on its disk and run it again"
    if "disk I/O error" not in message or not url.drivername.startswith("sqlite"):
        return ""
    try:
        folder = os.path.dirname(os.path.abspath(url.database or ""))
        facts = os.statvfs(folder)
    except OSError:
        return ""
    free = facts.f_bavail * facts.f_frsize
    if free >= LOW_SPACE_BYTES:
        return ""
    return f" (only {free // 1024} KiB free on its disk); free some space and run it again"


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


def ensure_schema(engine: Engine, *, read_only: bool = False, create: bool = True) -> None:
    """Create or upgrade the schema; safe when several processes do it at once. A
    read-only catalog is only checked; without ``create`` an empty database is refused."""
    with translate_db_errors(engine):
        with engine.connect() as connection:
            revision = current_revision(connection)
            connection.rollback()
        if revision == SCHEMA_HEAD:
            if not read_only:
                _forget_edge_statistics(engine)
            return
        if revision is not None and revision > SCHEMA_HEAD:
            raise StoreVersionError(
                f"the database {redact(str(engine.url))} has schema {revision}, newer than "
                f"this forebear knows ({SCHEMA_HEAD}); upgrade forebear"
            )
        if revision is None and not create:
            raise StoreNotFound(
                f"the database {redact(str(engine.url))} holds no forebear catalog; make one "
                "with 'forebear init', or check the URL"
            )
        if read_only:
            raise StoreVersionError(
                f"the database {redact(str(engine.url))} has schema {revision or 'none'} and "
                f"needs {SCHEMA_HEAD}, but it is read-only here; open it once where it can be "
                "written to upgrade it"
            )
        with (
            writer(engine).connect() as connection,
            _foreign_keys_off(connection),
            connection.begin(),
        ):
            if engine.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})"))
            revision = current_revision(connection)
            if revision is None and _holds_no_catalog(connection):
                _create(connection)
            elif revision != SCHEMA_HEAD:
                _upgrade(connection)


@contextlib.contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite only: foreign keys off while migrations rebuild tables (SQLite changes a
    table's constraints by copying it into a new one and dropping the old, which the
    tables referring to it would refuse), checked before the upgrade commits. The pragma
    only takes effect outside a transaction, so it is set on the driver's connection."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


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


def _holds_no_catalog(connection: Connection) -> bool:
    from sqlalchemy import inspect

    from .schema import Base

    return not set(inspect(connection).get_table_names()) & set(Base.metadata.tables)


def _create(connection: Connection) -> None:
    """A new catalog, made from the models at once and marked as at `SCHEMA_HEAD`, the
    way Alembic's own "create_all, then stamp head" does it: running every migration from
    the first took 0.25 s and loaded Alembic (about 8 MiB) for every new store. Tests
    check that both ways build the same tables, indexes and constraints."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    from .schema import Base

    Base.metadata.create_all(connection)
    versions = Table(  # Alembic's own bookkeeping table, as Alembic makes it
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    versions.create(connection)
    connection.execute(versions.insert().values(version_num=SCHEMA_HEAD))


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "forebear.db:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
