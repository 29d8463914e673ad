"""Checking a call's arguments against the backend method's signature and annotations
before it runs: a request with a number where a name belongs, or a mapping where a list
does, gets one clear 400 instead of reaching the catalog (where it would be a server
error)."""

from __future__ import annotations

import datetime as dt
import inspect
import types
import typing
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..chunking import ChunkList
from ..errors import InvalidInput
from ..manifest import ManifestEntry
from ..paths import Ref
from ..records import VersionData
from .policy import GuardedBackend

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


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if hint is None or hint is type(None):
        return value is None
    if origin is None:
        if hint is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if hint is int:
            return isinstance(value, int) and not isinstance(value, bool)
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
    if origin in (list, Sequence, Iterable, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        return not arguments or all(_fits(item, arguments[0]) for item in value)
    return False
