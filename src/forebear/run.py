"""`Run`: one execution of a script, and `init`, which starts one and makes it active."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import secrets
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import config
from .artifacts import Artifact, ArtifactVersion
from .context import redact_argv
from .db import catalog
from .db.engine import write_session
from .db.schema import utcnow
from .errors import InvalidInput, RunStateError
from .heartbeat import Heartbeat
from .jsonvalues import check_depth
from .paths import check_name

if TYPE_CHECKING:
    from .db.schema import RunRow
    from .store import Store

STATUSES = ("running", "finished", "failed", "crashed")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_active: list[Run] = []
_lock = threading.Lock()


def new_run_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def active_run() -> Run | None:
    return _active[-1] if _active else None


def _json_dict(value: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a dict, not {type(value).__name__}")
    check_depth(value, what)
    try:
        return dict(json.loads(json.dumps(value, allow_nan=False, default=str)))
    except ValueError as exc:
        raise InvalidInput(f"{what} must hold finite numbers: {exc}") from exc


class Run:
    """One execution of a script: what it read (`use_artifact`) and wrote (`log_artifact`)."""

    def __init__(
        self,
        store: Store,
        *,
        id: str,
        project: str,
        name: str,
        status: str,
        config: dict[str, Any],
        summary: dict[str, Any],
        context: dict[str, Any],
        started_at: dt.datetime,
        ended_at: dt.datetime | None,
    ) -> None:
        self._store = store
        self.id = id
        self.project = project
        self.name = name
        self.status = status
        self.config = config
        self.summary = summary
        self.context = context
        self.started_at = started_at
        self.ended_at = ended_at
        self._heartbeat: Heartbeat | None = None

    def _start_heartbeat(self) -> None:
        """Tell the catalog this run is alive every so often until it finishes: readers
        anywhere see a run whose heartbeat stopped as crashed."""
        engine = self._store.engine

        def beat() -> bool:
            with write_session(engine) as session:
                return catalog.beat_run(session, self.id)

        self._heartbeat = Heartbeat(config.heartbeat_interval(), beat, f"forebear-run-{self.id}")

    @classmethod
    def _from_row(cls, store: Store, row: RunRow, project: str, status: str) -> Run:
        context = dict(row.context or {})
        if isinstance(context.get("argv"), list):  # runs recorded before redaction improved
            context["argv"] = redact_argv(context["argv"])
        return cls(
            store,
            id=row.id,
            project=project,
            name=row.name,
            status=status,
            config=dict(row.config or {}),
            summary=dict(row.summary or {}),
            context=context,
            started_at=row.started_at,
            ended_at=row.ended_at,
        )

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.project}/{self.name} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def inputs(self) -> list[ArtifactVersion]:
        """Versions this run used, in the order it used them."""
        return self._store._run_versions(self.id, "in")

    @property
    def outputs(self) -> list[ArtifactVersion]:
        """Versions this run logged, in the order it logged them."""
        return self._store._run_versions(self.id, "out")

    def _require_running(self, action: str) -> None:
        if self.status != "running":
            raise RunStateError(
                f"cannot {action}: run {self.id} is {self.status}; start a new one with "
                "forebear.init()"
            )

    def use_artifact(self, ref: str | ArtifactVersion) -> ArtifactVersion:
        """Record that this run reads a version (``name``, ``name:v3``, ``name:alias``)."""
        self._require_running("use an artifact")
        return self._store._use(ref, self.id, self.project)

    def log_artifact(
        self,
        artifact: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] = (),
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> ArtifactVersion:
        """Store an artifact (or a file or folder path) as a new version, or return the
        existing version with the same content; either way this run becomes a producer."""
        self._require_running("log an artifact")
        if isinstance(aliases, str):
            aliases = [aliases]
        if not isinstance(artifact, Artifact):
            artifact = artifact_from_path(artifact, name, type, description, metadata)
        else:
            if name is not None and name != artifact.name:
                raise InvalidInput(
                    f"name={name!r} conflicts with the artifact's own name {artifact.name!r}"
                )
            if type is not None and type != artifact.type:
                raise InvalidInput(
                    f"type={type!r} conflicts with the artifact's own type {artifact.type!r}"
                )
            if description is not None:
                artifact.description = description
            if metadata is not None:
                artifact.metadata = {**artifact.metadata, **_json_dict(metadata, "metadata")}
        return self._store._log(
            artifact,
            project=self.project,
            run_id=self.id,
            aliases=aliases,
            show_progress=progress,
        )

    def log(self, values: dict[str, Any]) -> None:
        """Merge summary values (metrics) into the run."""
        self._require_running("log values")
        self.summary.update(_json_dict(values, "logged values"))
        with write_session(self._store.engine) as session:
            catalog.update_run(session, self.id, summary=self.summary)

    def finish(self, status: str = "finished") -> None:
        """End the run; later `log_artifact` calls on it are refused."""
        if status not in STATUSES or status == "running":
            raise InvalidInput(f"invalid status {status!r}: use 'finished', 'failed' or 'crashed'")
        if self.status != "running":
            return
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        self.status = status
        self.ended_at = utcnow()
        with write_session(self._store.engine) as session:
            catalog.update_run(session, self.id, status=status, ended_at=self.ended_at)
        with _lock:
            if self in _active:
                _active.remove(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "status": self.status,
            "config": self.config,
            "summary": self.summary,
            "context": self.context,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


def artifact_from_path(
    path: str | os.PathLike[str],
    name: str | None,
    type: str | None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    follow_outside_symlinks: bool = False,
    ignore: Sequence[str] | None = None,
) -> Artifact:
    """The artifact for the path shorthand: a folder's files, or one file (without
    listing a folder's entry paths, which can be millions)."""
    source = Path(path)
    from .errors import InvalidPath

    if not source.exists():
        raise InvalidPath(f"cannot log {os.fspath(path)!r}: no such file or folder")
    artifact_name = name if name is not None else _default_name(source)
    artifact = Artifact(artifact_name, type or "dataset", description, metadata)
    if source.is_dir():
        artifact.add_folder(source, None, follow_outside_symlinks, ignore)
    else:
        artifact.add_file(source)
    return artifact


