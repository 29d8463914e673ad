"""The pack index as the catalog records it: every object of every pack recorded once per
pack, whatever the grouping of the statements that insert them, on SQLite (one JSON
document of many packs a statement) and on PostgreSQL (rows)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forebear.db import packs as db_packs
from forebear.db.engine import ensure_schema, make_engine, read_session, write_session


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    url = (
        f"sqlite:///{tmp_path / 'catalog.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def slots(count: int) -> dict[str, tuple[int, int]]:
    return {os.urandom(16).hex(): (i * 100, 100 + i) for i in range(count)}


def test_packs_recorded_in_groups_keep_every_slot(
    catalog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_packs, "_SLOTS_A_STATEMENT", 5)  # a statement every two packs
    packs = [(os.urandom(16).hex(), 10_000 + n, slots(3 + n)) for n in range(7)]
    with write_session(catalog) as session:
        db_packs.record_packs(session, packs)
    with read_session(catalog) as session:
        assert db_packs.recorded(session) == {pack for pack, _, _ in packs}
        for pack, _, own in packs:
            assert db_packs.slots_in(session, pack) == own
        every = {d: (pack, *where) for pack, _, own in packs for d, where in own.items()}
        assert db_packs.locate(session, every) == every


def test_an_object_in_two_packs_is_found_in_the_newest_and_a_pack_recorded_again_once(
    catalog: Any,
) -> None:
    shared = os.urandom(16).hex()
    first = {shared: (0, 10), **slots(2)}
    second = {**slots(2), shared: (400, 10)}
    with write_session(catalog) as session:
        db_packs.record_packs(session, [("a" * 32, 100, first)])
    with write_session(catalog) as session:  # a pack twice, and a newer one in one go
        db_packs.record_packs(session, [("a" * 32, 100, first), ("b" * 32, 500, second)])
    with read_session(catalog) as session:
        assert db_packs.slots_in(session, "a" * 32) == first
        assert db_packs.slots_in(session, "b" * 32) == second
        assert db_packs.locate(session, [shared]) == {shared: ("b" * 32, 400, 10)}
