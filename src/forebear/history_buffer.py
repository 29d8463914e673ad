"""The rows a running run logs, written to its store in batches: a training loop that logs
every batch would otherwise wait for one catalog transaction (or one request to a server)
per call, about 2 ms each here, where W&B's ``wandb.log`` returns at once.

A row waits at most `INTERVAL` seconds, or until `MAX_ROWS` rows (or `MAX_VALUES`
values) wait, whichever comes first; a logging loop slower than that writes each row as it
comes. Reading the run's history through the run that logs it writes what waits first, and
finishing the run writes the rest. A process killed outright loses at most the last
`INTERVAL` of rows. A write that fails keeps the rows for the next one: the failure is
raised by the call that wrote (a `log`, `flush` or `close`), or warned of once by the
thread that writes what waits."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable

from .errors import ForebearError, ForebearWarning

INTERVAL = 1.0  # seconds a row waits at most
MAX_ROWS = 1_000
MAX_VALUES = 20_000  # a request to a server stays well under its body limit

Write = Callable[[list[int], list[dict[str, float]]], None]


class HistoryBuffer:
    """Rows of one run waiting to be written by ``write(steps, values)``, which is called
    holding ``lock`` (the lock the run's summary changes under, so what is written with
    the rows is the summary of that moment)."""

    def __init__(self, write: Write, lock: threading.RLock, name: str) -> None:
        self._write = write
        self._lock = lock
        self._name = name
        self._steps: list[int] = []
        self._values: list[dict[str, float]] = []
        self._count = 0  # values waiting
        self._oldest = 0.0  # when the first row waiting was added (monotonic)
        self._last_added = -INTERVAL  # when the last row was
        self._closed = threading.Event()
        self._writer: threading.Thread | None = None
        self._warned = False

    def add(self, step: int, values: dict[str, float]) -> None:
        """Keep one row (the values logged at ``step``, maybe none: the summary changed),
        writing what waits when it is due; call holding the lock."""
        with self._lock:
            now = time.monotonic()
            slow = now - self._last_added >= INTERVAL  # a slow loop: each row as it comes
            self._last_added = now
            if not self._steps:
                self._oldest = now
            self._steps.append(step)
            self._values.append(values)
            self._count += len(values)
            full = len(self._steps) >= MAX_ROWS or self._count >= MAX_VALUES
            if full or slow or now - self._oldest >= INTERVAL or self._closed.is_set():
                self.flush()
            elif self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_what_waits, name=self._name, daemon=True
                )
                self._writer.start()

    def flush(self) -> None:
        """Write every row waiting, in one call; they stay waiting if it fails."""
        with self._lock:
            if not self._steps:
                return
            self._write(self._steps, self._values)
            self._steps, self._values, self._count = [], [], 0

    def close(self) -> None:
        """Stop the writing thread, then write what waits (raising if that fails)."""
        self._closed.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        self.flush()

    def _write_what_waits(self) -> None:
        while not self._closed.wait(INTERVAL / 4):
            with self._lock:
                if not self._steps or time.monotonic() - self._oldest < INTERVAL:
                    continue
                try:
                    self.flush()
                except (ForebearError, OSError) as exc:  # kept: the next write retries
                    if not self._warned:
                        self._warned = True
                        warnings.warn(
                            f"{self._name}: logged values not written yet: {exc}",
                            ForebearWarning,
                            stacklevel=1,
                        )
