"""Editing a committed version the way W&B does: change its description, metadata, tags,
aliases and TTL on the object, then `save()` persists every change in one transaction
(nothing persists before). The manifest and digest never change.

``metadata``, ``tags`` and ``aliases`` are live containers: edit them in place. Until one
is edited, reading it again gives what the catalog holds now; once edited, the same
container comes back until `save()`.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidInput
from .jsonvalues import json_dict
from .paths import check_alias

if TYPE_CHECKING:
    from .records import VersionData
    from .store import Store

T = TypeVar("T")
_CONTAINERS = ("metadata", "tags", "aliases")
MAX_TTL = dt.timedelta(days=1000 * 366)  # an expiry stays within the calendar


class Editable:
    """The editable half of `ArtifactVersion` (which provides ``_store`` and ``_data``)."""

    _store: Store
    _data: VersionData

    def _reset_edits(self) -> None:
        self._pending: dict[str, Any] = {}  # description, ttl
        self._handed: dict[str, tuple[Any, Any]] = {}  # container -> (live, as loaded)

    def _live(self, field: str, load: Callable[[], T]) -> T:
        handed = self._handed.get(field)
        if handed is not None and handed[0] != handed[1]:  # edited in place: keep it
            return handed[0]  # type: ignore[no-any-return]
        fresh = load()
        self._handed[field] = (fresh, copy.deepcopy(fresh))
        return fresh

    def _replace(self, field: str, value: Any, load: Callable[[], Any]) -> None:
        self._handed[field] = (value, load())

    # -- the editable fields ------------------------------------------------------------

    @property
    def description(self) -> str | None:
        return self._pending.get("description", self._data.description)

    @description.setter
    def description(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"description must be text or None, not {type(value).__name__}")
        self._pending["description"] = value

    @property
    def metadata(self) -> dict[str, Any]:
        return self._live("metadata", lambda: dict(self._data.metadata))

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise InvalidInput(f"metadata must be a dict, not {type(value).__name__}")
        self._replace("metadata", value, lambda: dict(self._data.metadata))

    @property
    def tags(self) -> list[str]:
        return self._live("tags", lambda: self._store.backend.tags(self._data.id))

    @tags.setter
    def tags(self, value: list[str]) -> None:
        self._replace(
            "tags", _as_list(value, "tags"), lambda: self._store.backend.tags(self._data.id)
        )

    @property
    def aliases(self) -> list[str]:
        return self._live("aliases", lambda: self._store.backend.aliases(self._data.id))

    @aliases.setter
    def aliases(self, value: list[str]) -> None:
        load = lambda: self._store.backend.aliases(self._data.id)  # noqa: E731
        self._replace("aliases", _as_list(value, "aliases"), load)

    @property
    def ttl(self) -> dt.timedelta | None:
        """How long after its creation `prune` deletes this version (None: never)."""
        if "ttl" in self._pending:
            return self._pending["ttl"]  # type: ignore[no-any-return]
        expires = self._data.expires_at
        return None if expires is None else expires - self._data.created_at

    @ttl.setter
    def ttl(self, value: dt.timedelta | None) -> None:
        self._pending["ttl"] = check_ttl(value)

    # -- persisting ---------------------------------------------------------------------

    def save(self) -> None:
        """Persist every edit made since the version was read (or last saved) in one
        transaction, with one audit event; nothing is written when nothing changed."""
        changes: dict[str, Any] = {}
        if "description" in self._pending:
            changes["description"] = self._pending["description"]
        if "ttl" in self._pending:
            ttl = self._pending["ttl"]
            changes["expires_at"] = None if ttl is None else self._data.created_at + ttl
        for field in _CONTAINERS:
            handed = self._handed.get(field)
            if handed is not None and handed[0] != handed[1]:
                changes[field] = checked_edit(field, handed[0])
        if not changes:
            return
        self._data = self._store.backend.edit_version(self._data, changes)
        self._reset_edits()


def check_ttl(value: object) -> dt.timedelta | None:
    if value is None:
        return None
    if not isinstance(value, dt.timedelta) or not dt.timedelta(0) < value <= MAX_TTL:
        raise InvalidInput(
            f"ttl must be a positive datetime.timedelta of at most {MAX_TTL.days} days, or "
            f"None, not {value!r} (e.g. datetime.timedelta(days=30))"
        )
    return value


def check_tags(tags: object) -> list[str]:
    return [check_alias(t, "tag") for t in _as_list(tags, "tags")]


def _as_list(value: object, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidInput(f"{what} must be a list of names, not {value!r}")
    return list(value)


def checked_edit(field: str, value: Any) -> Any:
    """An edit of ``metadata``, ``tags`` or ``aliases`` as the catalog keeps it."""
    if field == "metadata":
        if not isinstance(value, dict):
            raise InvalidInput(f"metadata must be a dict, not {type(value).__name__}")
        return json_dict(value, "metadata")
    kind = "tag" if field == "tags" else "alias"
    names = [check_alias(name, kind) for name in _as_list(value, field)]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{field} lists a name twice: {names}")
    return names
