"""``forebear://`` for fsspec: any fsspec-aware library (pandas, PyArrow, DuckDB, Dask...)
reads a version's files by ref, every byte verified.

    pd.read_csv("forebear://iris/iris-raw:v2/train.csv")
    fsspec.filesystem("forebear").ls("forebear://iris-raw:latest/images/")

A URL is ``forebear://[project/]name:ref/path``: the ref (``v2``, ``latest``, an alias) is
always there. Listings come from the version's manifest; reads go through
`ArtifactVersion.open`, so a large file's byte range fetches only the chunks that hold it
and corrupted bytes raise `IntegrityError` instead of reaching the caller. Reading inside
an active run records the version as the run's input, once. The package registers the
protocol through its ``fsspec.specs`` entry point, so a fresh interpreter needs no
``import forebear``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractFileSystem

from . import active
from .errors import ForebearError, InvalidRef
from .paths import parse_ref

if TYPE_CHECKING:
    from .store import Store
    from .views import ArtifactVersion

PROTOCOL = "forebear"
VERSIONS_KEPT = 8  # resolved versions (with their manifests) kept per filesystem


class ForebearFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Read-only files of versions. ``store``: a `Store` or a store's path (default: the
    active run's store, else the one found from the working folder, as `forebear.open()`
    finds it)."""

    protocol = PROTOCOL
    root_marker = ""

    def __init__(self, store: Store | str | os.PathLike[str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._chosen = store
        self._store: Store | None = None
        self._versions: OrderedDict[int, ArtifactVersion] = OrderedDict()
        self._lock = threading.Lock()
        self._used: set[tuple[str, int]] = set()  # (run id, version id) recorded as inputs

    # -- what a URL names --------------------------------------------------------------

    @property
    def store(self) -> Store:
        run = active.current()
        if self._chosen is None and run is not None:
            return run.store
        if self._store is None:
            from .store import Store, open

            chosen = self._chosen
            if isinstance(chosen, Store):
                self._store = chosen
            elif chosen is not None:
                self._store = open(chosen, create=False)
            else:
                self._store = Store(create=False)
        return self._store

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith(f"{PROTOCOL}://"):
            text = text[len(PROTOCOL) + 3 :]
        return text.strip("/")

    def split(self, path: str) -> tuple[str, str]:
        """``[project/]name:ref`` and the path inside the version."""
        text = self._strip_protocol(path)
        colon = text.find(":")
        if colon < 0:
            raise InvalidRef(
                f"{path!r} names no version: write forebear://[project/]name:ref/path, "
                "e.g. forebear://iris-raw:latest/train.csv"
            )
        slash = text.find("/", colon)
        ref, inner = (text, "") if slash < 0 else (text[:slash], text[slash + 1 :])
        parse_ref(ref)  # a bad ref fails here, with its own message
        return ref, inner.strip("/")

    def version(self, ref: str) -> ArtifactVersion:
        """The version a ref names now (an alias is resolved on every call; a version's
        manifest is loaded once)."""
        run = active.current()
        resolved = self.store.artifact(ref, run.project if run is not None else None)
        with self._lock:
            kept = self._versions.get(resolved.id)
            if kept is not None:
                self._versions.move_to_end(resolved.id)
                return kept
            self._versions[resolved.id] = resolved
            while len(self._versions) > VERSIONS_KEPT:
                self._versions.popitem(last=False)
        return resolved

    def _record_use(self, version: ArtifactVersion) -> None:
        run = active.current()
        if run is None or run.store is not self.store:
            return
        key = (run.id, version.id)
        if key not in self._used:
            run.use_artifact(version)
            self._used.add(key)

    # -- listings ----------------------------------------------------------------------

    def _entries_under(self, path: str) -> tuple[str, ArtifactVersion, str, list[Any]]:
        ref, inner = self.split(path)
        version = self.version(ref)
        prefix = f"{inner}/" if inner else ""
        return ref, version, inner, [e for e in version.manifest if e.path.startswith(prefix)]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        ref, inner = self.split(path)
        version = self.version(ref)
        if not inner:
            return {"name": ref, "size": version.size, "type": "directory"}
        for entry in version.manifest:
            if entry.path == inner:
                return _file_info(ref, entry)
        prefix = inner + "/"
        if any(e.path.startswith(prefix) for e in version.manifest):
            return {"name": f"{ref}/{inner}", "size": 0, "type": "directory"}
        raise FileNotFoundError(f"{PROTOCOL}://{ref}/{inner}: {version.ref} has no such file")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        ref, version, inner, under = self._entries_under(path)
        if not under:
            if inner and any(e.path == inner for e in version.manifest):
                found = [self.info(path)]
                return found if detail else [found[0]["name"]]
            raise FileNotFoundError(f"{PROTOCOL}://{ref}/{inner}: {version.ref} has no such folder")
        prefix = f"{inner}/" if inner else ""
        listed: dict[str, dict[str, Any]] = {}
        for entry in under:
            rest = entry.path[len(prefix) :]
            head, _, tail = rest.partition("/")
            name = f"{ref}/{prefix}{head}"
            if tail:
                listed.setdefault(name, {"name": name, "size": 0, "type": "directory"})
            else:
                listed[name] = _file_info(ref, entry)
        found = [listed[name] for name in sorted(listed)]
        return found if detail else [item["name"] for item in found]

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        ref, _version, inner, under = self._entries_under(path)
        prefix = f"{inner}/" if inner else ""
        found: dict[str, dict[str, Any]] = {}
        for entry in under:
            depth = entry.path[len(prefix) :].count("/") + 1
            if maxdepth is not None and depth > maxdepth:
                continue
            found[f"{ref}/{entry.path}"] = _file_info(ref, entry)
            if withdirs:
                parts = entry.path.split("/")[:-1]
                for end in range(len(prefix.split("/")) if prefix else 1, len(parts) + 1):
                    folder = f"{ref}/{'/'.join(parts[:end])}"
                    found.setdefault(folder, {"name": folder, "size": 0, "type": "directory"})
        ordered = {name: found[name] for name in sorted(found)}
        return ordered if detail else list(ordered)

    # -- reading -----------------------------------------------------------------------

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode not in ("rb", "r"):
            raise PermissionError(
                f"{PROTOCOL}:// is read-only ({mode!r}): log a new version to change files"
            )
        ref, inner = self.split(path)
        version = self.version(ref)
        if not inner:
            raise IsADirectoryError(f"{PROTOCOL}://{ref} is a version: name a file in it")
        try:
            stream = version.open(inner)
        except ForebearError as error:
            if any(e.path.startswith(inner + "/") for e in version.manifest):
                raise IsADirectoryError(f"{PROTOCOL}://{ref}/{inner} is a folder") from error
            if "has no entry" in str(error):
                raise FileNotFoundError(
                    f"{PROTOCOL}://{ref}/{inner}: {version.ref} has no such file"
                ) from error
            raise
        self._record_use(version)
        return stream

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        with self._open(path) as stream:
            size = self.info(path)["size"]
            first = 0 if start is None else (start if start >= 0 else max(size + start, 0))
            last = size if end is None else (end if end >= 0 else max(size + end, 0))
            if first:
                stream.seek(first)
            return bytes(stream.read(max(last - first, 0)))

    def created(self, path: str) -> Any:
        ref, _inner = self.split(path)
        return self.version(ref).created_at

    def modified(self, path: str) -> Any:
        return self.created(path)

    def ukey(self, path: str) -> str:
        info = self.info(path)
        return str(info.get("digest") or info["name"])


def _file_info(ref: str, entry: Any) -> dict[str, Any]:
    return {
        "name": f"{ref}/{entry.path}",
        "size": entry.size,
        "type": "file",
        "digest": entry.digest,
        "uri": entry.uri,
    }
