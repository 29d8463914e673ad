"""Whether a run still marked ``running`` is alive, judged by reading only.

A running run renews its heartbeat in the catalog; one whose heartbeat is older than three
periods has crashed (that holds on any host, in any container). On the run's own machine
and in its own PID namespace the answer can come sooner: the process id it recorded,
together with that process's start time (so a reused id is not mistaken for it), says
whether the process still exists.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from . import settings as config

# A run whose heartbeat is older than this many periods has crashed.
MISSED_BEATS = 3


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _started(pid: int) -> int | None:
    """When a process started (clock ticks since boot, from /proc), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3
    except (OSError, IndexError, ValueError):
        return None


def process_identity() -> dict[str, Any]:
    """What a run records about its process so readers on its machine can tell whether
    it still runs."""
    return {"pid_namespace": _pid_namespace(), "process_started": _started(os.getpid())}


def alive(context: dict[str, Any], last_beat: dt.datetime) -> bool:
    """Whether a run marked running, with this captured context and last heartbeat, is
    still running."""
    namespace = context.get("pid_namespace")
    pid = context.get("pid")
    if (
        namespace is not None
        and isinstance(pid, int)
        and context.get("host") == config.host_name()
        and namespace == _pid_namespace()
    ):
        started = _started(pid)
        return started is not None and started == context.get("process_started")
    age = dt.datetime.now(dt.timezone.utc) - last_beat
    return age.total_seconds() < MISSED_BEATS * config.heartbeat_interval()
