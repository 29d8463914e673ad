"""Manifests: the sorted entries of a version, their canonical bytes, and their digest."""

from __future__ import annotations

import bisect
import codecs
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, SupportsIndex, TypeVar, overload

from .errors import IntegrityError, InvalidPath, StoreError
from .hashing import HASH_ALGORITHM, hash_bytes, new_hasher
from .paths import is_canonical_entry_path, normalise_entry_path
from .records import INTEGER_LIMIT

T = TypeVar("T")

MANIFEST_VERSION = 1
# Entries handled at a time by downloads and verify (one catalog query for their chunk lists,
# one fill of the download cache): flat memory however many entries a version has.
PAGE_ENTRIES = 5000


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

    @property
    def ref(self) -> str | None:
        """W&B's name for a reference's ``uri`` (None for a stored file)."""
        return self.uri

    def values(self) -> EntryFields:
        """(path, digest, size, uri, etag): the entry as the catalog stores it."""
        return (self.path, self.digest, self.size, self.uri, self.etag)

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
        """An entry of a manifest read back (from a store, or a client of a server): its
        size a whole number of bytes a catalog can hold, or `ValueError`."""
        size = data["size"]
        if type(size) is not int or not 0 <= size < INTEGER_LIMIT:
            raise ValueError(
                f"the size of {data['path']!r:.200} is {size!r:.40}, not a count of bytes"
            )
        return cls(
            path=normalise_entry_path(data["path"]),
            digest=data.get("digest"),
            size=size,
            uri=data.get("uri"),
            etag=data.get("etag"),
        )


_DIGEST_RE = re.compile(r"^[0-9a-f]{32}$")

EntryFields = tuple[str, "str | None", int, "str | None", "str | None"]  # as the catalog has it


def checked_rows(rows: list[EntryFields]) -> list[EntryFields]:
    """Entries read back from a catalog as rows, checked as `checked_entry` checks them
    (the same error for a bad one), without making an object of each."""
    for row in rows:
        path, digest, size, uri, _etag = row
        if not (
            isinstance(path, str)
            and is_canonical_entry_path(path)
            and (digest is None or (isinstance(digest, str) and _DIGEST_RE.fullmatch(digest)))
            and isinstance(size, int)
            and size >= 0
            and (uri is not None or digest is not None)
        ):
            checked_entry(*row)  # raises, naming what is wrong
    return rows


def checked_entry(
    path: str, digest: str | None, size: int, uri: str | None, etag: str | None
) -> ManifestEntry:
    """An entry read back from a catalog (or another store), checked again before anything
    uses it: a catalog edited behind forebear's back must not make a download write outside
    its destination or read an object under a malformed name."""
    problem = None
    if not isinstance(path, str) or not is_canonical_entry_path(path):
        problem = "its path is not a safe relative path"
    elif digest is not None and not (isinstance(digest, str) and _DIGEST_RE.fullmatch(digest)):
        problem = f"its digest {digest!r} is malformed"
    elif not isinstance(size, int) or size < 0:
        problem = f"its size {size!r} is malformed"
    elif uri is None and digest is None:
        problem = "it names neither an object nor a reference"
    if problem:
        raise IntegrityError(
            f"the catalog holds a malformed entry {path!r}: {problem}; it was changed outside "
            "forebear, and is refused (restore the catalog from a backup)"
        )
    return ManifestEntry(path, digest, size, uri, etag)


class Entries(tuple[ManifestEntry, ...]):
    """A manifest's entries in path order: a tuple, which can also be read by path as W&B's
    ``manifest.entries`` dict is: ``entries["data/a.csv"]``, ``get``, ``"data/a.csv" in
    entries``, ``keys()``, ``values()`` and ``items()``."""

    @overload
    def __getitem__(self, key: SupportsIndex | str) -> ManifestEntry: ...

    @overload
    def __getitem__(self, key: slice) -> tuple[ManifestEntry, ...]: ...

    def __getitem__(
        self, key: SupportsIndex | str | slice
    ) -> ManifestEntry | tuple[ManifestEntry, ...]:
        if isinstance(key, str):
            found = self.get(key)
            if found is None:
                raise KeyError(key)
            return found
        return super().__getitem__(key)

    def get(self, path: str, default: ManifestEntry | None = None) -> ManifestEntry | None:
        """The entry at ``path`` (found by bisection: the entries are in path order)."""
        at = bisect.bisect_left(self, path, key=lambda entry: entry.path)
        if at < len(self) and super().__getitem__(at).path == path:
            return super().__getitem__(at)
        return default

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.get(item) is not None
        return super().__contains__(item)

    def keys(self) -> list[str]:
        return [entry.path for entry in self]

    def values(self) -> list[ManifestEntry]:
        return list(self)

    def items(self) -> list[tuple[str, ManifestEntry]]:
        return [(entry.path, entry) for entry in self]


