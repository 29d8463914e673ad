"""W&B's resuming, as `forebear.init` does it: which run a new process goes on with.

- ``id`` with ``resume="allow"`` (``"must"``, ``"auto"``, True) goes on with the run of
  that id, if it ended or crashed (see `Backend.resume_run`); ``"never"`` and no
  ``resume`` refuse an id a run has. ``FOREBEAR_RUN_ID`` and ``FOREBEAR_RESUME`` give them
  where a script does not (as W&B's ``WANDB_RUN_ID`` and ``WANDB_RESUME``).
- ``resume="auto"`` (or True) *without* an id goes on with the run a script last began in
  the same folder, into the same store, if that run did not finish cleanly (it crashed,
  was killed, or failed). A run that finishes cleanly is forgotten, so the next start is a
  new run. W&B keeps this in ``wandb/wandb-resume.json`` under the folder; forebear keeps
  one small file per folder and store in the user's cache folder instead (`AutoResume`):
  nothing is written among the user's files, where a ``.forebear`` folder would be taken
  for a store. It is only a hint: a file missing, unreadable or naming another folder is
  ignored, and a run remembered that cannot go on (deleted, of another project, running
  in another process) leaves the script to start a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import xxhash

from . import active
from . import context as run_context
from .errors import InvalidInput, NotFound
from .paths import RUN_ID_RULES, is_run_id
from .records import RunData
from .settings import RESUME_VARIABLE, RUN_ID_VARIABLE, run_id_and_resume, user_cache_dir
from .store import Store
from .views import Run

RESUMES = (None, False, True, "allow", "must", "never", "auto")
AUTOMATIC = (True, "auto")  # the values of ``resume`` that look for a run to go on with


class Resuming:
    """What `init`'s ``id`` and ``resume`` ask of ``store``: checked, and the run to go on
    with found (``earlier``) when there is one."""

    def __init__(
        self, store: Store, run_id: str | None, resume: bool | str | None, project: str | None
    ) -> None:
        self.store = store
        self.run_id, resume = _from_environment(run_id, resume)
        if resume not in RESUMES:
            raise InvalidInput(f"resume={resume!r}: use 'allow', 'must', 'never' or 'auto'")
        self.automatic: AutoResume | None = None
        self.earlier: RunData | None = None
        self.resumed = False
        if self.run_id is None and resume in AUTOMATIC:
            self.automatic = AutoResume(store.store_id or store.objects_url)
            self.earlier = _automatically_resumed(store, self.automatic.remembered(), project)
        elif self.run_id is not None:
            self.earlier = _run_to_resume(store, self.run_id, resume, project)

    def resume(
        self, name: str | None, config: dict[str, Any], described: dict[str, Any]
    ) -> RunData | None:
        """The earlier run, resumed by this process; None: start a new run (with `run_id`,
        or a new id where it is None)."""
        if self.earlier is None:
            return None
        try:
            data = self.store.backend.resume_run(self.earlier.id, run_context.process())
        except InvalidInput as exc:  # running in another process: this one starts anew
            if self.automatic is None:
                raise
            print(f"forebear: not resuming run {self.earlier.id}: {exc}", file=sys.stderr)
            return None
        self.resumed = True
        return _updated(self.store, data, name, config, described)

    def began(self, run_id: str) -> None:
        """The run this process goes on with, or began: remembered for automatic resuming."""
        if self.automatic is not None:
            self.automatic.remember(run_id)

    def finished(self, run: Run) -> None:
        """The run ended: no longer active, and, if it finished cleanly, no longer resumed
        automatically."""
        active.remove(run)
        if self.automatic is not None and run.status == "finished":
            self.automatic.forget(run.id)


def _from_environment(
    run_id: str | None, resume: bool | str | None
) -> tuple[str | None, bool | str | None]:
    """``id`` and ``resume``, each from its variable where not given (W&B's
    ``WANDB_RUN_ID`` and ``WANDB_RESUME``), a bad value said to come from there."""
    variable_id, variable_resume = run_id_and_resume()
    if run_id is None and variable_id is not None:
        if not is_run_id(variable_id):
            raise InvalidInput(f"{RUN_ID_VARIABLE}={variable_id!r}: a run id is {RUN_ID_RULES}")
        run_id = variable_id
    if resume is None and variable_resume is not None:
        if variable_resume not in RESUMES:
            raise InvalidInput(
                f"{RESUME_VARIABLE}={variable_resume!r}: use 'allow', 'must', 'never' or 'auto'"
            )
        resume = variable_resume
    return run_id, resume


def _automatically_resumed(store: Store, run_id: str | None, project: str | None) -> RunData | None:
    """The run remembered for W&B's automatic resuming, if it can go on: it exists, is not
    deleted, and is of the project given (if one is)."""
    if run_id is None:
        return None
    try:
        earlier = store.backend.get_run(run_id)
    except NotFound:
        return None
    if earlier.deleted_at is not None or project not in (None, earlier.project):
        return None
    return earlier


def _run_to_resume(
    store: Store, wanted: object, resume: bool | str | None, project: str | None
) -> RunData | None:
    """W&B's ``id`` and ``resume``: the run to resume (``"allow"``, ``"must"``, ``"auto"``
    or True, and a run has the id), or None to start one with that id (no run has it)."""
    if not is_run_id(wanted):
        raise InvalidInput(f"a run id is {RUN_ID_RULES}, not {wanted!r:.80}")
    try:
        existing = store.backend.get_run(wanted)
    except NotFound:
        if resume == "must":
            raise InvalidInput(f"resume='must', but no run has id {wanted!r}") from None
        return None
    described = (
        f"run {wanted} exists already ({existing.project}/{existing.name}, {existing.status})"
    )
    if resume in (None, False, "never"):
        raise InvalidInput(
            f"{described}: pass resume='allow' to go on with it, or leave id out to start a new run"
        )
    if project is not None and project != existing.project:
        raise InvalidInput(
            f"{described} in project {existing.project!r}, not {project!r}: run ids are "
            f"unique in a store; resume it with project={existing.project!r}, or leave id out"
        )
    return existing


def _updated(
    store: Store,
    data: RunData,
    name: str | None,
    config: dict[str, Any],
    described: dict[str, Any],
) -> RunData:
    """A run this process resumed (see `Backend.resume_run`), with the name, tags and notes
    given to `init`, and its config updated by the one given (W&B's resuming)."""
    backend = store.backend
    changes: dict[str, Any] = {}
    if name is not None and name != data.name:
        changes["name"] = name
    for word in ("tags", "notes"):
        if word in described and described[word] != data.context.get(word):
            changes[word] = described[word]
    if {**data.config, **config} != data.config:
        changes["config"] = {**data.config, **config}
    return backend.edit_run(data.id, changes) if changes else data


class AutoResume:
    """The run to go on with, for scripts started in the working folder (as it is when
    this is made: a script may change folders later) into the store ``store``
    (its id, or its location)."""

    def __init__(self, store: str) -> None:
        folder = os.path.realpath(os.getcwd())
        self.expected = {"folder": folder, "store": store}
        name = xxhash.xxh3_64_hexdigest(os.fsencode(folder) + b"\0" + os.fsencode(store))
        self.path = user_cache_dir() / "resume" / f"{name}.json"

    def remembered(self) -> str | None:
        """The id of the run last begun here, unless it finished cleanly. A record this OS
        user does not own (a cache folder shared with others) is not believed."""
        try:
            with self.path.open("rb") as record:
                if hasattr(os, "getuid") and os.fstat(record.fileno()).st_uid != os.getuid():
                    return None
                found = json.loads(record.read(64 << 10))
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict):
            return None
        if any(found.get(key) != value for key, value in self.expected.items()):
            return None  # another folder's record under the same name
        run_id = found.get("run_id")
        return run_id if is_run_id(run_id) else None

    def remember(self, run_id: str) -> None:
        """Note the run begun here (replacing the one before, atomically). A failure to
        write it only loses the convenience: the run goes on."""
        record = json.dumps({**self.expected, "run_id": run_id})
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staged.write_text(record, encoding="utf-8")
            os.replace(staged, self.path)
        with contextlib.suppress(OSError):
            staged.unlink()  # left only where the replace failed

    def forget(self, run_id: str) -> None:
        """The run ``run_id`` finished cleanly: the next start is a new run (unless a later
        run began here since)."""
        if self.remembered() == run_id:
            with contextlib.suppress(OSError):
                self.path.unlink()
