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
    """Every installed distribution's version, by its normalised name (PEP 503).

    Read from the names of the metadata folders (``name-1.2.dist-info``), as the standard
    requires them: parsing every METADATA file instead costs about 1 ms a package, a fifth
    of a second for each run in a typical environment. A folder whose name does not carry
    a version (an old ``.egg-info``) has its metadata read."""
    packages: dict[str, str] = {}
    for entry in reversed(sys.path):  # the first on the path wins, as for imports
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            stem, dot, kind = folder.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            name, dash, version = stem.partition("-")
            if not dash or kind == "egg-info":
                try:
                    meta = importlib.metadata.PathDistribution.at(os.path.join(entry, folder))
                    name, version = meta.name, meta.version
                except (OSError, ValueError, KeyError):  # broken metadata: skip, as pip does
                    continue
                if not name or not version:
                    continue
            packages[_normalise(name)] = version
    return dict(sorted(packages.items()))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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
