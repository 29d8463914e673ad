"""Reports of operations on a whole store (gc, repair, push and pull): plain data, the same
whether the work ran in this process or on a server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .units import describe_duration, human_size

DEFAULT_GRACE = dt.timedelta(days=7)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 version``, ``2 versions`` (``plural`` where adding an s will not do)."""
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


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
    packs: list[str] = field(default_factory=list)  # pack files deleted (format 3)
    repacked: list[str] = field(default_factory=list)  # of those, rewritten as new packs

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
            "packs": self.packs,
            "repacked": self.repacked,
        }

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = f"{verb} {count(len(self.objects), 'unreferenced object')} "
        text += f"({human_size(self.bytes)})"
        if self.versions:
            purged = "would purge" if self.dry_run else "purged"
            text += f"; {purged} {count(len(self.versions), 'deleted version')}"
        if self.kept_young:
            text += (
                f"; kept {self.kept_young} younger than {describe_duration(self.grace)} "
                "(the grace period)"
            )
        return text


@dataclass
class PruneReport:
    """The versions `prune` deleted (or, on a dry run, would delete), each with the rule
    that expired it (``ttl``, ``keep_last`` or ``max_age``); ``size``: their total size;
    ``bytes``: what only they hold, which gc frees once their grace period is over."""

    versions: list[str] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)
    size: int = 0
    bytes: int = 0
    dry_run: bool = False

    def __iter__(self) -> Iterator[str]:
        return iter(self.versions)

    def __len__(self) -> int:
        return len(self.versions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "versions": [{"ref": ref, "rule": self.rules[ref]} for ref in self.versions],
            "size": self.size,
            "bytes": self.bytes,
        }

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {count(len(self.versions), 'version')} ({human_size(self.size)}; "
            f"{human_size(self.bytes)} only they hold, freed by gc after its grace period)"
        )


@dataclass
class PurgeReport:
    """What `purge` removed: the bytes' digest, why, the entries that held them
    (``(ref, path)``, now redacted), the bytes removed from the object location, and the
    copies removed from local caches."""

    digest: str
    reason: str
    entries: list[tuple[str, str]]
    bytes: int
    cached_copies: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "reason": self.reason,
            "entries": [{"ref": ref, "path": path} for ref, path in self.entries],
            "bytes": self.bytes,
            "cached_copies": self.cached_copies,
        }

    def describe(self) -> str:
        versions = len({ref for ref, _ in self.entries})
        return (
            f"purged {self.digest} ({human_size(self.bytes)}) from "
            f"{count(len(self.entries), 'entry', 'entries')} in {count(versions, 'version')}; "
            f"removed {count(self.cached_copies, 'cached copy', 'cached copies')}"
        )


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
