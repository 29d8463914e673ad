"""W&B's ``init(mode="disabled")``: a run that records nothing and opens no store, so a
script written for forebear runs unchanged where nothing should be kept (a test, a debug
session, a CI job). As in W&B, its ``config`` and ``summary`` are plain in-memory values
(`log` updates the summary), `log_artifact` returns an object any attribute or call of
which gives itself back (so ``run.log_artifact(a).wait()`` still runs), `use_artifact`
returns None, and every other method of `forebear.Run` is there and does nothing."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from .habits import RunValues
from .history_rows import HistoryRows
from .metrics import history_frame

# what the module-level calls and `forebear.run` find a disabled run answering
_NO_RECORD: dict[str, Any] = {
    "resumed": False,
    "offline": False,
    "sweep": None,
    "sweep_id": None,
    "starting_step": 0,
    "step": 0,
    "store": None,
    "url": None,
    "user": None,
    "deleted": False,
    "deleted_at": None,
    "deleted_by": None,
    "heartbeat_at": None,
    "lastHistoryStep": -1,
    "system_metrics": {},
    "inputs": [],
    "outputs": [],
}


class NoOp:
    """What a disabled run's `log_artifact` returns: every attribute and call gives it
    back, as W&B's disabled ``log_artifact(...)`` result does."""

    def __getattr__(self, name: str) -> NoOp:
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle and the like see an ordinary object
        return self

    def __call__(self, *args: Any, **options: Any) -> NoOp:
        return self

    def __repr__(self) -> str:
        return "<nothing logged: the run is disabled>"


def _nothing(*args: Any, **options: Any) -> None:
    """A method of a disabled run: accepted, and nothing is recorded."""


class DisabledRun:
    """A run started with ``mode="disabled"`` (see the module's docstring). It has every
    public name of `forebear.Run`; its ``status`` turns ``finished`` (or ``failed``) when
    it is finished."""

    disabled = True
    mode = "disabled"

    def __init__(
        self,
        run_id: str,
        project: str,
        name: str,
        config: dict[str, Any],
        described: dict[str, Any],
        on_finish: Callable[[Any], None],  # told this run once it is finished
    ) -> None:
        self.id, self.project, self.name = run_id, project, name
        self.status = "running"
        self.context = dict(described)
        self.config = RunValues(config, "config", lambda values: None)
        self.summary = RunValues({}, "summary", lambda values: None)
        self.started_at = dt.datetime.now(dt.timezone.utc)
        self.ended_at: dt.datetime | None = None
        self._on_finish = on_finish
        for name, value in _NO_RECORD.items():  # each run its own lists and dicts
            setattr(self, name, copy.copy(value))

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.project}/{self.name} disabled>"

    # what W&B's disabled run does
    def log(self, values: dict[str, Any], step: int | None = None, commit: Any = None) -> None:
        """The values go into `summary` (W&B's disabled ``log``); no history is kept."""
        del step, commit
        self.summary.update(values)

    def log_artifact(self, *args: Any, **options: Any) -> NoOp:
        return NoOp()

    def use_artifact(self, *args: Any, **options: Any) -> None:
        """None, as in W&B: a disabled run reads nothing."""

    def save(self, *args: Any, **options: Any) -> bool:
        return False

    def finish(
        self, status: str = "finished", exit_code: int | None = None, quiet: bool | None = None
    ) -> None:
        del quiet
        if self.status != "running":
            return
        if exit_code is not None:
            status = "finished" if exit_code == 0 else "failed"
        self.status, self.ended_at = status, dt.datetime.now(dt.timezone.utc)
        self._on_finish(self)

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    # forebear.Run's other names, answering as a run that recorded nothing would
    define_metric = watch = unwatch = mark_preempting = update = alert = _nothing
    link_artifact = link_model = log_model = use_model = log_code = _nothing
    upsert_artifact = finish_artifact = wait_until_finished = file = _nothing

    @property
    def dir(self) -> str:
        import tempfile  # 10 ms that a recorded run's quick re-log does not spend

        return tempfile.gettempdir()  # as W&B's: a folder that exists, kept nowhere

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"

    @property
    def state(self) -> str:
        return self.status

    @property
    def created_at(self) -> str:
        return self.started_at.isoformat()

    @property
    def start_time(self) -> float:
        return self.started_at.timestamp()

    @property
    def job_type(self) -> str | None:
        return self.context.get("job_type")

    @property
    def entity(self) -> str | None:
        return self.context.get("entity")

    @property
    def group(self) -> str | None:
        return self.context.get("group")

    @property
    def notes(self) -> str | None:
        return self.context.get("notes")

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self.context.get("tags", ()))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.context)

    @property
    def summary_metrics(self) -> dict[str, Any]:
        return dict(self.summary)

    def get_url(self) -> None:
        return None

    def get_project_url(self) -> None:
        return None

    def project_name(self) -> str:
        return self.project

    def history(self, *args: Any, pandas: bool = False, **options: Any) -> Any:
        return history_frame([]) if pandas else HistoryRows()

    def scan_history(self, *args: Any, **options: Any) -> Iterator[dict[str, Any]]:
        return iter(())

    def files(self, *args: Any, **options: Any) -> list[Any]:
        return []

    def logged_artifacts(self, *args: Any, **options: Any) -> list[Any]:
        return []

    def used_artifacts(self, *args: Any, **options: Any) -> list[Any]:
        return []

    def delete(self, *args: Any, **options: Any) -> list[str]:
        return []

    def load(self, force: bool = False) -> dict[str, Any]:
        del force
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "project": self.project, "name": self.name, "status": self.status,
            "config": dict(self.config), "summary": dict(self.summary),
            "context": self.context, "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "deleted": False, "disabled": True,
        }  # fmt: skip
