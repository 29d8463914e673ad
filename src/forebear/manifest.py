"""Manifests: the sorted entries of a version, their canonical bytes, and their digest."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidPath, StoreError
from .hashing import HASH_ALGORITHM, hash_bytes
from .paths import normalise_entry_path

MANIFEST_VERSION = 1


@dataclass(frozen=True, order=True, slots=True)  # slots: a version can hold millions
class ManifestEntry:
    """One file of a version.

    Stored entries name an object by ``digest``. References point at ``uri`` outside the
    store and record its content digest when it was hashed, or else the backend's ``etag``
    (with the size) so later changes are still detected.
    """

    path: str
    digest: str | None
    size: int
    uri: str | None = None
    etag: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.uri is not None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "size": self.size}
        if self.digest is not None:
            data["digest"] = self.digest
        if self.uri is not None:
            data["uri"] = self.uri
        if self.etag is not None:
            data["etag"] = self.etag
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        return cls(
            path=normalise_entry_path(data["path"]),
            digest=data.get("digest"),
            size=int(data["size"]),
            uri=data.get("uri"),
            etag=data.get("etag"),
        )


@dataclass(frozen=True)
class Manifest:
    """An immutable, path-sorted list of entries with a digest over its canonical bytes."""

    entries: tuple[ManifestEntry, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        by_path: dict[str, ManifestEntry] = {}
        for entry in entries:
            if entry.path in by_path and by_path[entry.path] != entry:
                raise InvalidPath(
                    f"two different files would both be stored as {entry.path!r}; "
                    "give one of them another name"
                )
            by_path[entry.path] = entry
        return cls(tuple(sorted(by_path.values(), key=lambda e: e.path)))

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    def to_bytes(self) -> bytes:
        """Canonical form: sorted keys, entries sorted by path, no spaces, UTF-8.

        Encoded entry by entry (the same bytes as one `json.dumps` of the whole document)
        so a version with millions of entries never holds them all as dicts at once."""
        out = io.BytesIO()
        out.write(b'{"entries":[')
        for index, entry in enumerate(self.entries):
            if index:
                out.write(b",")
            out.write(_canonical(entry.to_dict()))
        out.write(b'],"hash":' + _canonical(HASH_ALGORITHM))
        out.write(b',"manifest_version":' + _canonical(MANIFEST_VERSION) + b"}")
        return out.getvalue()

    @property
    def digest(self) -> str:
        return hash_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            document = json.loads(raw)
            version = int(document["manifest_version"])
            entries = [ManifestEntry.from_dict(e) for e in document["entries"]]
        except InvalidPath:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"unreadable manifest: {exc}") from exc
        if version > MANIFEST_VERSION:
            raise StoreError(
                f"manifest version {version} is newer than this forebear reads "
                f"({MANIFEST_VERSION}); upgrade forebear"
            )
        return cls.build(entries)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Diff:
    """How to get from one version to another: entry paths added, removed and modified."""

    added: list[str]
    removed: list[str]
    modified: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


def diff_entries(old: Iterable[ManifestEntry], new: Iterable[ManifestEntry]) -> Diff:
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    added = sorted(p for p in after if p not in before)
    removed = sorted(p for p in before if p not in after)
    modified = sorted(p for p in after if p in before and before[p] != after[p])
    return Diff(added, removed, modified)
