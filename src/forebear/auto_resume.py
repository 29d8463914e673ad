"""W&B's automatic resuming: ``init(resume="auto")`` (or ``resume=True``) without an ``id``
goes on with the run a script last began in the same folder, into the same store, if
that run did not finish cleanly (it crashed, was killed, or failed). A run that finishes
cleanly is forgotten, so the next start is a new run.

W&B keeps this in ``wandb/wandb-resume.json`` under the folder. forebear keeps one small
file per folder and store in the user's cache folder instead: nothing is written among
the user's files (where a ``.forebear`` folder would be taken for a store). It is only a
hint: a file that is missing, unreadable or names another folder is ignored, and the run
it names is resumed only if `forebear.runs` finds it can be."""

from __future__ import annotations

import contextlib
import json
import os

import xxhash

from .paths import is_run_id
from .settings import user_cache_dir

AUTOMATIC = (True, "auto")  # the values of ``resume`` that look for a run to go on with


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
        """The id of the run last begun here, unless it finished cleanly."""
        try:
            found = json.loads(self.path.read_text(encoding="utf-8"))
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
