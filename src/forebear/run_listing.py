"""Runs listed a page at a time: `Store.iter_runs` holds one page in memory however many
runs a store has, and `Store.runs` is the whole list, read the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from .errors import InvalidInput
from .records import INTEGER_LIMIT
from .views import Run

if TYPE_CHECKING:
    from .backend import Backend
    from .records import RunData
    from .store import Store

PAGE = 500  # runs asked for at once: about 2 MB of JSON from a server for typical runs


class StoreRuns:
    """The runs half of `Store`."""

    backend: Backend

    def run(self, run_id: str) -> Run:
        """One run, by its id."""
        return Run(cast("Store", self), self.backend.get_run(run_id))

    def runs(self, project: str | None = None, *, include_deleted: bool = False) -> list[Run]:
        """Every run (of one project), oldest first; deleted ones only when asked. For
        very many runs, `iter_runs` holds only a page at a time."""
        return list(self.iter_runs(project, include_deleted=include_deleted))

    def iter_runs(
        self,
        project: str | None = None,
        *,
        include_deleted: bool = False,
        newest_first: bool = False,
        start: int = 0,
        limit: int | None = None,
    ) -> Iterator[Run]:
        """The runs of `runs` (or newest first; from the ``start``-th, at most ``limit``),
        read a page at a time as the loop goes: memory stays flat with any number of
        runs, and a run started meanwhile is neither listed twice nor makes another
        skipped."""
        for name, value in (("start", start), ("limit", limit)):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise InvalidInput(f"{name} counts runs from 0, not {value!r:.80}")
        if start is not None and start >= INTEGER_LIMIT:  # no catalog could bind it
            raise InvalidInput(f"start counts runs from 0 (below 2**63), not {start!r:.80}")
        store = cast("Store", self)  # this is a Store's half
        pages = run_pages(self.backend, project, include_deleted, newest_first, start, limit)
        for data in pages:
            yield Run(store, data)

    def count_runs(self, project: str | None = None, *, include_deleted: bool = False) -> int:
        """How many runs `runs` lists, counted by the catalog."""
        return self.backend.count_runs(project, include_deleted=include_deleted)


def run_pages(
    backend: Backend,
    project: str | None,
    include_deleted: bool,
    newest_first: bool,
    start: int = 0,
    limit: int | None = None,
) -> Iterator[RunData]:
    """The runs the backend lists, asked for a page at a time, each page after the last
    run of the one before."""
    after: str | None = None
    left = limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = backend.list_runs(
            project, include_deleted=include_deleted, newest_first=newest_first,
            after=after, start=start if after is None else 0, limit=size,
        )  # fmt: skip
        yield from page
        if len(page) < size:
            return
        after = page[-1].id
        left = None if left is None else left - len(page)
