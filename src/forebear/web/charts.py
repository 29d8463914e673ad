"""Line charts of a run's history, drawn on the server as SVG numbers (the page's content
security policy allows no scripts, and none are needed)."""

from __future__ import annotations

from typing import Any

WIDTH, HEIGHT, PAD = 320, 120, 6
MAX_POINTS = 2000  # a longer history is thinned evenly (first and last points kept)


def charts(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One chart per metric: its name, the polyline points, and the ranges shown."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in history:
        for key, value in row.items():
            if key != "step":
                series.setdefault(key, []).append((int(row["step"]), float(value)))
    return [_chart(key, points) for key, points in sorted(series.items())]


def _chart(key: str, points: list[tuple[int, float]]) -> dict[str, Any]:
    if len(points) > MAX_POINTS:
        stride = len(points) / MAX_POINTS
        points = [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]
    steps = [step for step, _ in points]
    values = [value for _, value in points]
    low_step, high_step = min(steps), max(steps)
    low, high = min(values), max(values)

    def x(step: int) -> float:
        span = high_step - low_step
        return PAD + (WIDTH - 2 * PAD) * ((step - low_step) / span if span else 0.5)

    def y(value: float) -> float:
        span = high - low
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((value - low) / span if span else 0.5)

    return {
        "key": key,
        "points": " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points),
        "steps": (low_step, high_step),
        "range": (low, high),
        "last": values[-1],
        "count": len(points),
        "width": WIDTH,
        "height": HEIGHT,
    }
