"""Recording an unchanged re-log through the standard library, for a store not yet opened
in full.

Logging files that make a live version again writes three small things: the run, its
output edge with the log's audit event, and the run's end. Importing SQLAlchemy and
building the schema's mappings costs about 0.3 s, most of such a command. `LiteLog`
answers what the re-log check asks (`local.unchanged.Questions`) and writes those rows
with ``sqlite3`` exactly as the full backend writes them (a test holds the two to the same
rows). It writes only in the plain case: the catalog is still the store's, the version is
live, its artifact has the logged type and ``latest`` already points at it, and the run
used nothing (so it cannot descend from the version, and the edge keeps lineage acyclic).
In any other case, and whenever SQLite cannot answer (locked too long, read-only,
replaced), it writes nothing and says None; the caller then logs the full way, which
handles every case and gives every error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from ..chunking import Chunking, ChunkList
from ..records import RunData, VersionData
from .lite import BUSY_TIMEOUT_SECONDS, LATEST, LiteCatalog, file_uri, stored_moment

_LIST_BATCH = 500  # digests per IN (...) query, as `chunks.chunk_lists_for` asks
FORGET_COUNT = "objects_forgotten"  # `packs.FORGET_COUNT` (a test holds them equal)


class Unanswered(Exception):
    """SQLite could not answer a question of the re-log check: log the full way."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LiteLog(LiteCatalog):
    """See the module docstring: the questions of a re-log, and its rows."""

    # -- the questions (`local.unchanged.Questions`) ------------------------------------

    def answer(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        """The rows ``sql`` selects; `Unanswered` when SQLite could not say."""
        rows = self.rows(sql, list(params))
        if rows is None:
            raise Unanswered(sql)
        return rows

    def live_version(self, project: str, name: str, digest: str) -> VersionData | None:
        rows = self.answer(
            "SELECT v.id FROM versions v JOIN artifacts a ON a.id = v.artifact_id "
            "JOIN projects p ON p.id = a.project_id "
            "WHERE p.name = ? AND a.name = ? AND v.digest = ? AND v.deleted_at IS NULL",
            (project, name, digest),
        )
        if len(rows) != 1:
            return None
        version = self.version(int(rows[0][0]))
        if version is None:
            raise Unanswered("a version row forebear did not write")
        return version

    def redacted(self, version_id: int) -> bool:
        sql = "SELECT 1 FROM redactions WHERE version_id = ? LIMIT 1"
        return bool(self.answer(sql, (version_id,)))

    def unpacked_files(
        self, version_id: int, after: str | None, limit: int
    ) -> list[tuple[str, str, int]]:
        # `packs.unpacked_files`, statement for statement
        sql = (
            "SELECT e.path, e.digest, e.size FROM entries e "
            "WHERE e.version_id = ? AND e.uri IS NULL AND e.digest IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM packed_objects o "
            "  WHERE o.digest = e.digest AND o.length = e.size) "
            "AND NOT (EXISTS (SELECT 1 FROM chunk_lists l WHERE l.digest = e.digest) "
            "  AND NOT EXISTS (SELECT 1 FROM chunk_members m WHERE m.file = e.digest "
            "    AND NOT EXISTS (SELECT 1 FROM packed_objects o WHERE o.digest = m.chunk)))"
        )
        params: list[Any] = [version_id]
        if after is not None:
            sql += " AND e.path > ?"
            params.append(after)
        sql += " ORDER BY e.path LIMIT ?"
        params.append(limit)
        return [(str(p), str(d), int(s)) for p, d, s in self.answer(sql, params)]

    def chunk_lists(self, digests: Iterable[str]) -> dict[str, ChunkList]:
        found: dict[str, ChunkList] = {}
        sql = "SELECT digest, size, CAST(chunking AS TEXT), chunks FROM chunk_lists WHERE {}"
        for digest, size, chunking, packed in self._among(sql, "digest", digests):
            chunks = Chunking.from_dict(json.loads(chunking))
            found[digest] = ChunkList.unpack(digest, size, chunks, bytes(packed))
        return found

    def whole_mark(self) -> str | None:
        """The store's whole mark (`commit.whole_mark`); None when the store has not
        started counting (the full way starts it)."""
        count = self.answer("SELECT value FROM store_info WHERE key = ?", (FORGET_COUNT,))
        if len(count) != 1 or not str(count[0][0]).isdigit() or self.store_id is None:
            return None
        return f"{self.store_id}:{int(count[0][0])}"

    def locate(self, digests: Collection[str]) -> dict[str, tuple[str, int, int]]:
        """(pack, offset, length) of each of ``digests`` that is packed: `packs.locate`,
        statement for statement."""
        sql = (
            "SELECT o.digest, o.pack, o.offset, o.length FROM packed_objects o "
            "JOIN packs k ON k.digest = o.pack WHERE {} "
            "ORDER BY k.created_at, k.digest"  # the newest last: it wins
        )
        return {
            d: (p, offset, length) for d, p, offset, length in self._among(sql, "o.digest", digests)
        }

    def _among(self, sql: str, column: str, digests: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` (its ``{}`` the condition on ``column``) for ``digests``,
        asked `_LIST_BATCH` at a time, each batch's rows in the statement's order."""
        wanted = sorted(set(digests))
        for start in range(0, len(wanted), _LIST_BATCH):
            batch = wanted[start : start + _LIST_BATCH]
            condition = f"{column} IN ({', '.join('?' * len(batch))})"
            yield from self.answer(sql.format(condition), batch)

    # -- the rows ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``, as the full backend's writes) on the
        catalog file as it is now, refused unless it is still this store's; never creates
        a file that went missing."""
        connection = sqlite3.connect(
            file_uri(self.path, "rw"), uri=True, timeout=BUSY_TIMEOUT_SECONDS
        )
        connection.isolation_level = None
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("BEGIN IMMEDIATE")
            found = connection.execute(
                "SELECT value FROM store_info WHERE key = 'store_id'"
            ).fetchall()
            if found != [(self.store_id,)]:
                raise sqlite3.DatabaseError("the catalog is no longer the store's")
            yield connection
            connection.execute("COMMIT")
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            connection.close()

    def create_run(
        self,
        run_id: str,
        project: str,
        name: str,
        config: dict[str, Any],
        context: dict[str, Any],
        started_at: dt.datetime | None,
    ) -> RunData | None:
        """Record a running run (in a new project, made here), as `runs.create_run` does."""
        started = started_at or _now()
        try:
            with self._writing() as db:
                db.execute(
                    "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)",
                    (project, stored_moment(_now())),
                )
                project_id = db.execute(
                    "SELECT id FROM projects WHERE name = ?", (project,)
                ).fetchone()
                db.execute(
                    "INSERT INTO runs (id, project_id, name, status, config, summary, context,"
                    " started_at, heartbeat_at) VALUES (?, ?, ?, 'running', ?, '{}', ?, ?, ?)",
                    (run_id, project_id[0], name, json.dumps(config), json.dumps(context),
                     stored_moment(started), stored_moment(_now())),
                )  # fmt: skip
                return RunData(run_id, project, name, "running", config, {}, context, started, None)
        except sqlite3.Error:
            return None

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None,
        summary: dict[str, Any] | None,
        ended_at: dt.datetime | None,
        config: dict[str, Any] | None = None,
    ) -> bool:
        """`runs.update_run`; False when it could not be written here."""
        values = {
            "status": status,
            "summary": None if summary is None else json.dumps(summary),
            "ended_at": None if ended_at is None else stored_moment(ended_at),
            "config": None if config is None else json.dumps(config),
        }
        changes = {column: value for column, value in values.items() if value is not None}
        if not changes:
            return True
        assignments = ", ".join(f"{column} = ?" for column in changes)
        try:
            with self._writing() as db:
                db.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", [*changes.values(), run_id]
                )
        except sqlite3.Error:
            return False
        return True

    def beat_run(self, run_id: str) -> bool | None:
        """`runs.beat_run`; None when it could not be written here."""
        try:
            with self._writing() as db:
                done = db.execute(
                    "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                    (stored_moment(_now()), run_id),
                )
                return done.rowcount > 0
        except sqlite3.Error:
            return None

    def log_again(
        self, version: VersionData, type_: str, run_id: str | None, actor: str
    ) -> VersionData | None:
        """Record a log that found ``version`` (`commit.log_again` with no alias, tag or
        time to live), in one transaction; None, with nothing written, outside the plain
        case."""
        try:
            with self._writing() as db:
                found = db.execute(
                    "SELECT v.deleted_at, v.number, a.type, p.name, a.name, l.version_id "
                    "FROM versions v JOIN artifacts a ON a.id = v.artifact_id "
                    "JOIN projects p ON p.id = a.project_id "
                    "LEFT JOIN aliases l ON l.artifact_id = a.id AND l.name = ? "
                    "WHERE v.id = ?",
                    (LATEST, version.id),
                ).fetchone()
                if found is None:
                    return None
                deleted_at, number, stored_type, project, name, latest = found
                if deleted_at is not None or stored_type != type_ or latest != version.id:
                    return None
                if run_id is not None:
                    run = db.execute("SELECT pk FROM runs WHERE id = ?", (run_id,)).fetchone()
                    if (
                        run is None
                        or db.execute(
                            "SELECT 1 FROM edges WHERE run_pk = ? AND direction = 'in' LIMIT 1",
                            (run[0],),
                        ).fetchone()
                    ):
                        return None
                    db.execute(
                        "INSERT OR IGNORE INTO edges (run_pk, direction, version_id) "
                        "VALUES (?, 'out', ?)",
                        (run[0], version.id),
                    )
                details = {"created": False, "files": version.file_count}
                db.execute(
                    "INSERT INTO audit_events (at, actor, action, target, artifact_id,"
                    " version_id, run_id, details) VALUES (?, ?, 'log', ?, ?, ?, ?, ?)",
                    (stored_moment(_now()), actor[:256], f"{project}/{name}:v{number}"[:600],
                     version.artifact_id, version.id, run_id, json.dumps(details)),
                )  # fmt: skip
        except sqlite3.Error:
            return None
        return version
