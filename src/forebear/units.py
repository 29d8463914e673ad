"""Sizes and durations as people write and read them: ``10GB``, ``512MiB``, ``7d``,
``90m``; and one way of printing a byte count."""

from __future__ import annotations

import datetime as dt
import re

from .errors import InvalidInput

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i)?)?b?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """Bytes from ``"500MB"``, ``"10GiB"``, ``"2g"`` or a plain number of bytes."""
    found = _SIZE_RE.match(text)
    if not found:
        raise InvalidInput(f"invalid size {text!r}: use a number of bytes or e.g. '10GB', '512MiB'")
    number, unit, binary = found.groups()
    power = "kmgt".index(unit.lower()) + 1 if unit else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def parse_duration(text: str) -> dt.timedelta:
    """A duration from ``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` or plain seconds."""
    found = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not found:
        raise InvalidInput(
            f"invalid duration {text!r}: use a number with s, m, h, d or w, e.g. '7d' or '12h'"
        )
    number, unit = found.groups()
    seconds = float(number) * _SECONDS[unit.lower()]
    if seconds > 1e11:  # about 3,000 years: beyond what a timedelta holds comfortably
        raise InvalidInput(f"invalid duration {text!r}: too long")
    return dt.timedelta(seconds=seconds)


def describe_duration(duration: dt.timedelta) -> str:
    """``7 days``, ``1 hour``, ``90 seconds``: the largest whole unit."""
    seconds = int(duration.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns
