"""Lineage traversal inside the database, one portable code path for SQLite and PostgreSQL.

Two shapes of query, chosen from measurements:

- `walk`: a frontier walk, one indexed query per hop for the whole frontier. It yields hop
  distances for free. (Distances computed inside a recursive CTE make the database
  enumerate every path length: about 100 times slower on a 10,000-node closure.)
- `closure`: an ids-only recursive CTE, for when only the set of versions matters.

Both follow edges through runs: upstream goes version <-out- run <-in- version, downstream
the other way. They also cross registry links (a registry version's upstream is the source
it links; a link counts as one hop): links are few, so they are followed with one extra
query per hop in the walk, and in a short loop around the closure query. Neither loads
more of the graph than the part asked about.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, select, text
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from . import bulk
from .schema import EdgeRow, VersionRow

CHUNK = 50_000  # ids per frontier query

# (run_pk, direction, version_id), as stored in the edges table.
Edge = tuple[int, str, int]
# (source version id, registry version id)
Link = tuple[int, int]


def directions(upstream: bool) -> tuple[str, str]:
    """(edge from a version to its runs, edge from those runs to the next versions)."""
    return ("out", "in") if upstream else ("in", "out")


@dataclass
class Walk:
    """What a walk found: each version's hop distance, and every edge crossed."""

    distances: dict[int, int] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)
    links: set[Link] = field(default_factory=set)


def has_links(session: Session) -> bool:
    """Whether any registry link exists (most stores: none, and walks skip link queries)."""
    return bool(
        session.execute(select(exists().where(VersionRow.source_version_id.is_not(None)))).scalar()
    )


def links_from(session: Session, version_ids: Iterable[int], upstream: bool) -> set[Link]:
    """The links one hop from these versions: to their sources (upstream), or from the
    registry versions that link them (downstream)."""
    ids = set(version_ids)
    if not ids:
        return set()
    if upstream:
        query = select(VersionRow.source_version_id, VersionRow.id).where(
            VersionRow.id.in_(bulk.id_list(session)), VersionRow.source_version_id.is_not(None)
        )
    else:
        query = select(VersionRow.source_version_id, VersionRow.id).where(
            VersionRow.source_version_id.in_(bulk.id_list(session))
        )
    return {(source, link) for source, link in bulk.rows_for(session, query, ids)}


def _far_ends(links: set[Link], upstream: bool) -> set[int]:
    return {source if upstream else link for source, link in links}


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _frontier_rows(session: Session, step: Any, frontier: Sequence[int]) -> Iterable[Any]:
    """One query per chunk of the frontier (a single chunk unless it is huge)."""
    connection = session.connection()
    for ids in _chunks(frontier):
        yield connection.execute(step, bulk.ids_param(session, ids)).all()


def walk(
    session: Session,
    start: int,
    upstream: bool,
    depth: int | None = None,
    *,
    with_edges: bool = False,
) -> Walk:
    """Versions reachable from ``start`` within ``depth`` artifact hops (None: all), with
    their hop distances; with ``with_edges``, every edge crossed too, including runs that
    lead nowhere further (a producer with no inputs, a consumer with no outputs)."""
    if depth is not None and depth < 0:
        raise InvalidInput(f"depth must be 0 or more, not {depth}")
    near_dir, far_dir = directions(upstream)
    near = EdgeRow.__table__.alias("near")
    far = EdgeRow.__table__.alias("far")
    frontier_ids = near.c.version_id.in_(bulk.id_list(session))
    same_run = and_(far.c.run_pk == near.c.run_pk, far.c.direction == far_dir)
    if with_edges:
        joined = near.outerjoin(far, same_run)
        step = select(near.c.version_id, near.c.run_pk, far.c.version_id)
    else:
        joined = near.join(far, same_run)
        step = select(far.c.version_id).distinct()
    step = step.select_from(joined).where(near.c.direction == near_dir, frontier_ids)
    found = Walk(distances={start: 0})
    frontier = [start]
    hop = 0
    linked = has_links(session)
    while frontier and (depth is None or hop < depth):
        hop += 1
        next_frontier: list[int] = []
        if linked:
            links = links_from(session, frontier, upstream)
            found.links |= links
            for version_id in _far_ends(links, upstream):
                if version_id not in found.distances:
                    found.distances[version_id] = hop
                    next_frontier.append(version_id)
        for rows in _frontier_rows(session, step, frontier):
            if with_edges:
                for version_id, run_pk, far_version in rows:
                    found.edges.add((run_pk, near_dir, version_id))
                    if far_version is not None:
                        found.edges.add((run_pk, far_dir, far_version))
                reached = [r[2] for r in rows if r[2] is not None]
            else:
                reached = [r[0] for r in rows]
            for version_id in reached:
                if version_id not in found.distances:
                    found.distances[version_id] = hop
                    next_frontier.append(version_id)
        frontier = next_frontier
    return found


