"""Checking values that go into the catalog as JSON (metadata, config, logged values): they
must be plain JSON with finite numbers, and nested no deeper than any reader can follow."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput

MAX_DEPTH = 100


def check_json(value: Any, what: str) -> None:
    """Refuse what cannot be stored as JSON: non-finite numbers, values JSON has no form
    for, and nesting deeper than `MAX_DEPTH` (which would exhaust any reader's stack)."""
    check_depth(value, what)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be JSON-serialisable (finite numbers): {exc}") from exc


def check_depth(value: Any, what: str, *, finite: bool = True) -> None:
    """Refuse containers nested deeper than `MAX_DEPTH`, texts holding a NUL character,
    and (``finite``) non-finite numbers."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > MAX_DEPTH:
                raise InvalidInput(
                    f"{what} is nested more than {MAX_DEPTH} levels deep; flatten it"
                )
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item if isinstance(key, str))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            check_no_nul(item, what)
        elif finite and isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{what} must hold finite numbers, not {item!r}")


def check_no_nul(text: str, what: str) -> str:
    """Refuse a text holding a NUL character: PostgreSQL stores none, in a column or in
    JSON, and SQLite would keep it where no reader expects it."""
    if "\x00" in text:
        raise InvalidInput(
            f"{what} holds a NUL character (\\x00), which cannot be stored: {text!r:.80}"
        )
    return text


def loads(text: str, what: str) -> Any:
    """Parse JSON given by a user, with one clear error for what is too deep to read."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply; flatten it") from None


def config_values(value: Any, files: bool = True) -> Any:
    """A config given as W&B takes one, as a dict: an argparse ``Namespace`` (its
    attributes), absl flags (``flag_values_dict()``), another mapping, or (with
    ``files``) the path of a YAML file (see `forebear.config_files`); anything else as it
    is (a dict, or what `json_dict` then refuses)."""
    if value is None or isinstance(value, dict):
        return value
    if files and isinstance(value, (str, os.PathLike)):
        from .config_files import read_config_file

        return read_config_file(value)
    if isinstance(value, Mapping):
        return dict(value)
    flags = getattr(value, "flag_values_dict", None)
    if callable(flags):
        return dict(flags())
    import argparse  # only for a config that is neither a dict nor flags

    if isinstance(value, argparse.Namespace):
        return dict(vars(value))
    return value


def _as_json(value: Any) -> Any:
    """What JSON holds of a value it has no form for: a single number of an array library
    (NumPy's ``float32(0.25)``, a 0-d array or tensor, as ``loss.mean()`` returns) as that
    number, as W&B keeps it; anything else as its text."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        with contextlib.suppress(Exception):  # an object's own item() may refuse
            number = item()
            if isinstance(number, (bool, int, float, str)):
                return number
    return str(value)


def json_dict(
    value: dict[str, Any] | None, what: str, *, non_finite_as_text: bool = False
) -> dict[str, Any]:
    """A copy of a dict of values as JSON holds them (other values as their text).

    ``non_finite_as_text``: NaN and the infinities become the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"`` (JSON has no form for them; these are the names
    JavaScript and Python give them) instead of being refused: a metric that a training
    run logs may diverge, and the run must go on as it does with W&B or MLflow."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a dict, not {type(value).__name__}")
    check_depth(value, what, finite=not non_finite_as_text)
    try:
        if non_finite_as_text:
            return dict(json.loads(json.dumps(value, default=_as_json), parse_constant=str))
        return dict(json.loads(json.dumps(value, allow_nan=False, default=_as_json)))
    except ValueError as exc:
        raise InvalidInput(f"{what} must hold finite numbers: {exc}") from exc
    except TypeError as exc:  # a key JSON cannot name, such as a tuple
        raise InvalidInput(f"{what} must be JSON-serialisable: {exc}") from exc
