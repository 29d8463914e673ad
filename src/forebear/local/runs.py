"""Runs in a local backend: started, listed a page at a time, changed, deleted, and the
versions each used and logged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from .. import liveness
from ..db import lifecycle as db_lifecycle
from ..db import projects as db_projects
from ..db import runs as db_runs
from ..db import traversal
from ..db import versions as db_versions
from ..db import webhooks as db_webhooks
from ..db.engine import Engine, read_session, write_session
from ..errors import InvalidInput, RunStateError
from ..records import RunData, VersionData
from ..runchecks import checked_alert, checked_process, checked_run_edit


class LocalRuns:
    """The runs half of `LocalBackend` (which provides the engine and the actor)."""

    engine: Engine
    actor: str

    if TYPE_CHECKING:  # provided by LocalBackend

        def require_writable(self) -> None: ...

    def create_run(
        self,
        run_id: str,
        project: str,
        name: str,
        config: dict[str, Any],
        context: dict[str, Any],
        *,
        started_at: dt.datetime | None = None,
    ) -> RunData:
        self.require_writable()
        with write_session(self.engine) as session:
            row = db_runs.create_run(
                session, run_id=run_id, project=project, name=name, config=config,
                context=context, started_at=started_at,
            )  # fmt: skip
            return run_data(row, project)

    def get_run(self, run_id: str) -> RunData:
        with read_session(self.engine) as session:
            row = db_runs.get_run(session, run_id)
            return run_data(row, db_projects.project_name(session, row.project_id))

    def list_runs(
        self,
        project: str | None,
        *,
        include_deleted: bool = False,
        newest_first: bool = False,
        after: str | None = None,
        start: int = 0,
        limit: int | None = None,
        within: Collection[str] | None = None,
    ) -> list[RunData]:
        with read_session(self.engine) as session:
            found = db_runs.list_runs(
                session, project, include_deleted=include_deleted, newest_first=newest_first,
                after=after, start=start, limit=limit, within=within,
            )  # fmt: skip
            return [run_data(row, name) for row, name in found]

    def count_runs(
        self,
        project: str | None,
        *,
        include_deleted: bool = False,
        within: Collection[str] | None = None,
    ) -> int:
        with read_session(self.engine) as session:
            return db_runs.count_runs(
                session, project, include_deleted=include_deleted, within=within
            )

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        summary: dict[str, Any] | None = None,
        ended_at: dt.datetime | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        values = {"status": status, "summary": summary, "ended_at": ended_at, "config": config}
        with write_session(self.engine) as session:
            db_runs.update_run(
                session, run_id, **{k: v for k, v in values.items() if v is not None}
            )

    def log_history(
        self,
        run_id: str,
        steps: list[int],
        values: list[dict[str, float]],
        summary: dict[str, Any],
    ) -> None:
        with write_session(self.engine) as session:
            db_runs.record_history(session, run_id, zip(steps, values, strict=True))
            db_runs.update_run(session, run_id, summary=summary)

    def run_history(self, run_id: str) -> list[dict[str, Any]]:
        with read_session(self.engine) as session:
            return db_runs.history(session, run_id)

    def beat_run(self, run_id: str) -> bool:
        with write_session(self.engine) as session:
            return db_runs.beat_run(session, run_id)

    def use(self, version_id: int, run_id: str) -> None:
        with write_session(self.engine) as session:
            # A run reading back its own output (directly, or made from it by another run)
            # is not recorded as an input: that edge would make the lineage loop.
            pk = db_runs.run_pk(session, run_id)
            if not traversal.version_descends_from_run(session, version_id, pk):
                db_runs.add_edge(session, pk, version_id, "in")

    def runs_of_version(self, version_id: int, direction: str) -> list[RunData]:
        with read_session(self.engine) as session:
            rows = db_runs.runs_of_version(session, version_id, direction)
            names = {r.project_id: db_projects.project_name(session, r.project_id) for r in rows}
            return [run_data(r, names[r.project_id]) for r in rows]

    def versions_of_run(self, run_id: str, direction: str) -> list[VersionData]:
        with read_session(self.engine) as session:
            rows = db_runs.versions_of_run(session, run_id, direction)
            loaded = db_versions.load_versions(session, [r.id for r in rows])
        return [loaded[r.id] for r in rows]

    def edit_run(self, run_id: str, changes: dict[str, Any]) -> RunData:
        self.require_writable()
        with write_session(self.engine) as session:
            changes = checked_run_edit(changes)  # a server's client may not be forebear's
            row = db_lifecycle.edit_run(session, run_id, self.actor, changes)
            return run_data(row, db_projects.project_name(session, row.project_id))

    def resume_run(self, run_id: str, process: dict[str, Any]) -> RunData:
        self.require_writable()
        process = checked_process(process)  # a server's client may not be forebear's
        with write_session(self.engine) as session:
            row, read = _locked(session, run_id)
            if read.status == "running":
                where = row.context or {}
                raise InvalidInput(
                    f"run {run_id} is running (process {where.get('pid')} on "
                    f"{where.get('host')}): a run is resumed only once it has ended or "
                    "crashed; wait for it to end, or start a new run"
                )
            row = db_lifecycle.resume_run(session, row, self.actor, process, read.status)
            return run_data(row, read.project)

    def alert_run(self, run_id: str, title: str, text: str, level: str) -> None:
        self.require_writable()
        title, text, level = checked_alert(title, text, level)
        with write_session(self.engine) as session:
            _, read = _locked(session, run_id)
            if read.status != "running":
                raise RunStateError(f"cannot send an alert: run {run_id} is {read.status}")
            alert = {"title": title, "text": text, "level": level}
            db_webhooks.queue(
                session, "run.alert", self.actor,
                {"run": run_id, "project": read.project, "name": read.name, **alert},
            )  # fmt: skip

    def delete_run(self, run_id: str, *, delete_outputs: bool) -> list[str]:
        self.require_writable()
        deleted: list[str] = []
        with write_session(self.engine) as session:
            db_lifecycle.delete_run(session, run_id, self.actor)
            if delete_outputs:
                for row in db_runs.versions_of_run(session, run_id, "out"):
                    if row.deleted_at is None:
                        db_lifecycle.delete_version(
                            session, row, self.actor, delete_aliases=True, reason=f"run {run_id}"
                        )
                        deleted.append(db_lifecycle.qualified(session, row))
        return deleted


def _locked(session: Any, run_id: str) -> tuple[Any, RunData]:
    """A run that is not deleted, locked until the transaction ends: its row, and the run
    as read (a running run whose process is gone reads as ``crashed``)."""
    row = db_lifecycle.run_to_change(session, run_id)
    return row, run_data(row, db_projects.project_name(session, row.project_id))


def run_data(row: Any, project: str) -> RunData:
    """A run as read: a running run whose process is gone reads as ``crashed`` (reading
    never writes it down)."""
    status = row.status
    if status == "running" and not liveness.alive(
        row.context or {}, row.heartbeat_at or row.started_at
    ):
        status = "crashed"
    return RunData(
        id=row.id,
        project=project,
        name=row.name,
        status=status,
        config=dict(row.config or {}),
        summary=dict(row.summary or {}),
        context=dict(row.context or {}),
        started_at=row.started_at,
        ended_at=row.ended_at,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
    )
