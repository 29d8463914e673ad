"""What a run captures about where it ran: git state, command line, host, Python, packages."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import socket
import subprocess
import sys
from typing import Any


def git_state(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git work tree around ``cwd``, or None outside git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@\s/]+@")


def redact_secrets(text: str) -> str:
    """Hide passwords in URLs (``scheme://user:secret@host``) before anything is stored."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def installed_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.name
        if name:
            packages[name.lower()] = dist.version
    return dict(sorted(packages.items()))


def capture() -> dict[str, Any]:
    """A JSON-serialisable description of this process, stored with its run."""
    return {
        "git": git_state(),
        "argv": [redact_secrets(arg) for arg in sys.argv],
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": installed_packages(),
    }
