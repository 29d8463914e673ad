"""The rest of W&B's names on a run that scripts read: where its page is (``url``,
``get_url()``, ``get_project_url()``), ``display_name``, ``start_time``, ``metadata``,
``user``, ``summary_metrics``, the flags of a run (resumed or not; never offline nor in a
sweep), ``alert()``, ``wait_until_finished()`` and ``delete()``."""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, RunStateError
from .pages import on_server, run_page, runs_page
from .runchecks import AlertLevel, checked_alert

if TYPE_CHECKING:
    from .habits import RunValues
    from .store import Store


# How often `wait_until_finished` reads a run's record again.
WAIT_INTERVAL = 0.5
# How long an alert's title waits before it is sent again, unless the script says.
ALERT_WAIT = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class User:
    """W&B's ``User`` of ``run.user`` and ``api.viewer``: who a store's audit trail names
    (``name@host`` on a store reached directly, the account on a server)."""

    username: str

    @property
    def name(self) -> str:
        return self.username

    email = None  # forebear knows users by name only
    entity = None  # and a store is one team's

    def __str__(self) -> str:
        return self.username


class RunAttributes:
    """W&B's remaining run attributes on `Run`."""

    _store: Store

    if TYPE_CHECKING:  # provided by Run
        id: str
        project: str
        name: str
        started_at: dt.datetime
        ended_at: dt.datetime | None
        status: str
        context: dict[str, Any]
        summary: RunValues
        _live: bool

        def history(self) -> Any: ...
        def load(self, force: bool = False) -> dict[str, Any]: ...

    # a run resumed by `init` says so itself; none runs offline, disabled or in a sweep
    resumed = False
    offline = False
    disabled = False
    sweep_id = None
    sweep = None
    starting_step = 0
    _alerts_sent: dict[str, float] | None = None  # when each title was last sent (monotonic)

    @property
    def metadata(self) -> dict[str, Any]:
        """W&B's run metadata (where and how it ran): forebear's `context`, the git
        commit, command line, host, Python and package versions."""
        return dict(self.context)

    @property
    def user(self) -> User | None:
        """W&B's: who started the run, as the store's audit trail names them (see `User`);
        None for a run recorded before forebear kept it, or imported without one."""
        user = self.context.get("user")
        return User(user) if isinstance(user, str) and user else None

    @property
    def summary_metrics(self) -> dict[str, Any]:
        """W&B's name for a copy of `summary`."""
        return dict(self.summary)

    def wait_until_finished(self, timeout: float | None = None) -> None:
        """W&B's: wait until the run is no longer running, reading its record again
        (`load`) every half second: finished, failed, or crashed (a run whose process
        stopped without finishing it reads as crashed once its heartbeat is overdue).
        ``timeout``: seconds to wait at most, then `TimeoutError`."""
        if self._live:
            raise RunStateError(
                f"run {self.id} is the one this process executes: it ends when this process "
                "finishes it (run.finish()), so waiting for it here would never end"
            )
        if timeout is not None and not (
            isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout >= 0
        ):  # NaN, a negative number or text: it would never end, or end at once for nothing
            raise InvalidInput(f"timeout must be a number of seconds from 0, not {timeout!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.load()["status"] == "running":
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.id} is still running after {timeout} s")
            time.sleep(WAIT_INTERVAL)

    @property
    def system_metrics(self) -> dict[str, Any]:
        """W&B's CPU and GPU samples: forebear records none."""
        return {}

    @property
    def heartbeat_at(self) -> str:
        """W&B's: when the run was last known alive, as ISO 8601 text (its end, or its
        start while it runs), as `forebear.runfilters` reads it."""
        return (self.ended_at or self.started_at).isoformat()

    @property
    def url(self) -> str | None:
        """The run's page in the web UI of the forebear server the store is reached
        through; None for a store reached directly (as W&B's is for an offline run):
        ``forebear ui`` shows it at ``/runs/<id>``."""
        return on_server(self._store.db_url, run_page(self.id))

    def get_url(self) -> str | None:
        """W&B's ``run.get_url()``: `url`."""
        return self.url

    def get_project_url(self) -> str | None:
        """The page of the project's runs on the server (see `url`); None otherwise."""
        return on_server(self._store.db_url, runs_page(self.project))

    def project_name(self) -> str:
        """W&B's ``run.project_name()``: `project`."""
        return self.project

    @property
    def display_name(self) -> str:
        """W&B's name for `name`."""
        return self.name

    @display_name.setter
    def display_name(self, value: str) -> None:
        self.name = value

    @property
    def start_time(self) -> float:
        """W&B's: when the run started, in seconds since the epoch (`started_at`)."""
        return self.started_at.timestamp()

    @property
    def lastHistoryStep(self) -> int:  # W&B's spelling
        """W&B's: the last step logged, -1 before any."""
        return max((int(row["step"]) for row in self.history()), default=-1)

    def alert(
        self,
        title: str,
        text: str,
        level: str | AlertLevel | None = None,
        wait_duration: float | dt.timedelta | None = None,
    ) -> None:
        """W&B's ``run.alert``: a ``run.alert`` event for the store's webhooks that asked
        for it (see `Store.add_webhook`: Slack, mail or a pager behind a webhook), and a
        line on stderr. An alert of the same title within ``wait_duration`` (seconds or a
        timedelta; a minute unless said) of the one sent before is not sent again, so a
        check in a training loop does not flood its receiver."""
        if self.status != "running" or not self._live:
            raise RunStateError(
                f"cannot send an alert: run {self.id} is {self.status} (alerts come from "
                "the run this process executes)"
            )
        wait = ALERT_WAIT if wait_duration is None else wait_duration
        if isinstance(wait, bool) or not isinstance(wait, int | float | dt.timedelta):
            raise InvalidInput(f"wait_duration is seconds or a timedelta, not {wait!r:.80}")
        seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
        if not 0 <= seconds < float("inf"):
            raise InvalidInput(f"wait_duration is 0 or more seconds, not {wait_duration!r}")
        title, text, said = checked_alert(title, text, AlertLevel.INFO if level is None else level)
        if self._alerts_sent is None:
            self._alerts_sent = {}
        now, last = time.monotonic(), self._alerts_sent.get(title)
        if last is not None and now - last < seconds:
            return
        self._store.backend.alert_run(self.id, title, text, said)
        self._alerts_sent[title] = now
        print(f"forebear: {said} alert from run {self.id}: {title}", file=sys.stderr)

    def mark_preempting(self) -> None:
        """W&B's: tells its server the run may be stopped and resumed; any run that ended or
        crashed can be resumed here (``init(id=..., resume="allow")``): nothing to tell."""

    def delete(self, delete_artifacts: bool = False) -> list[str]:
        """W&B's ``run.delete()``: `Store.delete_run`, the versions it logged too with
        ``delete_artifacts``; the refs of those deleted."""
        return self._store.delete_run(self.id, delete_outputs=delete_artifacts)
