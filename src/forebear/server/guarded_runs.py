"""What a server's user may ask of its runs: the role a run's project needs for each
call, and listings that hold only runs of projects the user may read (a mixin of
`GuardedBackend`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..local import LocalBackend
    from ..records import Principal, RunData, VersionData

# Runs sent for one call: a page (`forebear.run_listing` asks for 500), so a server's memory
# does not grow with its catalog whoever asks.
MOST_RUNS_AT_ONCE = 5000


class GuardedRuns:
    """Each call checks the caller's role in the run's project, then asks the server's
    backend."""

    inner: LocalBackend
    principal: Principal

    if TYPE_CHECKING:  # provided by GuardedBackend

        def need(self, project: str, role: str) -> None: ...
        def may_read(self, project: str) -> bool: ...
        def run(self, run_id: object, role: str = "reader") -> RunData: ...
        def version(self, version_id: object, role: str = "reader") -> VersionData: ...
        def readable(self, versions: Iterable[VersionData]) -> list[VersionData]: ...

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
        self.need(project, "writer")
        context = {**context, "user": self.principal.name}  # who the token is, whatever it says
        return self.inner.create_run(run_id, project, name, config, context, started_at=started_at)

    def get_run(self, run_id: str) -> RunData:
        return self.run(run_id)

    def list_runs(
        self, project: str | None, *, include_deleted: bool = False, newest_first: bool = False,
        after: str | None = None, start: int = 0, limit: int | None = None,
        within: Collection[str] | None = None,
    ) -> list[RunData]:  # fmt: skip
        if limit is None or limit > MOST_RUNS_AT_ONCE:  # a page, never a whole catalog
            raise InvalidInput(
                f"a server lists at most {MOST_RUNS_AT_ONCE} runs at a time: ask for a limit,"
                " and for the next page after the id of the last run listed (after=...); a"
                " forebear client that asks for every run at once is older than this server:"
                " upgrade it"
            )
        if after is not None:
            self.run(after)  # a run id from a project the user may not read is not a key
        return self.inner.list_runs(
            project, include_deleted=include_deleted, newest_first=newest_first, after=after,
            start=start, limit=limit, within=self.readable_projects(project, within),
        )  # fmt: skip

    def count_runs(
        self, project: str | None, *, include_deleted: bool = False,
        within: Collection[str] | None = None,
    ) -> int:  # fmt: skip
        return self.inner.count_runs(
            project, include_deleted=include_deleted,
            within=self.readable_projects(project, within),
        )  # fmt: skip

    def readable_projects(
        self, project: str | None, within: Collection[str] | None
    ) -> frozenset[str] | None:
        """Of the projects asked for (None: all), those the user may read; None for an
        admin who asked for all. Runs are filtered in the query, so pages stay full."""
        if project is not None:
            self.need(project, "reader")
        if self.principal.admin:
            return None if within is None else frozenset(within)
        mine = self.principal.projects()
        return mine if within is None else mine & frozenset(within)

    def update_run(
        self, run_id: str, *, status: str | None = None, summary: dict[str, Any] | None = None,
        ended_at: dt.datetime | None = None, config: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.run(run_id, "writer")
        self.inner.update_run(run_id, status=status, summary=summary, ended_at=ended_at,
                              config=config)  # fmt: skip

    def edit_run(self, run_id: str, changes: dict[str, Any]) -> RunData:
        self.run(run_id, "writer")
        return self.inner.edit_run(run_id, changes)

    def resume_run(self, run_id: str, process: dict[str, Any]) -> RunData:
        self.run(run_id, "writer")
        return self.inner.resume_run(run_id, process)

    def alert_run(self, run_id: str, title: str, text: str, level: str) -> None:
        self.run(run_id, "writer")
        self.inner.alert_run(run_id, title, text, level)

    def log_history(
        self,
        run_id: str,
        steps: list[int],
        values: list[dict[str, float]],
        summary: dict[str, Any],
    ) -> None:
        self.run(run_id, "writer")
        self.inner.log_history(run_id, steps, values, summary)

    def run_history(self, run_id: str) -> list[dict[str, Any]]:
        return self.inner.run_history(self.run(run_id).id)

    def beat_run(self, run_id: str) -> bool:
        self.run(run_id, "writer")
        return self.inner.beat_run(run_id)

    def use(self, version_id: int, run_id: str) -> None:
        self.run(run_id, "writer")
        self.inner.use(self.version(version_id).id, run_id)

    def runs_of_version(self, version_id: int, direction: str) -> list[RunData]:
        found = self.inner.runs_of_version(self.version(version_id).id, direction)
        return [r for r in found if self.may_read(r.project)]

    def versions_of_run(self, run_id: str, direction: str) -> list[VersionData]:
        return self.readable(self.inner.versions_of_run(self.run(run_id).id, direction))

    def delete_run(self, run_id: str, *, delete_outputs: bool) -> list[str]:
        self.run(run_id, "maintainer")
        return self.inner.delete_run(run_id, delete_outputs=delete_outputs)
