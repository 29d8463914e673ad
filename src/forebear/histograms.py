"""W&B's ``wandb.Histogram``: the distribution of many values (a layer's weights, a
batch's gradients) summed up in a few bins, so that a training script can log one each
epoch (``run.log({"weights": Histogram(w)})``) without keeping the values themselves.

It is counted once, when it is made, with numpy's ``histogram`` as W&B's is: later changes
to the values do not reach it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from .errors import InvalidInput

MAX_BINS = 512  # W&B's limit: more bins than a chart can show apart


class Histogram:
    """W&B's ``wandb.Histogram(sequence=None, np_histogram=None, num_bins=64)``: the
    values of ``sequence`` (a list, a numpy array, a PyTorch tensor) counted in
    ``num_bins`` bins of equal width between their least and greatest, or a histogram
    counted already, ``np_histogram=(counts, edges)`` as ``numpy.histogram`` returns it
    (one edge more than counts). ``histogram`` holds the counts, ``bins`` the edges."""

    def __init__(
        self,
        sequence: Any = None,
        np_histogram: tuple[Sequence[float], Sequence[float]] | None = None,
        num_bins: int = 64,
    ) -> None:
        if np_histogram is not None:
            counts, edges = _given(np_histogram)
        elif sequence is not None:
            counts, edges = _counted(sequence, num_bins)
        else:
            raise InvalidInput(
                "Histogram needs the values (Histogram(values)) or a histogram counted "
                "already (Histogram(np_histogram=numpy.histogram(values)))"
            )
        if len(counts) > MAX_BINS:
            raise InvalidInput(
                f"a histogram has at most {MAX_BINS} bins, not {len(counts)}: count fewer"
            )
        self.histogram: list[float] = counts
        self.bins: list[float] = edges

    def to_json(self) -> dict[str, Any]:
        """W&B's record of a histogram: its counts as ``values``, its edges as ``bins``."""
        return {"_type": "histogram", "values": self.histogram, "bins": self.bins}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.histogram, self.bins) == (other.histogram, other.bins)

    def __repr__(self) -> str:  # a histogram has one edge at least
        return f"<Histogram {len(self.histogram)} bins from {self.bins[0]:g} to {self.bins[-1]:g}>"


def _counted(sequence: Any, num_bins: int) -> tuple[list[float], list[float]]:
    """numpy's histogram of ``sequence`` in ``num_bins`` bins, as plain lists."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise InvalidInput(f"num_bins is a whole number of bins, 1 or more, not {num_bins!r:.40}")
    if num_bins > MAX_BINS:
        raise InvalidInput(f"a histogram has at most {MAX_BINS} bins, not {num_bins}: count fewer")
    try:
        import numpy as np
    except ImportError:
        raise InvalidInput(
            "Histogram counts its values with numpy, as W&B's does: pip install numpy"
        ) from None
    if hasattr(sequence, "detach"):  # a PyTorch tensor, wherever it lives
        sequence = sequence.detach().cpu().numpy()
    try:
        values = np.asarray(sequence, dtype=float).ravel()
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"Histogram counts numbers, not {sequence!r:.80} ({exc})") from None
    if not np.isfinite(values).all():
        raise InvalidInput(
            "the values hold NaN or infinity, which no bin takes: count only the finite "
            "ones (Histogram(values[numpy.isfinite(values)]))"
        )
    counts, edges = np.histogram(values, bins=num_bins)
    return [int(count) for count in counts], [float(edge) for edge in edges]


def _given(np_histogram: Any) -> tuple[list[float], list[float]]:
    """The counts and edges of a histogram counted already, checked."""
    try:
        counts, edges = np_histogram
        counts = [_number(count, "a count") for count in counts]
        edges = [_number(edge, "an edge") for edge in edges]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            "np_histogram is (counts, edges) as numpy.histogram returns them: "
            f"{str(exc) or type(exc).__name__}"
        ) from None
    if len(edges) != len(counts) + 1:
        raise InvalidInput(
            f"np_histogram has {len(counts)} counts and {len(edges)} edges: a histogram has "
            "one edge more than counts"
        )
    if any(later < earlier for earlier, later in itertools.pairwise(edges)):
        raise InvalidInput("np_histogram's edges go down somewhere: they are in rising order")
    return counts, edges


def _number(value: Any, what: str) -> float:
    """A finite number of a histogram given: kept whole where it is whole (a count)."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{what} is a number, not {value!r:.40}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is {number}")
    whole = int(number)
    return whole if whole == number and not isinstance(value, float) else number
