"""How commands print: JSON for scripts, tables that fit a terminal or pipe cleanly, and
short descriptions of sizes and chunking."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from ..units import human_size

__all__ = ["describe_chunking", "emit_json", "human_size", "table"]


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def describe_chunking(chunking: dict[str, Any]) -> str:
    return (
        f"files of {human_size(chunking['threshold'])} or more, in chunks of "
        f"{human_size(chunking['avg_size'])} on average ({chunking['algorithm']})"
    )


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table: drawn by rich on a terminal; piped, one row per line with full values,
    columns aligned by spaces, no trailing spaces (``cut``, ``awk`` and ``head`` friendly)."""
    cells = [[_cell(c) for c in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        grid = Table(*columns, box=None, header_style="bold", pad_edge=False)
        for row in cells:
            grid.add_row(*row)
        Console(soft_wrap=True).print(grid)
        return
    widths = [max(len(str(c)) for c in column) for column in zip(columns, *cells, strict=True)]
    for row in [list(columns), *cells]:
        line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        click.echo(line.rstrip())


def _cell(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split("\n"))
