"""Every error forebear raises on purpose.

Each class also derives from the built-in exception a caller would naturally catch, so
``except LookupError`` or ``except ValueError`` keep working::

    ForebearError(Exception)
    ├── InvalidInput(ValueError)         bad user input; never retried
    │   ├── InvalidName                  artifact, project or alias names
    │   ├── InvalidPath                  "..", absolute paths, drive letters, missing files
    │   └── InvalidRef                   unparsable refs such as "a:b:c"
    ├── NotFound(LookupError)
    │   ├── ArtifactNotFound
    │   ├── VersionNotFound
    │   ├── RunNotFound
    │   └── ObjectNotFound(FileNotFoundError)
    ├── IntegrityError                   stored bytes do not match their digest
    ├── StoreError(OSError)              unreachable backend, misconfiguration
    │   ├── StoreNotFound                no store where the settings point (nothing made)
    │   └── StoreVersionError            store written by a newer forebear
    ├── RunStateError(RuntimeError)      no active run, run already finished
    └── RenderError(RuntimeError)
        └── GraphvizNotFound             the `dot` program is missing

Messages say what was wrong and what to do about it. Warnings are `ForebearWarning`
(a `UserWarning`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ForebearError(Exception):
    """Base class of every error forebear raises on purpose."""


class InvalidInput(ForebearError, ValueError):
    """The caller passed something forebear cannot accept."""


class InvalidName(InvalidInput):
    """A project, artifact or alias name breaks the naming rules."""


class InvalidPath(InvalidInput):
    """An entry path is unsafe (absolute, `..`, drive letter) or a local path is missing."""


class InvalidRef(InvalidInput):
    """A ref string such as ``project/name:v3`` cannot be parsed."""


class NotFound(ForebearError, LookupError):
    """Something asked for by name does not exist."""


class ArtifactNotFound(NotFound):
    """No artifact has this name (in the projects searched)."""


class VersionNotFound(NotFound):
    """The artifact exists but has no such version or alias."""


class RunNotFound(NotFound):
    """No run has this id."""


class ObjectNotFound(NotFound, FileNotFoundError):
    """An object is missing from the object location."""


@dataclass(frozen=True)
class Problem:
    """One thing `verify` found wrong: which version, which entry, and what."""

    ref: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.ref} {self.path}" if self.path else self.ref
        return f"{where}: {self.message}"


class IntegrityError(ForebearError):
    """Stored bytes do not match their digest; ``problems`` names every bad entry."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class PermissionDenied(ForebearError, PermissionError):
    """Not allowed: a protected alias moved without force, or a role without the right."""


class AuthenticationError(PermissionDenied):
    """A forebear server did not accept the token: missing, wrong, expired or revoked,
    or its user is disabled."""


class StoreError(ForebearError, OSError):
    """The store cannot be reached or is misconfigured."""


class StoreNotFound(StoreError):
    """There is no store where the settings point, and this operation makes none."""


class StoreVersionError(StoreError):
    """The store was written by a format this forebear does not know."""


class RunStateError(ForebearError, RuntimeError):
    """The operation needs a run in another state (e.g. no active run)."""


class RenderError(ForebearError, RuntimeError):
    """A lineage diagram could not be produced."""


class GraphvizNotFound(RenderError):
    """The Graphviz `dot` program is not installed."""


class ForebearWarning(UserWarning):
    """Something the caller should know that is not an error (e.g. special files that a
    folder holds were left out of a version)."""
