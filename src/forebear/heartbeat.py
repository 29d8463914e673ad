"""A background beat: renew something (a writer's lease, a run's liveness) every so often
until stopped, so that others can tell a live process from a dead one without asking the
operating system about process ids."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds on a daemon thread until `stop`. ``beat``
    returns False when there is nothing left to renew (then the beats end); an exception
    in it is kept in ``error`` and the beats go on (a database may come back)."""

    def __init__(self, interval: float, beat: Callable[[], bool], name: str) -> None:
        self.interval = interval
        self.error: BaseException | None = None
        self.lost = False
        self._beat = beat
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if not self._beat():
                    self.lost = True
                    return
                self.error = None
            except Exception as exc:  # noqa: BLE001 - kept and reported by the owner
                self.error = exc

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
