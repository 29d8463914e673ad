"""Progress bars for long work, shown only on a terminal. The only module importing rich's
progress machinery; lower layers just receive a ``Callable[[int], None]``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from . import settings as config


def wanted(explicit: bool | None = None) -> bool:
    """Show progress? An explicit choice wins; else only when stderr is a terminal."""
    if explicit is not None:
        return explicit
    if config.progress_off():
        return False
    return sys.stderr.isatty()


@contextlib.contextmanager
def bar(description: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A byte-counting progress bar; yields a callback taking the bytes just processed."""
    if not enabled or total <= 0:
        yield _ignore
        return
    with growing_bar(description, enabled) as (tick, expect):
        expect(total)
        yield tick


@contextlib.contextmanager
def growing_bar(
    description: str, enabled: bool
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A byte-counting bar whose total is learnt as work is found (a folder of millions
    of files is stat-ed batch by batch): yields ``(tick, expect)``, callbacks taking the
    bytes just processed and the bytes just found still to do."""
    if not enabled:
        yield _ignore, _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=0)
        found = [0]

        def expect(n: int) -> None:
            found[0] += n
            progress.update(task, total=found[0])

        yield (lambda n: progress.advance(task, n)), expect


def _ignore(_n: int) -> None:
    return None