@dataclass(frozen=True)
class Manifest:
    """An immutable, path-sorted list of entries with a digest over its canonical bytes."""

    entries: tuple[ManifestEntry, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.entries, Entries):  # readable by path too
            object.__setattr__(self, "entries", Entries(self.entries))

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
        """Canonical form: sorted keys, entries sorted by path, no spaces, UTF-8."""
        out = io.BytesIO()
        writer = ManifestWriter(out)
        for entry in self.entries:
            writer.add(entry)
        writer.finish()
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
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise StoreError(f"unreadable manifest: {exc}") from exc
        _refuse_newer(version)
        return cls.build(entries)


# The longest entry `read_entries` takes (a path, a URI and an ETag, as JSON).
ENTRY_LIMIT = 1 << 20
_HEAD = '{"entries":['


def read_entries(stream: IO[bytes], block: int = 1 << 20) -> Iterator[ManifestEntry]:
    """The entries of a manifest laid out as `ManifestWriter` writes it, read from
    ``stream`` a block at a time: memory stays flat however many entries it has (a server
    reads back what a client uploaded this way). Each entry is checked as `from_bytes`
    checks it; bytes laid out otherwise, or not JSON, raise `UnreadableManifest` naming
    what is wrong. Whether the entries are in order and the bytes canonical is the
    caller's to check (writing them again: `ManifestWriter`)."""
    decoder = json.JSONDecoder()
    decode = codecs.getincrementaldecoder("utf-8")().decode
    text, at, ended = "", 0, False

    def more() -> None:
        nonlocal text, at, ended
        data = stream.read(block)
        ended = not data
        text = text[at:] + decode(data, final=ended)
        at = 0

    def unreadable(problem: str) -> UnreadableManifest:
        return UnreadableManifest(f"unreadable manifest: {problem}")

    try:
        while len(text) < len(_HEAD) and not ended:
            more()
        if not text.startswith(_HEAD):
            raise unreadable("it does not begin with its entries")
        at = len(_HEAD)
        first = True
        while True:
            while len(text) - at < 1 and not ended:
                more()
            follows = text[at : at + 1]
            if follows == "]":
                break
            if not first:
                if follows != ",":
                    raise unreadable(f"',' or ']' expected, not {text[at : at + 20]!r}")
                at += 1
            while True:  # one entry: read on until it is whole
                try:
                    data, end = decoder.raw_decode(text, at)
                    break
                except json.JSONDecodeError:
                    if ended or len(text) - at > ENTRY_LIMIT:
                        raise
                    more()
            if not isinstance(data, dict):
                raise unreadable(f"an entry is not an object: {text[at : at + 40]!r}")
            at, first = end, False
            yield ManifestEntry.from_dict(data)
        rest = text[at + 1 :]
        while not ended and len(rest) <= ENTRY_LIMIT:
            more()
            rest = text[at + 1 :]
        if not ended or not rest.startswith(","):
            raise unreadable("nothing but its hash and version may follow its entries")
        tail = json.loads("{" + rest[1:])
        version = int(tail["manifest_version"])
    except InvalidPath:
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UnreadableManifest(f"unreadable manifest: {exc}") from exc
    _refuse_newer(version)


def _refuse_newer(version: int) -> None:
    """Refuse a manifest of a version this forebear cannot read."""
    if version > MANIFEST_VERSION:
        raise StoreError(
            f"manifest version {version} is newer than this forebear reads "
            f"({MANIFEST_VERSION}); upgrade forebear"
        )


