"""Checking what goes into a run's history: a step is a whole number, and only numbers are
charted (other values still reach the summary)."""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidInput


def check_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or step >= 2**62:
        raise InvalidInput(
            f"step must be a whole number from 0 (e.g. the epoch or batch index), not {step!r}"
        )
    return step


def numeric_values(values: dict[str, Any], step: int) -> dict[str, float]:
    """The values to keep in the history at ``step``: numbers (not booleans), finite."""
    numbers: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if len(key) > 256:
            raise InvalidInput(f"a metric name is at most 256 characters, not {len(key)}")
        number = float(value)
        if not math.isfinite(number):  # json_dict refuses these first; kept for clarity
            raise InvalidInput(f"metric {key!r} at step {step} is {value!r}: not a finite number")
        numbers[key] = number
    return numbers
