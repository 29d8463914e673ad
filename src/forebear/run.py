"""`init`, which starts a `Run` and makes it the active one, the module-level calls
(`log_artifact`, `use_artifact`, `log`, `finish`) that act on the active run, and the public
`Artifact`, which can also log itself in a run of its own (`save`)."""

from __future__ import annotations

import atexit
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import active, artifacts
from . import context as run_context
from .config import default_project
from .errors import InvalidInput, RunStateError
from .jsonvalues import json_dict
from .paths import REGISTRY, check_name
from .store import Store, open
from .views import ArtifactVersion, Run

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


class Artifact(artifacts.Artifact):
    """A new version in the making (see `artifacts.Artifact`), which can also log itself
    outside any run, as W&B's ``artifact.save()`` does."""

    def save(
        self,
        project: str | None = None,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        aliases: Sequence[str] = (),
    ) -> ArtifactVersion:
        """Log this artifact outside any run: a short run named ``save NAME`` in
        ``project`` (default: the default project) logs it and finishes at once. Returns
        the `ArtifactVersion`."""
        with init(project=project, name=f"save {self.name}", store=store) as run:
            return run.log_artifact(self, aliases=aliases)


def new_run_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def active_run() -> Run | None:
    """The run module-level calls act on: the newest one started and not finished."""
    return active.current()


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

    if project is None:
        project = default_project()
    project = check_name(project, "project")
    if project == REGISTRY:
        raise InvalidInput(
            f"project {REGISTRY!r} is reserved for the registry, which holds links only: "
            "log into your own project, then link the version ('forebear link REF "
            "registry/NAME', or version.link('registry/NAME'))"
        )
    if store is None:
        target = Store()
    elif isinstance(store, Store):
        target = store
    else:
        target = open(store)
    target.backend.require_writable()
    run_name = name or _default_run_name()
    if not isinstance(run_name, str) or len(run_name) > 256:
        raise InvalidInput("a run name must be a string of at most 256 characters")
    config_dict = json_dict(config, "config")
    data = target.backend.create_run(
        new_run_id(), project, run_name, config_dict, run_context.capture()
    )
    run = Run(target, data, live=True, on_finish=active.remove)
    active.add(run)
    _install_exit_hooks()
    return run


def _require_active() -> Run:
    run = active_run()
    if run is None:
        raise RunStateError("no active run; call forebear.init() first")
    return run


def log_artifact(
    artifact: artifacts.Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: Sequence[str] = (),
    **options: Any,
) -> ArtifactVersion:
    """`Run.log_artifact` on the active run."""
    return _require_active().log_artifact(artifact, name, type, aliases, **options)


def use_artifact(ref: str | ArtifactVersion, type: str | None = None) -> ArtifactVersion:
    """`Run.use_artifact` on the active run."""
    return _require_active().use_artifact(ref, type)


def log(values: dict[str, Any], step: int | None = None) -> None:
    """`Run.log` on the active run."""
    _require_active().log(values, step)


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
    for run in reversed(active.all_runs()):
        try:
            run.finish(status)
        except Exception:  # noqa: BLE001 - never turn interpreter exit into a traceback
            pass