class UnreadableManifest(StoreError):
    """Bytes `read_entries` cannot read as a manifest: not JSON, or not laid out as
    `ManifestWriter` lays one out."""


# Entries `ManifestWriter.add_rows` encodes before it writes them, at most.
ROWS_A_WRITE = 4_096


class ManifestWriter:
    """Writes a manifest's canonical bytes entry by entry into ``sink`` and hashes them
    on the way, so a version with millions of entries never holds them all at once.

    The bytes are those of one `json.dumps` of the whole document with sorted keys and no
    spaces; entries must come in path order, each path once.
    """

    def __init__(self, sink: IO[bytes] | None) -> None:  # None: the digest only
        self._sink = sink
        self._hasher = new_hasher()
        self._last: str | None = None
        self.count = 0
        self.size = 0  # the sum of the entries' sizes
        self._write(b'{"entries":[')

    def _write(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink.write(data)
        self._hasher.update(data)

    def add(self, entry: ManifestEntry) -> None:
        if self._last is not None and entry.path <= self._last:
            raise ValueError(f"manifest entries out of order: {entry.path!r} after {self._last!r}")
        self._last = entry.path
        encoded = _encode_entry(entry)
        self._write(b"," + encoded if self.count else encoded)
        self.count += 1
        self.size += entry.size

    def add_rows(self, rows: Iterable[EntryFields]) -> None:
        """Entries as ``(path, digest, size, uri, etag)`` rows, in path order (a draft's
        kept entries, as the catalog returns them, checked): the bytes `add` would write,
        for a fraction of the work. Written `ROWS_A_WRITE` at a time, however many
        ``rows`` yields: a download checking a version of a million entries against its
        digest held them all, encoded, at once (372 MiB)."""
        encoded: list[str] = []
        last = self._last
        for path, digest, entry_size, uri, etag in rows:
            if last is not None and path <= last:
                raise ValueError(f"manifest entries out of order: {path!r} after {last!r}")
            last = path
            self.size += entry_size
            if uri is None and etag is None and digest is not None:  # a stored file
                encoded.append(
                    f'{{"digest":"{digest}","path":{_STRING(path)},"size":{entry_size}}}'
                )
            else:
                encoded.append(
                    _encode_entry(ManifestEntry(path, digest, entry_size, uri, etag)).decode()
                )
            if len(encoded) >= ROWS_A_WRITE:
                self._write_encoded(encoded, last)
                encoded = []
        self._write_encoded(encoded, last)

    def _write_encoded(self, encoded: list[str], last: str | None) -> None:
        """Write entries encoded by `add_rows`, the last of them at path ``last``."""
        if encoded:
            body = ",".join(encoded).encode()
            self._write(b"," + body if self.count else body)
            self.count += len(encoded)
        self._last = last

    def finish(self) -> str:
        """End the document and return its digest."""
        self._write(b'],"hash":' + _canonical(HASH_ALGORITHM))
        self._write(b',"manifest_version":' + _canonical(MANIFEST_VERSION) + b"}")
        return str(self._hasher.hexdigest())


# One encoder for every entry: json.dumps with options builds a new one per call, which
# was most of the cost of encoding a manifest.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


# What an encoder with ensure_ascii=False makes of a string (its `encode` calls just this
# for one), without the method call around it: twice per entry, a million entries a log.
_STRING = json.encoder.encode_basestring


def _encode_entry(entry: ManifestEntry) -> bytes:
    """``_canonical(entry.to_dict())``, written out: keys in sorted order (digest, etag,
    path, size, uri), nulls left out. Five times faster, and manifests can hold millions of
    entries (the manifest property test checks the bytes are the same)."""
    parts = []
    if entry.digest is not None:
        parts.append('"digest":' + _STRING(entry.digest))
    if entry.etag is not None:
        parts.append('"etag":' + _STRING(entry.etag))
    parts.append('"path":' + _STRING(entry.path))
    parts.append(f'"size":{int(entry.size)}')
    if entry.uri is not None:
        parts.append('"uri":' + _STRING(entry.uri))
    return ("{" + ",".join(parts) + "}").encode()


def pages(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` (entries, rows) in lists of ``size``."""
    it = iter(items)
    while page := list(islice(it, size)):
        yield page


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
