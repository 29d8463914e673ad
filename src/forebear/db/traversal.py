"""Lineage traversal inside the database, one portable code path for SQLite and PostgreSQL.

Two shapes of query, chosen from measurements:

- `walk`: a frontier walk, one indexed query per hop for the whole frontier. It yields hop
  distances for free. (Distances computed inside a recursive CTE make the database
  enumerate every path length: about 100 times slower on a 10,000-node closure.)
- `closure`: an ids-only recursive CTE, for when only the set of versions matters.

Both follow edges through runs: upstream goes version <-out- run <-in- version, downstream
the other way. Neither loads more of the graph than the part asked about.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, bindparam, select, text
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from .schema import EdgeRow

CHUNK = 5000  # ids per IN list: well under every backend's bound-parameter limit

# (run_id, direction, version_id), as stored in the edges table.
Edge = tuple[str, str, int]


def directions(upstream: bool) -> tuple[str, str]:
    """(edge from a version to its runs, edge from those runs to the next versions)."""
    return ("out", "in") if upstream else ("in", "out")


@dataclass
class Walk:
    """What a walk found: each version's hop distance, and every edge crossed."""

    distances: dict[int, int] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def walk(session: Session, start: int, upstream: bool, depth: int | None = None) -> Walk:
    """Versions reachable from ``start`` within ``depth`` artifact hops (None: all),
    nearest first, with the edges crossed; runs that lead nowhere further (a producer with
    no inputs, a consumer with no outputs) are kept as edges too."""
    if depth is not None and depth < 0:
        raise InvalidInput(f"depth must be 0 or more, not {depth}")
    near_dir, far_dir = directions(upstream)
    near = EdgeRow.__table__.alias("near")
    far = EdgeRow.__table__.alias("far")
    step = (
        select(near.c.version_id, near.c.run_id, far.c.version_id)
        .select_from(
            near.outerjoin(far, and_(far.c.run_id == near.c.run_id, far.c.direction == far_dir))
        )
        .where(
            near.c.direction == near_dir, near.c.version_id.in_(bindparam("ids", expanding=True))
        )
    )
    found = Walk(distances={start: 0})
    frontier = [start]
    hop = 0
    while frontier and (depth is None or hop < depth):
        hop += 1
        next_frontier: set[int] = set()
        for ids in _chunks(frontier):
            for version_id, run_id, far_version in session.execute(step, {"ids": ids}):
                found.edges.add((run_id, near_dir, version_id))
                if far_version is None:
                    continue
                found.edges.add((run_id, far_dir, far_version))
                if far_version not in found.distances:
                    found.distances[far_version] = hop
                    next_frontier.add(far_version)
        frontier = sorted(next_frontier)
    return found


_CLOSURE = text(
    """
    WITH RECURSIVE reached(version_id) AS (
        SELECT :start
        UNION
        SELECT far.version_id
        FROM reached
        JOIN edges AS near ON near.version_id = reached.version_id AND near.direction = :near
        JOIN edges AS far ON far.run_id = near.run_id AND far.direction = :far
    )
    SELECT version_id FROM reached
    """
)


def closure(session: Session, start: int, upstream: bool) -> set[int]:
    """Every version reachable from ``start`` (itself included): ids only, no distances."""
    near_dir, far_dir = directions(upstream)
    rows = session.execute(_CLOSURE, {"start": start, "near": near_dir, "far": far_dir})
    return {int(version_id) for (version_id,) in rows}


def edges_among(session: Session, version_ids: Iterable[int], upstream: bool) -> set[Edge]:
    """The edges that link a closure together: each version's runs on the walking side,
    and those runs' edges on the far side that stay inside the closure."""
    near_dir, far_dir = directions(upstream)
    members = set(version_ids)
    edges: set[Edge] = set()
    runs: set[str] = set()
    for ids in _chunks(sorted(members)):
        query = select(EdgeRow.run_id, EdgeRow.version_id).where(
            EdgeRow.direction == near_dir, EdgeRow.version_id.in_(ids)
        )
        for run_id, version_id in session.execute(query):
            edges.add((run_id, near_dir, version_id))
            runs.add(run_id)
    run_list = sorted(runs)
    for start in range(0, len(run_list), CHUNK):
        query = select(EdgeRow.run_id, EdgeRow.version_id).where(
            EdgeRow.direction == far_dir, EdgeRow.run_id.in_(run_list[start : start + CHUNK])
        )
        for run_id, version_id in session.execute(query):
            if version_id in members:
                edges.add((run_id, far_dir, version_id))
    return edges


_RUN_DESCENDS_FROM = text(
    """
    WITH RECURSIVE reached(version_id) AS (
        SELECT version_id FROM edges WHERE run_id = :run AND direction = 'in'
        UNION
        SELECT far.version_id
        FROM reached
        JOIN edges AS near ON near.version_id = reached.version_id AND near.direction = 'out'
        JOIN edges AS far ON far.run_id = near.run_id AND far.direction = 'in'
    )
    SELECT 1 FROM reached WHERE version_id = :version
    """
)


def run_descends_from(session: Session, run_id: str, version_id: int) -> bool:
    """True when the run used the version, or anything made from it, as an input: then
    recording the run as the version's producer would close a cycle."""
    row = session.execute(_RUN_DESCENDS_FROM, {"run": run_id, "version": version_id}).first()
    return row is not None


_VERSION_DESCENDS_FROM_RUN = text(
    """
    WITH RECURSIVE reached(version_id) AS (
        SELECT version_id FROM edges WHERE run_id = :run AND direction = 'out'
        UNION
        SELECT far.version_id
        FROM reached
        JOIN edges AS near ON near.version_id = reached.version_id AND near.direction = 'in'
        JOIN edges AS far ON far.run_id = near.run_id AND far.direction = 'out'
    )
    SELECT 1 FROM reached WHERE version_id = :version
    """
)


def version_descends_from_run(session: Session, version_id: int, run_id: str) -> bool:
    """True when the version is one of the run's outputs or was made from one: then
    recording the run as its consumer would close a cycle."""
    found = session.execute(_VERSION_DESCENDS_FROM_RUN, {"run": run_id, "version": version_id})
    return found.first() is not None
