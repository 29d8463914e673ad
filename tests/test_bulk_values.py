"""`bulk.insert_values`: rows given as tuples land in the columns they name, on SQLite (as
they are, where the statement's order is theirs) and on PostgreSQL (as named values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, Text, select

from forebear.db import bulk
from forebear.db.engine import make_engine, write_session

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("key", String(20), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("note", String(40)),
)
SIZES = Table(
    "sizes",
    METADATA,
    Column("key", String(20), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("note", Text),
)
WITH_JSON = Table(
    "with_json",
    METADATA,
    Column("key", String(20), primary_key=True),
    Column("data", JSON),
)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = (
        f"sqlite:///{tmp_path / 'bulk.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def rows_of(engine: Any, table: Table) -> list[tuple[Any, ...]]:
    with write_session(engine) as session:
        return [tuple(row) for row in session.execute(select(table).order_by(table.c.key))]


def test_tuples_in_the_tables_order_and_in_another_land_in_their_columns(database: Any) -> None:
    with write_session(database) as session:
        bulk.insert_values(
            session, THINGS, ("key", "count", "note"), [("a", 1, "x"), ("b", 2, None)]
        )
        bulk.insert_values(session, THINGS, ("note", "key", "count"), [("y", "c", 3)])
    assert rows_of(database, THINGS) == [("a", 1, "x"), ("b", 2, None), ("c", 3, "y")]


def test_values_that_need_converting_are_converted(database: Any) -> None:
    with write_session(database) as session:
        bulk.insert_values(session, WITH_JSON, ("key", "data"), [("a", {"n": [1, 2]})])
    assert rows_of(database, WITH_JSON) == [("a", {"n": [1, 2]})]


def test_duplicates_are_skipped_when_asked_and_refused_otherwise(database: Any) -> None:
    with write_session(database) as session:
        bulk.insert_values(session, THINGS, ("key", "count", "note"), [("a", 1, "first")])
    with write_session(database) as session:
        bulk.insert_values(
            session,
            THINGS,
            ("key", "count", "note"),
            [("a", 9, "again"), ("b", 2, "new")],
            ignore_duplicates=True,
        )
    assert rows_of(database, THINGS) == [("a", 1, "first"), ("b", 2, "new")]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), write_session(database) as s:
        bulk.insert_values(s, THINGS, ("key", "count", "note"), [("a", 3, "refused")])
    assert rows_of(database, THINGS) == [("a", 1, "first"), ("b", 2, "new")]


def test_many_rows_go_in_batches_in_their_order(database: Any) -> None:
    rows = [(f"k{i:06d}", i, None) for i in range(12_345)]
    with write_session(database) as session:
        bulk.insert_values(session, THINGS, ("key", "count", "note"), iter(rows), batch=1000)
    assert rows_of(database, THINGS) == rows


def test_fixed_values_go_in_every_row(database: Any) -> None:
    with write_session(database) as session:
        bulk.insert_values(
            session, THINGS, ("key", "note"), iter([("a", "x"), ("b", None)]), fixed={"count": 7}
        )
    assert rows_of(database, THINGS) == [("a", 7, "x"), ("b", 7, None)]


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'quote " and \\ backslash',
        "new\nline\ttab\r",
        "caf\u00e9 \u2028 \u2029 \U0001f600 \u4e2d",
        "\x01\x1f\x7f",
        "",
        "[1, 2]",
        "null",
        "{}",
    ],
)
def test_every_text_and_number_comes_back_as_it_went_in(database: Any, text: str) -> None:
    # on SQLite the rows travel as JSON: what JSON escapes, or could read as another type,
    # must land as the same text, and numbers as the same whole numbers
    rows = [("t", 2**63 - 1, text), ("u", -(2**63), None), ("v", 0, text[::-1])]
    with write_session(database) as session:
        bulk.insert_values(session, SIZES, ("key", "size", "note"), rows)
    assert rows_of(database, SIZES) == rows
