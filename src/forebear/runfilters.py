"""W&B's run filters and orders (``api.runs(path, filters={...}, order="-created_at")``),
evaluated over plain documents: the MongoDB-style queries W&B users already write, so that
their scripts select the same runs here.

A document is a dict such as ``{"state": "finished", "config": {"lr": 0.1}, ...}``; a
filter names its fields with dots (``"config.lr"``, and W&B's ``"config.lr.value"``) and
compares them with ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex``, combined with
``$and $or $nor`` and negated with ``$not``. A field holding a list (``tags``) matches when
one of its items does, as in MongoDB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InvalidInput

T = TypeVar("T")
_MISSING = object()
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda have, want: have > want,
    "$gte": lambda have, want: have >= want,
    "$lt": lambda have, want: have < want,
    "$lte": lambda have, want: have <= want,
}
_FIELD_OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", "$regex", "$not", *_COMPARE})
_EXAMPLE = "e.g. {'state': 'finished', 'config.lr': {'$gt': 0.01}}"


def field(document: dict[str, Any], name: str) -> Any:
    """The value at a dotted name (`_MISSING` where there is none); W&B's ``.value`` after
    a config key names the value itself here."""
    value: Any = document
    parts = name.split(".")
    for index, part in enumerate(parts):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif part == "value" and index == len(parts) - 1 and parts[0] == "config":
            return value
        else:
            return _MISSING
    return value


def check_query(query: object) -> None:
    """Refuse a filter that names an unknown operator or has the wrong shape, before any
    run is looked at (a project with no runs would otherwise hide the mistake)."""
    matches({}, query)  # an empty document reaches every operator: none short-cuts
    if isinstance(query, dict):
        for key, condition in query.items():
            if key in ("$and", "$or", "$nor"):
                for part in condition:
                    check_query(part)
            elif isinstance(condition, dict):
                for operator, wanted in condition.items():
                    if operator == "$not":
                        check_query({key: wanted})
                    elif str(operator).startswith("$"):
                        _holds(_MISSING, {operator: wanted}, key)


def matches(document: dict[str, Any], query: object) -> bool:
    """Whether ``document`` passes ``query`` (a filter as W&B takes one)."""
    if not isinstance(query, dict):
        raise InvalidInput(f"a run filter is a dict, not {query!r:.80} ({_EXAMPLE})")
    for key, condition in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list):
                raise InvalidInput(f"{key} takes a list of filters, not {condition!r:.80}")
            results = [matches(document, part) for part in condition]
            if key == "$and":
                passed = all(results)
            else:
                passed = any(results) if key == "$or" else not any(results)
            if not passed:
                return False
        elif not isinstance(key, str) or key.startswith("$"):
            raise InvalidInput(f"unknown run filter {key!r}: use $and, $or, $nor or a field name")
        elif not _holds(field(document, key), condition, key):
            return False
    return True


def _holds(value: Any, condition: Any, name: str) -> bool:
    operators = isinstance(condition, dict) and any(str(k).startswith("$") for k in condition)
    if not operators:
        return _equal(value, condition)
    for operator, wanted in condition.items():
        if operator not in _FIELD_OPERATORS:
            raise InvalidInput(
                f"unknown operator {operator!r} for {name!r}: use one of "
                f"{', '.join(sorted(_FIELD_OPERATORS))}"
            )
        if not _operator(value, operator, wanted, name):
            return False
    return True


def _operator(value: Any, operator: str, wanted: Any, name: str) -> bool:
    if operator == "$exists":
        return (value is not _MISSING) == bool(wanted)
    if operator == "$not":
        return not _holds(value, wanted, name)
    if operator == "$ne":
        return not _equal(value, wanted)
    if operator in ("$in", "$nin"):
        if not isinstance(wanted, list):
            raise InvalidInput(f"{operator} for {name!r} takes a list, not {wanted!r:.80}")
        found = any(_equal(value, item) for item in wanted)
        return found if operator == "$in" else not found
    items = value if isinstance(value, list) else [value]
    if operator == "$eq":
        return _equal(value, wanted)
    if operator == "$regex":
        if not isinstance(wanted, str):
            raise InvalidInput(f"$regex for {name!r} takes a pattern, not {wanted!r:.80}")
        try:
            pattern = re.compile(wanted)
        except re.error as error:
            raise InvalidInput(f"$regex for {name!r}: {error}") from None
        return any(isinstance(item, str) and pattern.search(item) for item in items)
    return any(_ordered(item, wanted) and _COMPARE[operator](item, wanted) for item in items)


def _equal(value: Any, wanted: Any) -> bool:
    if value is _MISSING:
        return wanted is None  # as MongoDB: a missing field equals null
    if isinstance(value, list) and not isinstance(wanted, list):
        return wanted in value
    return bool(value == wanted)


def _ordered(value: Any, wanted: Any) -> bool:
    """Whether the two can be compared (numbers with numbers, text with text)."""
    numbers = (int, float)
    if isinstance(value, bool) or isinstance(wanted, bool):
        return False
    return (isinstance(value, numbers) and isinstance(wanted, numbers)) or (
        isinstance(value, str) and isinstance(wanted, str)
    )


def ordered(items: list[T], documents: list[dict[str, Any]], order: object) -> list[T]:
    """``items`` sorted as W&B's ``order`` (``"+created_at"``, ``"-summary_metrics.acc"``)
    sorts their ``documents``; those without the field come last either way."""
    if not isinstance(order, str) or not order.lstrip("+-"):
        raise InvalidInput(f"order is a field name after + or -, not {order!r:.80}")
    name = order.lstrip("+-")
    present: list[tuple[tuple[int, Any], int]] = []
    absent: list[int] = []
    for index, document in enumerate(documents):
        value = field(document, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            present.append(((0, value), index))
        elif isinstance(value, str):
            present.append(((1, value), index))
        else:  # missing, or nothing to order by
            absent.append(index)
    present.sort(key=lambda pair: pair[0], reverse=order.startswith("-"))
    return [items[index] for _, index in present] + [items[index] for index in absent]
