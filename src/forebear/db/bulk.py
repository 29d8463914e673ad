"""Statements over many rows at once.

Passing many ids to one query: a single JSON parameter on SQLite, an array on PostgreSQL.
Binding thousands of ids one by one means rendering and binding thousands of parameters per
query; one parameter holding them all costs nothing to bind and keeps one cached statement.
Inserting many rows that may exist already: one ``ON CONFLICT DO NOTHING`` per batch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Enum, Integer, String, Table, bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from .schema import Base

_INSERT_BATCH = 5000
LARGE_CACHE_MIB = 64

PARAMETER = "ids"


def id_list(session: Session) -> Any:
    """A subquery yielding the ids bound by `ids_param`, for ``column.in_(...)``."""
    if session.get_bind().dialect.name == "sqlite":
        rows = func.json_each(bindparam(PARAMETER, type_=String))
        return select(literal_column("value")).select_from(rows).scalar_subquery()
    from sqlalchemy.dialects.postgresql import ARRAY  # its import costs 40 ms, SQLite skips it

    return select(func.unnest(bindparam(PARAMETER, type_=ARRAY(Integer)))).scalar_subquery()


def ids_param(session: Session, ids: Sequence[int] | Sequence[str]) -> dict[str, Any]:
    """The bound parameters for `id_list` (or `string_list`, given strings)."""
    if session.get_bind().dialect.name == "sqlite":
        return {PARAMETER: json.dumps(list(ids))}
    return {PARAMETER: list(ids)}


def string_list(session: Session) -> Any:
    """`id_list` for strings (digests), bound by `rows_for_strings`."""
    if session.get_bind().dialect.name == "sqlite":
        rows = func.json_each(bindparam(PARAMETER, type_=String))
        return select(literal_column("value")).select_from(rows).scalar_subquery()
    from sqlalchemy.dialects.postgresql import ARRAY

    return select(func.unnest(bindparam(PARAMETER, type_=ARRAY(String)))).scalar_subquery()


def rows_for_strings(
    session: Session, statement: Any, values: Iterable[str], chunk: int = 50_000
) -> Iterator[Any]:
    """`rows_for`, for a statement filtering on `string_list`."""
    ordered = sorted(set(values))
    connection = session.connection()
    sqlite = session.get_bind().dialect.name == "sqlite"
    for start in range(0, len(ordered), chunk):
        batch = ordered[start : start + chunk]
        params = {PARAMETER: json.dumps(batch) if sqlite else batch}
        yield from connection.execute(statement, params).all()


def rows_for(
    session: Session, statement: Any, ids: Iterable[int], chunk: int = 50_000
) -> Iterator[Any]:
    """Run a statement that filters on `id_list` for every chunk of ``ids``; yield its rows.

    Core rows straight from the connection: no ORM result processing per row.
    """
    ordered = sorted(set(ids))
    connection = session.connection()
    for start in range(0, len(ordered), chunk):
        params = ids_param(session, ordered[start : start + chunk])
        yield from connection.execute(statement, params).all()


def insert_ignoring_duplicates(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT rows, skipping those whose key already exists (both SQLite and PostgreSQL)."""
    insert_rows(session, model.__table__, rows, ignore_duplicates=True)  # type: ignore[arg-type]


def insert_rows(
    session: Session,
    table: Table,
    rows: Iterable[dict[str, Any]],
    *,
    ignore_duplicates: bool = False,
    batch: int = _INSERT_BATCH,
) -> None:
    """INSERT many rows (dicts with the same keys) as the driver's own executemany: the
    statement is compiled once and each value goes through its column's bind processor, as
    Core would do, without Core's bookkeeping per row (a third of the cost; a log inserts
    a row per file into several tables), ``batch`` rows at a time. ``ignore_duplicates``:
    skip rows whose key exists."""
    connection = session.connection()
    dialect = connection.dialect
    statement = _insert_statement(dialect.name, table, ignore_duplicates)
    for rows_now in _batches(session, rows, batch):
        sql, params = _driver_params(statement, table, dialect, rows_now)
        connection.exec_driver_sql(sql, params)


def insert_values(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    ignore_duplicates: bool = False,
    batch: int = _INSERT_BATCH,
) -> None:
    """`insert_rows` for rows given as sequences of ``columns``' values, each row also
    taking the ``fixed`` columns' values (the version every entry belongs to, say).

    On SQLite, where every column holds whole numbers or text, a batch goes in as one JSON
    array bound to one statement (`_json_insert`): no Python work for each row, and
    SQLite's own JSON reader in place of binding each value. Otherwise the driver takes the
    rows as they are where the statement names the columns in that order and none needs
    converting (no dict, and no picking of values, for each of a log's million rows)."""
    connection = session.connection()
    dialect = connection.dialect
    fixed = dict(fixed or {})
    if dialect.name == "sqlite" and _json_carries(dialect, table, [*fixed, *columns]):
        sql = _json_insert(dialect, table, list(fixed), columns, ignore_duplicates)
        for rows_now in _batches(session, rows, batch):
            document = json.dumps(rows_now, ensure_ascii=False, check_circular=False)
            connection.exec_driver_sql(sql, (*fixed.values(), document))
        return
    names = [*columns, *fixed]
    if fixed:
        extra = tuple(fixed.values())
        rows = (tuple(row) + extra for row in rows)
    statement = _insert_statement(dialect.name, table, ignore_duplicates)
    compiled = statement.compile(dialect=dialect, column_keys=names)
    as_they_are = compiled.positiontup == names and not any(
        table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in names
    )
    for rows_now in _batches(session, rows, batch):
        if as_they_are:
            connection.exec_driver_sql(str(compiled), rows_now)
        else:
            named = [dict(zip(names, row, strict=True)) for row in rows_now]
            sql, params = _driver_params(statement, table, dialect, named)
            connection.exec_driver_sql(sql, params)


