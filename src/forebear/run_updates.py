"""Changing a run after the fact, as W&B's users do through its public API: ``run.config``,
``run.name``, ``run.tags`` and ``run.notes`` changed, then ``run.update()``; a change of
``run.summary`` saved at once (W&B's summary of a run read back is saved as it changes).
A run this process executes saves what is set on it at once, as W&B's does, and what was
changed in place (``run.name``, ``run.tags.append``) when it finishes. Every change of a
run is in the audit trail, except those a run makes to its own config and summary while
it runs."""

from __future__ import annotations

import datetime as dt
import json
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .context import redact_argv
from .errors import ForebearError, ForebearWarning
from .habits import RunValues
from .runchecks import checked_run_edit, checked_tags, described_as

if TYPE_CHECKING:
    from .records import RunData
    from .store import Store

_UNSET: Any = object()  # notes not set on this object


def _as_text(config: dict[str, Any]) -> str:
    try:
        return json.dumps(config, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys JSON cannot sort or name: refused when saved
        return repr(config)


class RunTags(list[str]):
    """A run's tags: a list, to which W&B's tuples add as well (``run.tags = run.tags +
    ("candidate",)``, as W&B writes it for a run under way)."""

    def __add__(self, other: Iterable[str]) -> RunTags:  # type: ignore[override]
        return RunTags([*self, *other])


def recorded_tags(context: dict[str, Any]) -> list[str]:
    """The tags `init` was given (an imported MLflow run keeps its tags, a dict, in
    ``context["tags"]`` instead: none here)."""
    tags = context.get("tags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


class RunUpdates:
    """W&B's ``tags``, ``notes`` and ``update()`` on `Run`."""

    _store: Store
    _live = False  # a run this process executes
    # what this object read of its name and config (tags and notes: its context), so that
    # `update` saves only what was changed through it, never undoing another's change
    _recorded_name = ""
    _recorded_config = "{}"
    _tags: RunTags | None = None
    _notes: str | None = _UNSET

    # the catalog's record, as this object read it (`_read_record`)
    name: str
    status: str
    context: dict[str, Any]
    config: dict[str, Any]
    summary: RunValues
    started_at: dt.datetime
    ended_at: dt.datetime | None
    deleted_at: dt.datetime | None
    deleted_by: str | None

    if TYPE_CHECKING:  # provided by Run
        id: str
        _lock: threading.RLock  # what its config and summary change under

        def to_dict(self) -> dict[str, Any]: ...

    def _read_record(self, data: RunData, live: bool) -> None:
        """Take the catalog's record of the run: as this object begins (see `Run`), and
        again on `load`."""
        self.name, self.status = data.name, data.status
        self.context = dict(data.context)
        if isinstance(self.context.get("argv"), list):  # runs recorded before redaction
            self.context["argv"] = redact_argv(self.context["argv"])  # improved
        self.started_at, self.ended_at = data.started_at, data.ended_at
        self.deleted_at, self.deleted_by = data.deleted_at, data.deleted_by
        self._live, self._recorded_name = live, data.name
        self._tags, self._notes = None, _UNSET
        # as W&B's: a live run's config is saved as it changes, a copy read back by
        # `update`; a summary as it changes
        if live:
            self.config = RunValues(data.config, "config", self._saving("config", live), self._lock)
        else:
            self.config = dict(data.config)
            self._recorded_config = _as_text(data.config)  # as text: deep changes show too
        self.summary = RunValues(data.summary, "summary", self._saving("summary", live), self._lock)

    def load(self, force: bool = False) -> dict[str, Any]:
        """W&B's ``run.load()``: read the run's record again (its status, end, name,
        config, summary, tags and notes), as another process may have changed or
        finished it since this object read it; `to_dict` of it. What was changed through
        this object and not saved with `update` is dropped, as W&B's ``load(force=True)``
        drops it (``force`` changes nothing: the record is always read). The run this
        process executes is its own record: nothing is read."""
        del force
        if not self._live:
            self._read_record(self._store.backend.get_run(self.id), live=False)
        return self.to_dict()

    @property
    def tags(self) -> RunTags:
        """W&B's tags of the run (from `init`): ``append`` then `update`, or set them."""
        if self._tags is None:
            self._tags = RunTags(recorded_tags(self.context))
        return self._tags

    @tags.setter
    def tags(self, value: Iterable[str]) -> None:
        tags = checked_tags(value)
        if self._live:
            self._changed({"tags": tags})
        else:
            self._tags = RunTags(tags)

    @property
    def notes(self) -> str | None:
        """W&B's notes on the run (from `init`): set them, then `update`."""
        if self._notes is not _UNSET:
            return self._notes
        notes = self.context.get("notes")
        return notes if isinstance(notes, str) else None

    @notes.setter
    def notes(self, value: str | None) -> None:
        notes = None if value is None else described_as(notes=value)["notes"]
        if self._live:
            self._changed({"notes": notes})
        else:
            self._notes = notes

    def update(self) -> None:
        """Save what was changed through this object: the ``name``, ``tags`` and
        ``notes``, and the ``config`` of a run read back (W&B's ``run.update()``); what
        another process changed meanwhile in the rest stays. Nothing changed: nothing
        saved."""
        changes = self._pending(self._recorded_name, self.context)
        if not self._live and _as_text(self.config) != self._recorded_config:
            changes["config"] = dict(self.config)
        if changes:
            self._changed(changes)

    def _save_pending(self) -> None:
        """Save, as a run this process executes finishes, what was changed in place (a
        change that cannot be saved is a warning: the run still ends)."""
        changes = self._pending(self._recorded_name, self.context)
        try:
            if changes:
                self._changed(changes)
        except ForebearError as exc:
            warnings.warn(f"run {self.id}: {exc}", ForebearWarning, stacklevel=3)

    def _pending(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.name != name:
            changes["name"] = self.name
        if self._tags is not None and list(self._tags) != recorded_tags(context):
            changes["tags"] = list(self._tags)
        if self._notes is not _UNSET and self._notes != context.get("notes"):
            changes["notes"] = self._notes
        return changes

    def _saving(self, field: str, live: bool) -> Callable[[dict[str, Any]], None]:
        """How a change of the ``config`` or ``summary`` is saved: by a run this process
        executes, with the rest of its record; by a run read back, as a change after the
        fact."""
        if live:
            backend = self._store.backend
            if field == "config":
                return lambda values: backend.update_run(self.id, config=values)
            return lambda values: backend.update_run(self.id, summary=values)
        return lambda values: self._changed({field: values})

    def _changed(self, changes: dict[str, Any]) -> None:
        data = self._store.backend.edit_run(self.id, checked_run_edit(changes))
        # keep what the catalog now records of what changed (and only that: other changes
        # may be waiting for `update`)
        if "name" in changes:
            self.name = self._recorded_name = data.name
        if "config" in changes:  # a copy read back: now as JSON holds it (a tuple a list)
            self.config.clear()
            self.config.update(data.config)
            self._recorded_config = _as_text(data.config)
        for word in ("tags", "notes"):
            if word not in changes:
                continue
            if word in data.context:
                self.context[word] = data.context[word]
            else:
                self.context.pop(word, None)
        if "tags" in changes:
            self._tags = None
        if "notes" in changes:
            self._notes = _UNSET
