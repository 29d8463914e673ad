"""`init`, which starts a `Run` and makes it the active one, the module-level calls
(`log_artifact`, `use_artifact`, `log`, `finish`) that act on the active run, the public
`Artifact`, which can also log itself in a run of its own (`save`) and answers as its
version once logged."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from . import active, artifacts, config_files
from . import context as run_context
from .disabled_run import DisabledRun
from .errors import InvalidInput, InvalidPath, NotFound, RunStateError
from .jsonvalues import config_values, json_dict
from .paths import REGISTRY, check_name, is_run_id, is_wandb_registry
from .resuming import Resuming
from .runchecks import AlertLevel, checked_run_name, described_as
from .settings import MODE_VARIABLE, default_project, run_mode
from .store import Store, open
from .tables import Table, table_path
from .util import generate_id
from .views import ArtifactVersion, Run

if TYPE_CHECKING:
    from .media import Image
    from .media_files import MediaFile


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
        the `ArtifactVersion`. As in W&B, while a run is active (and neither ``project``
        nor ``store`` names another place) that run logs it, and a draft
        (`ArtifactVersion.new_draft`) goes by default where its version is; once logged,
        ``save`` instead persists what was edited since: its description, metadata and
        ``ttl``, and the version's aliases and tags (edited through the artifact), plus
        ``aliases``. While the active run is disabled, nothing is logged."""
        if self.logged is not None:
            return self._save_edits(self.logged, aliases)
        current = active_run()
        if current is not None and current.disabled:  # as in W&B: nothing is recorded
            return current.log_artifact(self, aliases=aliases)
        if project is None and store is None:
            if current is not None and (self.base is None or self.base.is_in(current.store)):
                return current.log_artifact(self, aliases=aliases)
            if self.base is not None:  # a draft: the next version of its artifact
                project, store = self.base.project, self.base.store
        with init(
            project=project, name=f"save {self.name}", store=store, config_defaults=False
        ) as run:
            return run.log_artifact(self, aliases=aliases)

    def _save_edits(self, version: ArtifactVersion, aliases: Sequence[str]) -> ArtifactVersion:
        if self.description != version.description:
            version.description = self.description
        if self.metadata != version.metadata:
            version.metadata.clear()
            version.metadata.update(self.metadata)
        if self.ttl != version.ttl:
            version.ttl = self.ttl
        wanted = [aliases] if isinstance(aliases, str) else list(aliases)
        version.aliases.extend(a for a in wanted if a not in version.aliases)
        version.save()
        return version

    def add(self, obj: Table | Image | MediaFile, name: str, overwrite: bool = False) -> str:
        """W&B's ``artifact.add(obj, name)``: a `Table` as ``<name>.table.json``, a
        picture, sound, video or page as W&B's record of it, ``<name>.image-file.json``
        (``audio-file``, ``video-file``, ``html-file``), beside the media file it names
        (see `forebear.kept_media`); ``version.get(name)`` reads either back. Returns the
        entry path."""
        from .kept_media import is_kept_media, record_path, stored_files

        if isinstance(obj, Table):
            path = table_path(name)
            files = obj.stored_files(path)
        elif is_kept_media(obj):
            path = record_path(name, obj)
            files = stored_files(obj, path)
        else:
            raise InvalidInput(
                f"add() takes a forebear.Table, Image, Audio, Video or Html, not "
                f"{type(obj).__name__}; add files with add_file, add_dir or new_file"
            )
        if overwrite:
            with contextlib.suppress(NotFound):  # nothing there to replace
                self.remove(path)
        with self.new_file(path, mode="wb") as file:
            file.write(files.pop(path))
        for media, data in files.items():  # named by their bytes: added once
            with contextlib.suppress(InvalidPath), self.new_file(media, mode="wb") as file:
                file.write(data)
        return path

    def __setitem__(self, name: str, obj: Table | Image | MediaFile) -> None:
        self.add(obj, name)

    def is_draft(self) -> bool:
        """W&B's: True until the artifact is logged (see `state`)."""
        return self.logged is None

    @property
    def state(self) -> str:
        """W&B's ``"PENDING"`` until logged, then the version's (``"COMMITTED"``)."""
        return "PENDING" if self.logged is None else str(self.logged.state)

    def wait(self, timeout: float | None = None) -> ArtifactVersion:
        """The version this artifact became. `log_artifact` and `save` return once it is
        committed, so there is nothing to wait for (W&B uploads in the background); an
        artifact not logged yet raises."""
        del timeout
        if self.logged is None:
            raise RunStateError(
                f"artifact {self.name!r} is not logged yet: log it with "
                "run.log_artifact(artifact) or artifact.save(), then wait()"
            )
        return cast(ArtifactVersion, self.logged)

    def __getattr__(self, name: str) -> Any:
        """Once logged, the committed version's attributes, as W&B's artifact becomes the
        logged one: ``artifact.version``, ``artifact.digest``, ``artifact.download()``."""
        if name.startswith("_"):
            raise AttributeError(name)
        logged = self.__dict__.get("logged")
        if logged is not None:
            return getattr(logged, name)
        if hasattr(ArtifactVersion, name):
            raise AttributeError(
                f"artifact {self.name!r} has no {name!r} until it is logged: "
                "run.log_artifact(artifact) or artifact.save() logs it"
            )
        raise AttributeError(f"'Artifact' object has no attribute {name!r}")