def _json_carries(dialect: Any, table: Table, columns: Sequence[str]) -> bool:
    """Whether JSON carries these columns' values exactly: whole numbers, text and null,
    with no bind processor between them and the database."""
    types = [table.c[name].type for name in columns]
    return all(
        isinstance(t, (Integer, String))
        and not isinstance(t, Enum)
        and t.dialect_impl(dialect).bind_processor(dialect) is None
        for t in types
    )


def _json_insert(
    dialect: Any, table: Table, fixed: Sequence[str], columns: Sequence[str], ignore: bool
) -> str:
    """``INSERT INTO table (fixed..., columns...) SELECT ?..., json_extract(value, '$[0]'),
    ... FROM json_each(?)``: the fixed values bound one by one, the rows as one JSON array of
    arrays, in order (``json_extract``, not SQLite 3.38's ``->>``: Python's SQLite may be
    older). Measured on SQLite, 50,000 entries of a log: 0.22 s, against 0.35 s making each
    row a tuple for the driver to bind."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in [*fixed, *columns])
    values = ", ".join(
        ["?"] * len(fixed) + [f"json_extract(value, '$[{i}]')" for i in range(len(columns))]
    )
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
        f"SELECT {values} FROM json_each(?) WHERE true"  # WHERE: SQLite's rule for an upsert
    )
    return sql + " ON CONFLICT DO NOTHING" if ignore else sql


def upsert_rows(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    *,
    change: Sequence[str] | None = None,
    batch: int = _INSERT_BATCH,
) -> None:
    """INSERT many rows (dicts with the same keys), each replacing the values of a row
    already there with the same ``key`` columns (only its ``change`` columns, if given:
    the others keep their first values), on both SQLite and PostgreSQL. No two rows may
    share a key: PostgreSQL refuses to change a row twice in one statement."""
    connection = session.connection()
    dialect = connection.dialect
    statement = _insert_statement(dialect.name, table, ignore_duplicates=False)
    changed = [column for column in rows[0] if column not in key] if rows else []
    if change is not None:
        changed = [column for column in changed if column in change]
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in changed}
    )
    for rows_now in _batches(session, rows, batch):
        sql, params = _driver_params(statement, table, dialect, rows_now)
        connection.exec_driver_sql(sql, params)


def _batches(session: Session, rows: Iterable[Any], batch: int) -> Iterator[list[Any]]:
    """``rows`` in lists of ``batch``, for the inserts of `insert_rows` and `insert_values`;
    when there are many, under a large page cache: many rows land all over an index
    (digests are random), whose pages are best kept in memory."""
    it = iter(rows)
    batches = iter(lambda: list(islice(it, batch)), [])
    first = next(batches, None)
    if first is None:
        return
    roomy = large_cache(session) if len(first) >= _INSERT_BATCH else contextlib.nullcontext()
    with roomy:
        yield from chain([first], batches)


def _insert_statement(dialect_name: str, table: Table, ignore_duplicates: bool) -> Any:
    statement: Any
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql  # 40 ms to import: only where needed

        statement = postgresql.insert(table)
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(table)
    return statement.on_conflict_do_nothing() if ignore_duplicates else statement


def _driver_params(
    statement: Any, table: Table, dialect: Any, batch: list[dict[str, Any]]
) -> tuple[str, list[Any]]:
    """The SQL and the driver's parameters for inserting ``batch``."""
    keys = list(batch[0])
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    processors = {  # the dialect's own type (PostgreSQL's JSON, say), as Core would use
        key: table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys
    }
    order = compiled.positiontup
    if order is None:  # named parameters (psycopg): one dict per row
        return str(compiled), [
            {k: (p(row[k]) if (p := processors[k]) else row[k]) for k in keys} for row in batch
        ]
    # each row's values in the statement's order in one C call; then only the columns
    # with a processor (times, JSON) are converted (a log inserts millions of values)
    pick = itemgetter(*order) if len(order) > 1 else (lambda row: (row[order[0]],))
    converting = [(i, p) for i, key in enumerate(order) if (p := processors[key]) is not None]
    if not converting:
        return str(compiled), [pick(row) for row in batch]
    params = []
    for row in batch:
        values = list(pick(row))
        for i, convert in converting:
            values[i] = convert(values[i])
        params.append(tuple(values))
    return str(compiled), params


@contextlib.contextmanager
def large_cache(session: Session, mebibytes: int = LARGE_CACHE_MIB) -> Iterator[None]:
    """A larger page cache for this SQLite connection while statements change rows all
    over a large index (gc deleting most entries: their digests, and so their places in
    the digest index, are random): with SQLite's 2 MiB, index pages are evicted, read and
    spilled to the journal again and again. Only pages actually touched take memory.
    PostgreSQL keeps its shared buffers."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = {-1024 * mebibytes}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")
