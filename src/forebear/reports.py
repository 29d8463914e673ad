"""Reports of operations on a whole store (gc, repair, push and pull): plain data, the same
whether the work ran in this process or on a server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .units import describe_duration, human_size

DEFAULT_GRACE = dt.timedelta(days=7)


@dataclass
class GcReport:
    """What gc removed (or, on a dry run, would remove). Iterating it yields the digests of
    the objects removed."""

    objects: list[str] = field(default_factory=list)
    bytes: int = 0
    versions: list[str] = field(default_factory=list)
    grace: dt.timedelta = DEFAULT_GRACE
    kept_young: int = 0  # unreferenced objects kept because they are younger than grace
    dry_run: bool = False

    def __iter__(self) -> Iterator[str]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def __contains__(self, digest: object) -> bool:
        return digest in self.objects

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "objects": self.objects,
            "bytes": self.bytes,
            "versions": self.versions,
            "grace_seconds": self.grace.total_seconds(),
            "kept_young": self.kept_young,
        }

    def describe(self) -> str:

        verb = "would remove" if self.dry_run else "removed"
        text = f"{verb} {len(self.objects)} unreferenced objects ({human_size(self.bytes)})"
        if self.kept_young:
            text += (
                f"; kept {self.kept_young} younger than {describe_duration(self.grace)} "
                "(the grace period)"
            )
        return text


@dataclass
class Missing:
    """A damaged object no source could give back: which version and entry need it."""

    ref: str
    path: str
    digest: str

    def __str__(self) -> str:
        where = f"{self.ref} {self.path}" if self.path else self.ref
        return f"{where}: object {self.digest}"


@dataclass
class RepairReport:
    """What `Store.repair` did: objects stored again (``restored``: digest → where from,
    a file or "the catalog"), and damage left (``missing``)."""

    restored: dict[str, str] = field(default_factory=dict)
    restored_bytes: int = 0
    checked: int = 0
    missing: list[Missing] = field(default_factory=list)

    def __bool__(self) -> bool:  # true when the versions are whole
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "restored": self.restored,
            "restored_bytes": self.restored_bytes,
            "missing": [{"ref": m.ref, "path": m.path, "digest": m.digest} for m in self.missing],
        }


@dataclass
class TransferReport:
    """What a push or pull did: ``versions`` maps each source ref to its ref in the target."""

    versions: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    objects_copied: int = 0
    bytes_copied: int = 0
    runs_copied: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "created": self.created,
            "objects_copied": self.objects_copied,
            "bytes_copied": self.bytes_copied,
            "runs_copied": self.runs_copied,
        }
