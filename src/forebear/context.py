"""What a run captures about where it ran: git state, command line, host, Python, packages."""

from __future__ import annotations

import os
import platform
import re
import sys
from typing import Any

from .liveness import process_identity
from .settings import host_name
from .urls import url_password

__all__ = ["capture", "never_record", "redact_argv", "redact_secrets", "url_password"]


def git_state(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git work tree around ``cwd``, or None outside git."""
    if not _may_be_in_git(os.path.abspath(cwd or os.curdir)):
        return None
    import subprocess  # only where git may answer: 5 ms of imports, and git's own start

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


def _may_be_in_git(folder: str) -> bool:
    """False only where git would find no repository either: no ``.git`` in ``folder`` or
    above it, no folder on the way that is itself a repository (a bare one) and no
    ``GIT_DIR`` naming one elsewhere."""
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return True
    while True:
        if os.path.lexists(os.path.join(folder, ".git")) or (
            os.path.isfile(os.path.join(folder, "HEAD"))
            and os.path.isdir(os.path.join(folder, "objects"))
        ):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


# scheme://user:password@host: everything between the user's colon and the last "@" of
# the URL is hidden, so passwords holding "/" or "@" are hidden whole (a URL with a colon
# and an "@" later in its path loses that part too: too much hidden beats too little)
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/]*:)\S*@")
_AUTHORIZATION = re.compile(r"(authorization\s*:\s*)\S.*", re.IGNORECASE)
# options whose values are secrets: --api-key=..., --token ..., --password ...
_SECRET_OPTION = re.compile(
    r"^(--?[A-Za-z0-9_.-]*(?:token|key|passw|secret|auth|credential)[A-Za-z0-9_.-]*)(=.*)?$",
    re.IGNORECASE,
)
REDACTED = "***"
_known_secrets: set[str] = set()


def never_record(secret: str | None) -> None:
    """Make every later capture hide this exact text (the CLI registers the passwords of
    its own --db and --objects URLs, whatever characters they hold)."""
    if secret:
        _known_secrets.add(secret)


def redact_secrets(text: str) -> str:
    """Hide passwords in URLs (``scheme://user:secret@host``), ``Authorization:`` values
    and registered secrets before anything is stored."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _AUTHORIZATION.sub(rf"\1{REDACTED}", text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with its secrets hidden: URL passwords, ``Authorization:`` headers,
    and the values of options named like secrets (``--*token*``, ``--*key*``,
    ``--password``, ``--*secret*``, ``--*auth*``, ``--*credential*``), given as
    ``--opt=value`` or ``--opt value``."""
    redacted: list[str] = []
    hide_next = False
    for arg in argv:
        if not isinstance(arg, str):
            arg = str(arg)
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):
                redacted.append(REDACTED)
                continue
        option = _SECRET_OPTION.match(arg)
        if option:
            if option.group(2):
                redacted.append(f"{option.group(1)}={REDACTED}")
            else:
                redacted.append(arg)
                hide_next = True
            continue
        redacted.append(redact_secrets(arg))
    return redacted


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
                import importlib.metadata  # rare (old folders): not loaded on every start

                try:
                    meta = importlib.metadata.PathDistribution.at(os.path.join(entry, folder))
                    name, version = meta.name, meta.version
                except (OSError, ValueError, KeyError):  # broken metadata: skip, as pip does
                    continue
                if not name or not version:
                    continue
            packages[_normalise(name)] = version
    return dict(sorted(packages.items()))


def platform_name() -> str:
    """What `platform.platform` says (``Linux-6.8.0-x86_64-with-glibc2.39``), without asking
    ``uname -p`` in a child process for the processor's name, as it does on Linux: that
    took 8 ms of each run's start here, for a name it leaves out when it is "unknown" or
    the machine's (as ``uname -p`` says on Linux)."""
    if not sys.platform.startswith("linux"):
        return platform.platform()
    system = os.uname()
    library, version = platform.libc_ver()
    parts = [system.sysname, system.release, system.machine, "with", library + version]
    text = "-".join(part.strip() for part in parts if part).replace(" ", "_")
    for character in '/\\:;"()':  # and the rest as platform.platform cleans them
        text = text.replace(character, "-")
    text = text.replace("unknown", "")
    while "--" in text:
        text = text.replace("--", "-")
    return text.rstrip("-")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def process() -> dict[str, Any]:
    """This process's host and id (and what tells it from a later one with the same id),
    by which readers judge whether its run is alive (see `forebear.liveness`)."""
    return {"host": host_name(), "pid": os.getpid(), **process_identity()}


def capture() -> dict[str, Any]:
    """A JSON-serialisable description of this process, stored with its run."""
    return {
        "git": git_state(),
        "argv": redact_argv(list(sys.argv)),
        "cwd": os.getcwd(),
        **process(),
        "python": platform.python_version(),
        "platform": platform_name(),
        "packages": installed_packages(),
    }