def _default_name(source: Path) -> str:
    """A file's name without its last suffix (``my.model.v2.pkl`` is ``my.model.v2``), a
    folder's name as it is."""
    resolved = source.resolve()
    return resolved.stem if source.is_file() and resolved.stem else resolved.name


def _default_run_name() -> str:
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return script if script and script not in ("-c", "-") else "run"


def init(
    project: str | None = None,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    store: Store | str | os.PathLike[str] | None = None,
) -> Run:
    """Start a run and make it the active one; use it as a context manager so an exception
    marks it ``failed`` and a normal exit ``finished``."""
    from . import context as run_context
    from .store import Store, open

    if project is None:
        project = os.environ.get("FOREBEAR_PROJECT") or "default"
    project = check_name(project, "project")
    if store is None:
        target = Store()
    elif isinstance(store, Store):
        target = store
    else:
        target = open(store)
    target.require_writable()
    run_name = name or _default_run_name()
    if not isinstance(run_name, str) or len(run_name) > 256:
        raise InvalidInput("a run name must be a string of at most 256 characters")
    config_dict = _json_dict(config, "config")
    run_id = new_run_id()
    captured = run_context.capture()
    with write_session(target.engine) as session:
        row = catalog.create_run(
            session,
            run_id=run_id,
            project=project,
            name=run_name,
            config=config_dict,
            context=captured,
        )
        run = Run._from_row(target, row, project, "running")
    run._start_heartbeat()
    with _lock:
        _active.append(run)
    _install_exit_hooks()
    return run


def _require_active() -> Run:
    run = active_run()
    if run is None:
        raise RunStateError("no active run; call forebear.init() first")
    return run


def log_artifact(
    artifact: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: Sequence[str] = (),
    **options: Any,
) -> ArtifactVersion:
    """`Run.log_artifact` on the active run."""
    return _require_active().log_artifact(artifact, name, type, aliases, **options)


def use_artifact(ref: str | ArtifactVersion) -> ArtifactVersion:
    """`Run.use_artifact` on the active run."""
    return _require_active().use_artifact(ref)


def log(values: dict[str, Any]) -> None:
    """`Run.log` on the active run."""
    _require_active().log(values)


def finish(status: str = "finished") -> None:
    """Finish the active run."""
    _require_active().finish(status)


_hooks_installed = False
_uncaught: list[BaseException] = []


def _install_exit_hooks() -> None:
    """Runs still open at interpreter exit finish as ``finished``, or ``failed`` after an
    uncaught exception, so scripts that never call finish() leave a truthful status."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        _uncaught.append(value)
        previous(kind, value, tb)

    sys.excepthook = hook
    atexit.register(_finish_open_runs)


def _finish_open_runs() -> None:
    status = "failed" if _uncaught else "finished"
    for run in list(reversed(_active)):
        try:
            run.finish(status)
        except Exception:  # noqa: BLE001 - never turn interpreter exit into a traceback
            pass