def new_run_id() -> str:
    return generate_id(8)


def own_or_new_run_id(store: Store, wanted: str) -> str:
    """``wanted`` as a new run's id (an imported run keeps the id its users know), unless
    it is no run id or a run of the store has it (a deleted one too): then a new id."""
    if is_run_id(wanted):
        try:
            store.backend.get_run(wanted)
        except NotFound:
            return wanted
    return new_run_id()


def active_run() -> Run | None:
    """The run module-level calls act on: the newest one started and not finished."""
    return active.current()


def _default_run_name() -> str:
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return script if script and script not in ("-c", "-") else "run"


def init(
    project: str | None = None,
    name: str | None = None,
    config: Any = None,  # a dict, an argparse Namespace or absl flags
    store: Store | str | os.PathLike[str] | None = None,
    *,
    job_type: str | None = None,
    group: str | None = None,
    notes: str | None = None,
    tags: Sequence[str] | None = None,
    entity: str | None = None,
    id: str | None = None,
    resume: bool | str | None = None,
    reinit: bool | str | None = None,
    mode: str | None = None,
    save_code: bool | None = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
    dir: str | os.PathLike[str] | None = None,
    anonymous: str | None = None,
    allow_val_change: bool | None = None,
    settings: object = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
    tensorboard: bool | None = None,
    force: bool | None = None,
    magic: object = None,
    resume_from: str | None = None,
    fork_from: str | None = None,
    config_defaults: bool = True,
) -> Run:
    """Start a run and make it the active one; use it as a context manager so an exception
    marks it ``failed`` and a normal exit ``finished``. ``job_type``, ``group``, ``notes``
    and ``tags`` (W&B's words for what a run is) are kept in its ``context``, and so is
    W&B's ``entity`` (a team or user there; here the store is the team's). The other
    options are W&B's too (see docs/python-api.md): ``config`` may be an argparse
    ``Namespace``, absl flags or the path of a YAML file, and ``config-defaults.yaml`` in
    the current folder gives defaults unless not ``config_defaults`` (see
    `forebear.config_files`); ``id``, ``resume`` (a run that ended or crashed goes on: see
    `Backend.resume_run`; without ``id``, the one last begun in this folder: see
    `forebear.resuming`), ``reinit``, ``mode``, ``save_code``,
    ``config_exclude_keys`` / ``config_include_keys``; ``dir``, ``anonymous``,
    ``allow_val_change``, ``settings``, ``sync_tensorboard``, ``tensorboard``,
    ``monitor_gym``, ``force`` and ``magic`` are accepted and change nothing;
    ``resume_from`` and ``fork_from`` raise `InvalidInput` (no run is rewound or forked)."""
    del dir, anonymous, allow_val_change, settings, sync_tensorboard, monitor_gym
    del tensorboard, force, magic
    for option, value in (("resume_from", resume_from), ("fork_from", fork_from)):
        if value is not None:
            raise InvalidInput(
                f"{option}={value!r}: forebear neither rewinds nor forks a run; start a new "
                "run, and read the old one's history with store.run(ID).history()"
            )
    said = f"mode={mode!r}"
    if mode is None:
        mode = run_mode()
        said = f"{MODE_VARIABLE}={mode!r}"
    if mode not in (None, "online", "offline", "shared", "disabled"):
        raise InvalidInput(
            f"{said}: use 'online' (the default: the run is recorded; 'offline' and "
            "'shared' are the same here) or 'disabled' (nothing is recorded)"
        )
    previous = _reinit(reinit)
    if previous is not None:
        return previous
    project_given = project
    if project is None:
        project = default_project()
    project = check_name(project, "project")
    run_name = checked_run_name(name or _default_run_name())
    given = config_values(config)
    if config_defaults and (given is None or isinstance(given, dict)):  # under what is given
        given = {**config_files.config_defaults(), **(given or {})}
    config_dict = _chosen_keys(json_dict(given, "config"), config_include_keys, config_exclude_keys)
    described = described_as(job_type=job_type, group=group, notes=notes, tags=tags, entity=entity)
    if mode == "disabled":  # W&B's: nothing opened or recorded (see `forebear.disabled_run`)
        disabled = DisabledRun(
            new_run_id(), project, run_name, config_dict, described, active.remove
        )
        active.add(cast(Run, disabled))  # it has every public name of Run (see its tests)
        return cast(Run, disabled)
    if project == REGISTRY or is_wandb_registry(project):  # W&B's names for it, in refs
        raise InvalidInput(
            f"project {project!r} names the registry, which holds links only: "
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
    chosen = Resuming(target, id, resume, project_given)
    data = chosen.resume(run_name if name else None, config_dict, described)
    if data is None:
        run_id = chosen.run_id or new_run_id()
        context = {**run_context.capture(), "user": target.backend.actor, **described}
        data = target.backend.create_run(run_id, project, run_name, config_dict, context)
    chosen.began(data.id)
    run = Run(target, data, live=True, on_finish=chosen.finished, resumed=chosen.resumed)
    active.add(run)
    _install_exit_hooks()
    if save_code:
        _save_main_script(run)
    return run


def _reinit(reinit: bool | str | None) -> Run | None:
    """W&B's ``reinit``: ``True`` or ``"finish_previous"`` finish the open runs first;
    ``"return_previous"`` returns the newest open one, if any (None: start a new run)."""
    if reinit in (None, False, "default", "create_new"):
        return None
    if reinit in (True, "finish_previous"):
        for run in reversed(active.all_runs()):
            run.finish()
        return None
    if reinit == "return_previous":
        return active_run()
    raise InvalidInput(
        f"reinit={reinit!r}: use True, 'finish_previous', 'return_previous' or 'create_new'"
    )


def _chosen_keys(
    config: dict[str, Any], include: Sequence[str] | None, exclude: Sequence[str] | None
) -> dict[str, Any]:
    """W&B's ``config_include_keys`` / ``config_exclude_keys``."""
    if include is not None and exclude is not None:
        raise InvalidInput("give config_include_keys or config_exclude_keys, not both")
    if include is not None:
        return {key: value for key, value in config.items() if key in set(include)}
    if exclude is not None:
        return {key: value for key, value in config.items() if key not in set(exclude)}
    return config


def _save_main_script(run: Run) -> None:
    """W&B's ``save_code=True``: the script that started the run, logged as ``code``."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main or not os.path.isfile(main):
        return
    script = os.path.abspath(main)
    run.log_code(
        os.path.dirname(script), include_fn=lambda path, root: os.path.abspath(path) == script
    )


def _require_active() -> Run:
    run = active_run()
    if run is None:
        raise RunStateError("no active run; call forebear.init() first")
    return run


def log_artifact(
    artifact_or_path: artifacts.Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: Sequence[str] = (),
    **options: Any,
) -> ArtifactVersion:
    """`Run.log_artifact` on the active run."""
    return _require_active().log_artifact(artifact_or_path, name, type, aliases, **options)


def use_artifact(
    artifact_or_name: str | ArtifactVersion | artifacts.Artifact,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
    use_as: str | None = None,
) -> ArtifactVersion:
    """`Run.use_artifact` on the active run."""
    return _require_active().use_artifact(artifact_or_name, type, aliases, use_as)


def log(values: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """`Run.log` on the active run."""
    _require_active().log(values, step, commit)


def alert(
    title: str,
    text: str,
    level: str | AlertLevel | None = None,
    wait_duration: float | dt.timedelta | None = None,
) -> None:
    """`Run.alert` from the active run (W&B's ``wandb.alert``)."""
    _require_active().alert(title, text, level, wait_duration)


def finish(
    status: str = "finished", exit_code: int | None = None, quiet: bool | None = None
) -> None:
    """Finish the active run (`Run.finish`); with none, nothing to do (as W&B's
    ``wandb.finish()``, which scripts call at the end whatever happened before)."""
    run = active_run()
    if run is not None:
        run.finish(status, exit_code, quiet)


join = finish  # W&B's older name for it


def define_metric(name: str, *args: Any, **options: Any) -> None:
    """`Run.define_metric` on the active run."""
    _require_active().define_metric(name, *args, **options)


def save(
    glob_str: str | os.PathLike[str] | None = None,
    base_path: str | os.PathLike[str] | None = None,
    policy: str = "live",
) -> list[str] | bool:
    """`Run.save` on the active run (W&B's ``wandb.save``)."""
    return _require_active().save(glob_str, base_path, policy)


def restore(
    name: str,
    run_path: str | None = None,
    replace: bool = False,
    root: str | os.PathLike[str] | None = None,
) -> BinaryIO | None:
    """W&B's ``wandb.restore``: a file `Run.save` kept with a run (``run_path``:
    ``[entity/]project/id`` or the id; default the active run), written verified under
    ``root`` (default the current folder) unless already there (``replace=True``: always),
    and returned open for reading; None when the run kept no such file."""
    if run_path is None:
        run = _require_active()
        if run.disabled:
            return None  # as W&B's: a disabled run restores nothing
    else:
        current = active_run()
        store = current.store if current is not None else open()
        run = store.run(str(run_path).rsplit("/", 1)[-1])  # as `Api.run` takes it
    folder = Path(root if root is not None else ".")
    target = folder / name
    if replace or not target.is_file():
        try:
            kept = run.file(name)
        except NotFound:
            return None
        kept.download(folder, replace=True)  # type: ignore[attr-defined]
    return target.open("rb")


def watch(models: object = None, *args: object, **options: object) -> None:
    """`Run.watch`: accepted so that W&B training code runs; nothing is recorded."""
    del models, args, options


def unwatch(models: object = None) -> None:
    """See `watch`."""
    del models


def log_model(
    path: str | os.PathLike[str] | artifacts.Artifact,
    name: str | None = None,
    aliases: Sequence[str] | None = None,
    **options: Any,
) -> ArtifactVersion:
    """`Run.log_model` on the active run."""
    return _require_active().log_model(path, name, aliases, **options)


def use_model(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """`Run.use_model` on the active run."""
    return _require_active().use_model(name, root)


def link_model(
    path: str | os.PathLike[str] | artifacts.Artifact,
    registered_model_name: str,
    name: str | None = None,
    aliases: Sequence[str] | None = None,
) -> ArtifactVersion:
    """`Run.link_model` on the active run."""
    return _require_active().link_model(path, registered_model_name, name, aliases)


def login(
    key: str | None = None, host: str | None = None, relogin: bool | None = None, **options: Any
) -> bool:
    """W&B's ``wandb.login()``. A store on this machine (or reached with its own
    credentials) needs no login: True. With ``host`` (a forebear server's URL, or
    ``FOREBEAR_URL`` when set) the token ``key`` (or ``FOREBEAR_TOKEN``) is checked against
    the server and kept, as ``forebear login`` does."""
    del relogin, options
    from . import settings
    from .remote import RemoteBackend

    server = host or settings.server_url(None, None)
    if server is None:
        return True
    if not server.startswith(("http://", "https://")):
        raise InvalidInput(
            f"host {server!r} is not a server URL; give one like https://forebear.example"
        )
    token = key or settings.env_token()
    if token is None:
        raise InvalidInput(
            f"logging in to {server} needs its token: login(key=...), FOREBEAR_TOKEN, or "
            "'forebear login URL' once"
        )
    backend = RemoteBackend(server, token.strip())  # refuses a token the server does not take
    backend.close()
    settings.save_token(server, token.strip())
    return True


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