_CLOSURE = text(
    """
    WITH RECURSIVE reached(version_id) AS (
        SELECT CAST(:start AS INTEGER)
        UNION
        SELECT far.version_id
        FROM reached
        JOIN edges AS near ON near.version_id = reached.version_id AND near.direction = :near
        JOIN edges AS far ON far.run_pk = near.run_pk AND far.direction = :far
    )
    SELECT version_id FROM reached
    """
)


def closure(session: Session, start: int, upstream: bool) -> set[int]:
    """Every version reachable from ``start`` (itself included): ids only, no distances."""
    return _with_links(session, _edge_closure(session, start, upstream), upstream)


def _edge_closure(session: Session, start: int, upstream: bool) -> set[int]:
    near_dir, far_dir = directions(upstream)
    rows = session.execute(_CLOSURE, {"start": start, "near": near_dir, "far": far_dir})
    return {int(version_id) for (version_id,) in rows}


def _with_links(session: Session, members: set[int], upstream: bool) -> set[int]:
    """``members`` grown across registry links until nothing new is reached."""
    if not has_links(session):
        return members
    checked: set[int] = set()
    while True:
        fresh = members - checked
        checked |= fresh
        crossed = _far_ends(links_from(session, fresh, upstream), upstream) - members
        if not crossed:
            return members
        for version_id in crossed:
            members |= _edge_closure(session, version_id, upstream)


def links_among(session: Session, version_ids: Iterable[int]) -> set[Link]:
    """The links whose both ends are among these versions."""
    members = set(version_ids)
    if not has_links(session):
        return set()
    return {
        (source, link)
        for source, link in links_from(session, members, upstream=True)
        if source in members
    }


def edges_among(session: Session, version_ids: Iterable[int], upstream: bool) -> set[Edge]:
    """The edges that link a closure together: each version's runs on the walking side,
    and those runs' edges on the far side that stay inside the closure."""
    near_dir, far_dir = directions(upstream)
    members = set(version_ids)
    by_version = select(EdgeRow.run_pk, EdgeRow.version_id).where(
        EdgeRow.direction == near_dir, EdgeRow.version_id.in_(bulk.id_list(session))
    )
    edges = {(run, near_dir, v) for run, v in bulk.rows_for(session, by_version, members)}
    by_run = select(EdgeRow.run_pk, EdgeRow.version_id).where(
        EdgeRow.direction == far_dir, EdgeRow.run_pk.in_(bulk.id_list(session))
    )
    runs = {run for run, _, _ in edges}
    edges.update(
        (run, far_dir, v) for run, v in bulk.rows_for(session, by_run, runs) if v in members
    )
    return edges


# Versions reached from a run's own edges on the far side, walking on in that direction.
_FROM_RUN = text(
    """
    WITH RECURSIVE reached(version_id) AS (
        SELECT version_id FROM edges WHERE run_pk = :run AND direction = :far
        UNION
        SELECT far.version_id
        FROM reached
        JOIN edges AS near ON near.version_id = reached.version_id AND near.direction = :near
        JOIN edges AS far ON far.run_pk = near.run_pk AND far.direction = :far
    )
    SELECT 1 FROM reached WHERE version_id = :version
    """
)


def _reached_from_run(session: Session, run_pk: int, version_id: int, upstream: bool) -> bool:
    near_dir, far_dir = directions(upstream)
    params = {"run": run_pk, "version": version_id, "near": near_dir, "far": far_dir}
    if session.execute(_FROM_RUN, params).first() is not None:
        return True
    if not has_links(session):
        return False
    # across registry links too: start from the run's own far-side versions
    starts = select(EdgeRow.version_id).where(
        EdgeRow.run_pk == run_pk, EdgeRow.direction == far_dir
    )
    reached: set[int] = set()
    for (start,) in session.execute(starts).all():
        if start not in reached:
            reached |= closure(session, start, upstream)
    return version_id in reached


def run_descends_from(session: Session, run_pk: int, version_id: int) -> bool:
    """True when the run used the version, or anything made from it, as an input: then
    recording the run as the version's producer would close a cycle."""
    return _reached_from_run(session, run_pk, version_id, upstream=True)


def version_descends_from_run(session: Session, version_id: int, run_pk: int) -> bool:
    """True when the version is one of the run's outputs or was made from one: then
    recording the run as its consumer would close a cycle."""
    return _reached_from_run(session, run_pk, version_id, upstream=False)
