"""How commands print: JSON for scripts, tables that fit a terminal or pipe cleanly, and
short descriptions of sizes and chunking."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from ..units import human_size

__all__ = [
    "describe_chunking", "echo", "emit_json", "emit_json_list", "human_size", "shown", "table",
]  # fmt: skip

# Characters a terminal acts on instead of showing: C0 and C1 controls, DEL, and the marks
# and overrides that reorder text (a file name of a dataset holding ESC sequences could
# otherwise recolour, retitle or rewrite the terminal of whoever lists it). Newlines are
# left to `echo`'s caller: they are how output is laid out.
_CONTROLS = r"\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_ACTED_ON = re.compile(f"[{_CONTROLS}]")
_ACTED_ON_OR_NEWLINE = re.compile(f"[{_CONTROLS}\\n]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a line (on stderr with ``err``), every character a terminal would act on
    shown as an escape (``\\x1b``): what is printed comes from stores, folders and other
    people, and must never steer the terminal."""
    click.echo(_ACTED_ON.sub(_escaped, message), err=err, nl=nl)


def shown(value: object) -> str:
    """One value (a file's path, a name) as a single printable line: newlines as well as
    terminal controls escaped, so a name cannot pose as further lines of output."""
    return _ACTED_ON_OR_NEWLINE.sub(_escaped, str(value))


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def emit_json(value: Any) -> None:
    echo(_json_text(value))


def emit_json_list(items: Iterable[Any]) -> None:
    """A JSON list, printed item by item as ``items`` yields them (the same text as
    `emit_json` of the whole list), so a long listing is never held whole."""
    opened = False
    for item in items:
        text = _json_text(item).replace("\n", "\n  ")
        echo(f",\n  {text}" if opened else f"[\n  {text}", nl=False)
        opened = True
    echo("\n]" if opened else "[]")


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
        from rich.text import Text

        grid = Table(*columns, box=None, header_style="bold", pad_edge=False)
        for row in cells:
            grid.add_row(*(Text(cell) for cell in row))  # never read as rich's markup
        Console(soft_wrap=True).print(grid)
        return
    widths = [max(len(str(c)) for c in column) for column in zip(columns, *cells, strict=True)]
    for row in [list(columns), *cells]:
        line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        echo(line.rstrip())


def _cell(value: Any) -> str:
    return "" if value is None else shown(value)
