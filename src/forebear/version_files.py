"""One file of a version as W&B code reaches it: `Entry` (W&B's
``ArtifactManifestEntry``, from ``version.get_entry(path)``) and `FileName` (W&B's
``File``, each path of ``version.files()`` and ``run.files()``), each downloaded alone."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput
from .manifest import ManifestEntry

if TYPE_CHECKING:
    from .views import ArtifactVersion


class Entry:
    """One file of a version (W&B's ``ArtifactManifestEntry``): its `ManifestEntry` fields,
    and `download` / `open` of just that file."""

    def __init__(self, version: ArtifactVersion, entry: ManifestEntry) -> None:
        self.version = version
        self.entry = entry

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def digest(self) -> str | None:
        return self.entry.digest

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def uri(self) -> str | None:
        return self.entry.uri

    @property
    def ref(self) -> str | None:
        """W&B's: the URI a reference entry points at (None for a file stored here)."""
        return self.entry.uri

    def ref_target(self) -> str:
        """W&B's: the URI a reference entry points at; `InvalidInput` (a ``ValueError``,
        as W&B raises) for a file stored here."""
        if self.entry.uri is None:
            raise InvalidInput(
                f"{self.path!r} of {self.version.qualified_ref} is stored in the store, not a "
                "reference: only a reference entry has a target (see add_reference)"
            )
        return self.entry.uri

    def __repr__(self) -> str:
        return f"<Entry {self.version.ref} {self.path}>"

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        skip_cache: bool | None = None,
        executor: Any = None,
        multipart: bool | None = None,
    ) -> Path:
        """Write this file, verified, to ``root/<path>`` (default: the version's folder in
        the store's cache); the path written. W&B's ``skip_cache``, ``executor`` and
        ``multipart`` are accepted and change nothing (as for `ArtifactVersion.download`)."""
        del skip_cache, executor, multipart
        folder = self.version.download(root, path_prefix=self.path, exact=True)
        return folder / self.path

    def open(self) -> Any:
        return self.version.open(self.path)


class FileName(str):
    """One path of `ArtifactVersion.files()` (and of ``run.files()``): a plain ``str``,
    which also answers as W&B's ``File`` does: ``name`` (the path), ``size``, ``digest`` and
    ``download(root=".", replace=False, exist_ok=False)``."""

    entry: ManifestEntry
    version: ArtifactVersion

    def __new__(cls, entry: ManifestEntry, version: ArtifactVersion) -> FileName:
        name = super().__new__(cls, entry.path)
        name.entry = entry
        name.version = version
        return name

    @property
    def name(self) -> str:
        return str(self)

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def digest(self) -> str | None:
        return self.entry.digest

    def download(
        self,
        root: str | os.PathLike[str] = ".",
        replace: bool = False,
        exist_ok: bool = False,
        api: object = None,
        skip_cache: bool | None = None,
    ) -> Path:
        """W&B's ``File.download``: write this one file, verified, to ``root/<path>``
        (default: the current folder); the path written. A file already there raises
        `InvalidInput` unless ``replace`` (written again) or ``exist_ok`` (left as it is,
        its path returned). ``api`` and ``skip_cache`` change nothing."""
        del api
        target = Path(root) / self
        if not replace and os.path.lexists(target):
            if exist_ok:
                return target
            raise InvalidInput(
                f"{str(target)!r} exists already: pass replace=True to write it again, or "
                "exist_ok=True to keep it as it is"
            )
        return Entry(self.version, self.entry).download(root, skip_cache)


def file_names(version: ArtifactVersion, entries: Iterable[ManifestEntry]) -> list[str]:
    return [FileName(entry, version) for entry in entries]
