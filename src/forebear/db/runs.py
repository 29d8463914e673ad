"""Runs and their lineage edges (a run used a version: ``in``; logged it: ``out``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Select, String, func, literal, select, tuple_, update
from sqlalchemy.orm import Session

from ..errors import (
    RunNotFound,
)
from ..metrics import kept_whole
from ..records import RunSummary
from . import bulk
from .bulk import insert_ignoring_duplicates
from .projects import get_or_create_project
from .schema import (
    EdgeRow,
    MetricRow,
    ProjectRow,
    RunRow,
    UTCDateTime,
    VersionRow,
    utcnow,
)

SelectT = TypeVar("SelectT", bound=Select)  # type: ignore[type-arg]


# History rows read from a store at a time when a run is copied to another (`history_rows`)
_HISTORY_PAGE = 5_000


def load_run_summaries(session: Session, run_pks: Iterable[int]) -> dict[int, RunSummary]:
    """Many runs at once, by their integer key (without their config or context)."""
    query = (
        select(RunRow.pk, RunRow.id, RunRow.name, RunRow.status, RunRow.started_at,
               ProjectRow.name, RunRow.deleted_at.is_not(None))
        .join(ProjectRow, ProjectRow.id == RunRow.project_id)
        .where(RunRow.pk.in_(bulk.id_list(session)))
    )  # fmt: skip
    found: dict[int, RunSummary] = {}
    for row in bulk.rows_for(session, query, run_pks):
        values: tuple[Any, ...] = tuple(row)
        found[values[0]] = RunSummary(*values)
    return found


def copy_run(session: Session, run: RunRow, project: str) -> None:
    """Insert a run from another store under the same id (runs ids are random and long
    enough not to collide in practice)."""
    project_row = get_or_create_project(session, project)
    session.add(
        RunRow(
            id=run.id,
            project_id=project_row.id,
            name=run.name,
            status=run.status,
            config=run.config,
            summary=run.summary,
            context=run.context,
            started_at=run.started_at,
            ended_at=run.ended_at,
        )
    )
    session.flush()


def create_run(
    session: Session,
    *,
    run_id: str,
    project: str,
    name: str,
    config: dict[str, Any],
    context: dict[str, Any],
    started_at: dt.datetime | None = None,
) -> RunRow:
    project_row = get_or_create_project(session, project)
    run = RunRow(
        id=run_id,
        project_id=project_row.id,
        name=name,
        status="running",
        config=config,
        summary={},
        context=context,
        started_at=started_at or utcnow(),
    )
    run.heartbeat_at = utcnow()
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: str) -> RunRow:
    run = session.execute(select(RunRow).where(RunRow.id == run_id)).scalar_one_or_none()
    if run is None:
        raise RunNotFound(f"no run with id {run_id!r} (run 'forebear runs' to list them)")
    return run


def list_runs(
    session: Session,
    project: str | None = None,
    *,
    include_deleted: bool = True,
    newest_first: bool = False,
    after: str | None = None,
    start: int = 0,
    limit: int | None = None,
    within: Collection[str] | None = None,
) -> list[tuple[RunRow, str]]:
    """Runs oldest (or newest) first, each with its project's name, in one query.

    A page is found by its key, not by counting: ``after`` names the last run of the
    page before (it must exist: runs are never removed, only marked deleted), so pages
    read one after another neither skip nor repeat a run while others are started.
    ``within`` keeps only the runs of those projects (a server's reader sees only what
    it may read)."""
    query = select(RunRow, ProjectRow.name).join(ProjectRow, ProjectRow.id == RunRow.project_id)
    query = _only(query, project, include_deleted, within)
    key = tuple_(RunRow.started_at, RunRow.id)
    if after is not None:
        mark = session.execute(
            select(RunRow.started_at, RunRow.id).where(RunRow.id == after)
        ).one_or_none()
        if mark is None:
            raise RunNotFound(f"no run with id {after!r} to list the runs after")
        bound = tuple_(literal(mark[0], UTCDateTime()), literal(mark[1], String()))
        query = query.where(key < bound if newest_first else key > bound)
    if newest_first:
        query = query.order_by(RunRow.started_at.desc(), RunRow.id.desc())
    else:
        query = query.order_by(RunRow.started_at, RunRow.id)
    if start:
        query = query.offset(start)
    if limit is not None:
        query = query.limit(limit)
    return [(run, name) for run, name in session.execute(query)]


def count_runs(
    session: Session,
    project: str | None = None,
    *,
    include_deleted: bool = True,
    within: Collection[str] | None = None,
) -> int:
    """How many runs `list_runs` would list with the same choices."""
    query = select(func.count(RunRow.pk)).join(ProjectRow, ProjectRow.id == RunRow.project_id)
    return int(session.execute(_only(query, project, include_deleted, within)).scalar_one())


def _only(
    query: SelectT, project: str | None, include_deleted: bool, within: Collection[str] | None
) -> SelectT:
    """The query, keeping only the runs asked for."""
    if project is not None:
        query = query.where(ProjectRow.name == project)
    if within is not None:
        query = query.where(ProjectRow.name.in_(sorted(within)))
    if not include_deleted:
        query = query.where(RunRow.deleted_at.is_(None))
    return query


def beat_run(session: Session, run_id: str) -> bool:
    """Record that a running run is alive; False once it is no longer running."""
    done = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "running")
        .values(heartbeat_at=utcnow())
    )
    return bool(getattr(done, "rowcount", 0))


def update_run(session: Session, run_id: str, **values: Any) -> None:
    session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def add_edge(session: Session, run_pk: int, version_id: int, direction: str) -> None:
    insert_ignoring_duplicates(
        session,
        EdgeRow,
        [{"run_pk": run_pk, "version_id": version_id, "direction": direction}],
    )


def run_pk(session: Session, run_id: str) -> int:
    pk = session.execute(select(RunRow.pk).where(RunRow.id == run_id)).scalar_one_or_none()
    if pk is None:
        raise RunNotFound(f"no run with id {run_id!r} (run 'forebear runs' to list them)")
    return int(pk)


def runs_of_version(session: Session, version_id: int, direction: str) -> list[RunRow]:
    """Runs that logged (``out``) or used (``in``) a version, oldest edge first."""
    return list(
        session.execute(
            select(RunRow)
            .join(EdgeRow, EdgeRow.run_pk == RunRow.pk)
            .where(EdgeRow.version_id == version_id, EdgeRow.direction == direction)
            .order_by(RunRow.started_at, RunRow.pk)
        ).scalars()
    )


def versions_of_run(session: Session, run_id: str, direction: str) -> list[VersionRow]:
    return list(
        session.execute(
            select(VersionRow)
            .join(EdgeRow, EdgeRow.version_id == VersionRow.id)
            .join(RunRow, RunRow.pk == EdgeRow.run_pk)
            .where(RunRow.id == run_id, EdgeRow.direction == direction)
            .order_by(VersionRow.id)
        ).scalars()
    )


def edges_of_versions(
    session: Session, version_ids: Iterable[int]
) -> list[tuple[RunRow, str, str, int]]:
    """Every edge of these versions: (run, its project's name, direction, version id)."""
    rows = session.execute(
        select(RunRow, ProjectRow.name, EdgeRow.direction, EdgeRow.version_id)
        .join(EdgeRow, EdgeRow.run_pk == RunRow.pk)
        .join(ProjectRow, ProjectRow.id == RunRow.project_id)
        .where(EdgeRow.version_id.in_(sorted(set(version_ids))))
    ).all()
    return [(run, project, direction, version_id) for run, project, direction, version_id in rows]


def has_run(session: Session, run_id: str) -> bool:
    return session.execute(select(RunRow.pk).where(RunRow.id == run_id)).first() is not None


def record_history(
    session: Session, run_id: str, rows: Iterable[tuple[int, dict[str, float]]]
) -> None:
    """The values of several steps, in the order they were logged: logging a key at a step
    again replaces its value. A whole number (an ``int``) is kept exactly too, to be read
    back as one, where the catalog's integers hold it (`metrics.kept_whole`; otherwise as
    its float, as `check_metric` keeps it)."""
    latest: dict[tuple[str, int], float] = {}
    for step, values in rows:
        for key, value in values.items():
            latest[(key, step)] = value
    if not latest:
        return
    pk, now = run_pk(session, run_id), utcnow()
    rows_now = [
        {"run_pk": pk, "key": key, "step": step, "value": float(value),
         "whole": int(value) if kept_whole(value) else None, "at": now}
        for (key, step), value in latest.items()
    ]  # fmt: skip
    bulk.upsert_rows(
        session,
        MetricRow.__table__,  # type: ignore[arg-type]
        rows_now,
        key=("run_pk", "key", "step"),
    )


def history_rows(session: Session, run_id: str) -> Iterator[dict[str, Any]]:
    """A run's history as stored, read a few thousand rows at a time: what `copy_history`
    writes into another store."""
    rows = session.execute(
        select(MetricRow.key, MetricRow.step, MetricRow.value, MetricRow.whole, MetricRow.at)
        .where(MetricRow.run_pk == run_pk(session, run_id))
        .order_by(MetricRow.step, MetricRow.key)
        .execution_options(yield_per=_HISTORY_PAGE)
    )
    for key, step, value, whole, at in rows:
        yield {"key": key, "step": step, "value": value, "whole": whole, "at": at}


def copy_history(session: Session, run_id: str, rows: Iterable[dict[str, Any]]) -> None:
    """Insert a run's history read from another store (`history_rows`) under this store's
    key for the run, in batches: memory stays flat however long the history."""
    pk = run_pk(session, run_id)
    table = MetricRow.__table__
    bulk.insert_rows(session, table, ({**row, "run_pk": pk} for row in rows))  # type: ignore[arg-type]


def history(session: Session, run_id: str) -> list[dict[str, Any]]:
    """One row per step, oldest first: ``step`` and the values logged at it."""
    rows = session.execute(
        select(MetricRow.step, MetricRow.key, MetricRow.value, MetricRow.whole)
        .where(MetricRow.run_pk == run_pk(session, run_id))
        .order_by(MetricRow.step, MetricRow.key)
    )
    found: dict[int, dict[str, Any]] = {}
    for step, key, value, whole in rows:
        found.setdefault(step, {"step": step})[key] = value if whole is None else whole
    return list(found.values())


def last_step(session: Session, run_id: str) -> int | None:
    return session.execute(
        select(func.max(MetricRow.step)).where(MetricRow.run_pk == run_pk(session, run_id))
    ).scalar()
