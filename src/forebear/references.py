"""References: entries that point at data outside the store, pinned by digest or ETag."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InvalidPath, PermissionDenied, StoreError
from .hashing import hash_stream
from .manifest import ManifestEntry
from .objects.formatfile import backend_errors
from .paths import normalise_entry_path
from .records import INTEGER_LIMIT

_ETAG_KEYS = ("ETag", "etag", "md5Hash", "checksum", "crc32c")

# True while a server works for a client: it never reads a reference itself, with its own
# credentials and from its own network (a reference could name its files, a bucket the
# client may not read, or an address inside its network); clients read them.
ON_A_SERVER: ContextVar[bool] = ContextVar("forebear_on_a_server", default=False)


def _normalise_uri(uri: str) -> str:
    if "://" not in uri:
        return Path(uri).absolute().as_uri()
    return uri


def _fs(uri: str) -> tuple[Any, str]:
    import fsspec  # only when a reference is read: listings never import it

    with backend_errors(f"cannot reach reference {uri!r}"):
        try:
            fs, path = fsspec.core.url_to_fs(uri)
            return fs, str(path)
        except (ImportError, ValueError) as exc:
            raise StoreError(
                f"cannot reach reference {uri!r}: {exc}; install the fsspec backend for it"
            ) from exc


def _etag(info: dict[str, Any]) -> str | None:
    for key in _ETAG_KEYS:
        value = info.get(key)
        if value:
            return str(value).strip('"')
    return None


def _describe_one(fs: Any, path: str, uri: str, entry_path: str, checksum: bool) -> ManifestEntry:
    with backend_errors(f"cannot read reference {uri!r}"):
        info = fs.info(path)
        size = int(info.get("size") or 0)
        if not 0 <= size < INTEGER_LIMIT:
            raise StoreError(
                f"reference {uri!r} reports a size of {size!r:.40} bytes, which no file has; "
                "its storage answered wrongly: check the URL"
            )
        etag = _etag(info)
        digest = None
        local = fs.protocol in ("file", "local") or "file" in (fs.protocol or ())
        if local or (checksum and etag is None):
            with fs.open(path, "rb") as f:
                digest, size = hash_stream(f)
            etag = None
    return ManifestEntry(entry_path, digest, size, uri=uri, etag=etag)


def describe_reference(uri: str, name: str | None, *, checksum: bool = True) -> list[ManifestEntry]:
    """Entries for a referenced file, or for every file under a referenced folder."""
    uri = _normalise_uri(uri)
    fs, path = _fs(uri)
    with backend_errors(f"cannot read reference {uri!r}"):
        if not fs.exists(path):
            raise InvalidPath(f"cannot add reference {uri!r}: nothing exists there")
        is_dir = fs.isdir(path)
    if not is_dir:
        entry_path = normalise_entry_path(name or path.rstrip("/").rsplit("/", 1)[-1])
        return [_describe_one(fs, path, uri, entry_path, checksum)]
    prefix = normalise_entry_path(name) + "/" if name else ""
    base = path.rstrip("/")
    protocol = uri.split("://", 1)[0]
    entries = []
    with backend_errors(f"cannot list reference {uri!r}"):
        files = sorted(fs.find(base))
    for file_path in files:
        relative = file_path[len(base) :].lstrip("/")
        file_uri = (
            f"{uri.rstrip('/')}/{relative}" if protocol != "file" else Path(file_path).as_uri()
        )
        entries.append(
            _describe_one(
                fs, file_path, file_uri, normalise_entry_path(prefix + relative), checksum
            )
        )
    return entries


def check_reference(entry: ManifestEntry) -> str | None:
    """None when the referenced data still matches the entry, else what changed (None
    on a server: its clients check references)."""
    assert entry.uri is not None
    if ON_A_SERVER.get():
        return None
    try:
        fresh = _describe_one(
            *_fs(entry.uri), entry.uri, entry.path, checksum=entry.digest is not None
        )
    except (StoreError, OSError) as exc:
        return f"reference {entry.uri} cannot be read: {exc}"
    if entry.digest is not None and fresh.digest != entry.digest:
        return f"reference {entry.uri} changed: digest {fresh.digest}, expected {entry.digest}"
    if entry.etag is not None and fresh.etag != entry.etag:
        return f"reference {entry.uri} changed: etag {fresh.etag}, expected {entry.etag}"
    if fresh.size != entry.size:
        return f"reference {entry.uri} changed: {fresh.size} bytes, expected {entry.size}"
    return None


def open_reference(entry: ManifestEntry) -> BinaryIO:
    assert entry.uri is not None
    if ON_A_SERVER.get():
        raise PermissionDenied(
            f"{entry.path} is a reference to {entry.uri}: a forebear server does not read "
            "references for its clients; read it from where it lives"
        )
    fs, path = _fs(entry.uri)
    with backend_errors(f"cannot read reference {entry.uri!r}"):
        return fs.open(path, "rb")  # type: ignore[no-any-return]
