"""Checking a call's arguments against the backend method's signature and annotations
before it runs: a request with a number where a name belongs, or a mapping where a list
does, gets one clear 400 instead of reaching the catalog (where it would be a server
error)."""

from __future__ import annotations

import datetime as dt
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..chunking import ChunkList
from ..editing import MAX_TTL, check_tags, check_ttl, checked_edit
from ..errors import InvalidInput
from ..jsonvalues import check_depth, check_json
from ..manifest import ManifestEntry
from ..metrics import check_metric, check_step
from ..paths import RUN_ID_RULES, Ref, check_alias, check_name, is_run_id
from ..records import INTEGER_LIMIT, VersionData
from ..runchecks import checked_run_name
from .policy import GuardedBackend

DIGEST = re.compile(r"^[0-9a-f]{32}$")  # an object's name: xxh3-128, in hex
# The catalog's integers: a larger one is a server error in any SQL database.
_SMALLEST, _LARGEST = -INTEGER_LIMIT, INTEGER_LIMIT - 1

_NAMES = {
    "dt": dt, "Ref": Ref, "VersionData": VersionData, "Path": Path, "Sequence": Sequence,
    "Iterable": Iterable, "Any": Any, "ManifestEntry": ManifestEntry, "ChunkList": ChunkList,
}  # fmt: skip


@cache
def _signature(method: str) -> tuple[inspect.Signature, dict[str, Any]]:
    function = getattr(GuardedBackend, method)
    signature = inspect.signature(function)
    namespace = {**vars(inspect.getmodule(function)), **_NAMES}
    hints = {
        name: eval(parameter.annotation, namespace)
        for name, parameter in signature.parameters.items()
        if isinstance(parameter.annotation, str)
    }
    return signature, hints


def check_call(method: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse arguments the backend method does not take, or of the wrong types."""
    signature, hints = _signature(method)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise InvalidInput(f"malformed call to {method}: {error}") from None
    for name, value in bound.arguments.items():
        if name != "self" and name in hints and not _fits(value, hints[name]):
            raise InvalidInput(f"malformed call to {method}: {name} cannot be {value!r:.80}")
        if name != "self":  # and no text with a NUL character, anywhere in it
            check_depth(value, f"{method}'s {name}", finite=False)
    arguments = dict(bound.arguments)
    for name, value in arguments.items():
        if value is not None and name in _VALUES:
            _VALUES[name](value)
        # PostgreSQL refuses a negative LIMIT or OFFSET; SQLite reads it as none at all
        if name in ("limit", "start", "depth", "keep_last") and value is not None and value < 0:
            raise InvalidInput(f"{name} must be a whole number from 0, not {value}")
    if method == "create_run":
        checked_run_name(arguments["name"])
    if method == "log_history":
        steps, values = arguments["steps"], arguments["values"]
        if len(steps) != len(values):
            raise InvalidInput(
                f"malformed call to log_history: {len(steps)} steps for {len(values)} values"
            )
        for step, logged in zip(steps, values, strict=True):
            check_step(step)
            for key, number in logged.items():
                check_metric(key, number, step)
    if method == "edit_version":
        _check_edits(arguments["changes"])


def _check_run_id(value: str) -> None:
    if not is_run_id(value):
        raise InvalidInput(f"a run id is {RUN_ID_RULES}, not {value!r:.80}")


# What the public API checks before it calls a backend, checked again here for clients
# that are not forebear's, by argument name: a value that fails would otherwise reach the
# catalog, where PostgreSQL refuses it with a server error (a name longer than its column,
# a NaN in JSON) and SQLite keeps it where no reader expects it.
_VALUES: dict[str, Callable[[Any], object]] = {
    "project": lambda value: check_name(value, "project"),
    "collection": lambda value: check_name(value, "collection"),
    "alias": check_alias,
    "aliases": lambda value: [check_alias(alias) for alias in value],
    "tags": check_tags,
    "run_id": _check_run_id,
    "step": check_step,
    "config": lambda value: check_json(value, "config"),
    "context": lambda value: check_json(value, "context"),
    "summary": lambda value: check_json(value, "summary"),
}


def _check_edits(changes: dict[str, Any]) -> None:
    for field, value in changes.items():
        if field in ("metadata", "tags", "aliases"):
            checked_edit(field, value)
        elif field == "run_id" and value is not None:
            _check_run_id(value)
        elif field == "description" and not isinstance(value, str | None):
            raise InvalidInput(f"a description is text, not {value!r:.80}")
        elif field == "expires_at" and not isinstance(value, dt.datetime | None):
            raise InvalidInput(f"an expiry is a date and time, not {value!r:.80}")


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if hint is None or hint is type(None):
        return value is None
    if origin is None:
        if hint is float:  # finite, and no whole number that float() would overflow
            return (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and abs(value) <= sys.float_info.max
            )
        if hint is int:
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and (_SMALLEST <= value <= _LARGEST)
            )
        if hint is dt.timedelta:  # a grace or an age: from now back, within the calendar
            return isinstance(value, dt.timedelta) and dt.timedelta(0) <= value <= MAX_TTL
        if hint is Path:
            return isinstance(value, str)
        if hint is Ref:
            return (
                isinstance(value, Ref)
                and all(isinstance(part, str) for part in (value.name, value.selector))
                and isinstance(value.project, (str, type(None)))
            )
        return isinstance(value, hint)
    arguments = typing.get_args(hint)
    if origin is dict:
        return isinstance(value, dict) and all(
            _fits(k, arguments[0]) and _fits(v, arguments[1]) for k, v in value.items()
        )
    if origin in (list, Sequence, Iterable, Collection, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        return not arguments or all(_fits(item, arguments[0]) for item in value)
    return False


def check_commit(body: dict[str, Any]) -> None:
    """A commit's fields that the catalog takes as they are, checked as the public API
    checks them (its names, aliases, tags and metadata are checked where the version is
    made): a digest that names no object (nor a path on the server), a negative or past
    expiry, numbers no SQL integer holds."""
    check_depth(body, "a commit", finite=False)  # no text with a NUL character
    digest = body.get("digest")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise InvalidInput(f"malformed commit: digest {digest!r:.80} is no xxh3-128 digest")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidInput(f"malformed commit: a description is text, not {description!r:.80}")
    check_ttl(body.get("ttl"))
    for field, value in (("run_id", body.get("run_id")), ("base", body.get("base"))):
        if value is not None and not _fits(value, str if field == "run_id" else int):
            raise InvalidInput(f"malformed commit: {field} cannot be {value!r:.80}")
    for field in ("aliases", "tags"):
        if not isinstance(body.get(field) or [], list):
            raise InvalidInput(f"malformed commit: {field} is a list of names")
    new_bytes = body.get("new_bytes") or 0
    if not _fits(new_bytes, int) or new_bytes < 0:
        raise InvalidInput(f"malformed commit: new_bytes cannot be {new_bytes!r:.80}")
