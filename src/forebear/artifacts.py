"""`Artifact`, what a script fills before logging, and `ArtifactVersion`, what was logged."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .db.catalog import VersionData
from .errors import ForebearWarning, InvalidInput, InvalidPath
from .jsonvalues import check_json
from .manifest import Diff, Manifest, ManifestEntry, diff_entries
from .paths import check_name, check_text, normalise_entry_path
from .references import describe_reference
from .spool import DuplicateKey, Spool
from .walk import Walk

if TYPE_CHECKING:
    from .lineage import Lineage
    from .run import Run
    from .store import Store


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A local file to hash and store when the artifact is logged."""

    path: str
    local_path: str  # absolute


# How many walked files go to the spool at a time.
_ADD_BATCH = 10_000


class Artifact:
    """A new version in the making: files, folders and references, plus metadata.

    Nothing is hashed or stored until `Run.log_artifact`; bad names and paths fail at once.
    Entries wait in a `Spool`: in memory while few, on disk once there are very many.
    """

    def __init__(
        self,
        name: str,
        type: str = "dataset",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = check_name(name, "artifact")
        if not isinstance(type, str) or not type.strip() or len(type) > 128:
            raise InvalidInput(f"invalid artifact type {type!r}: use a short word such as 'model'")
        self.type = type
        self.description = description
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInput(f"metadata must be a dict, not {type_name(metadata)}")
        self.metadata: dict[str, Any] = dict(metadata or {})
        check_json(self.metadata, "metadata")
        # rows: (path, folder index or None, local path, digest, size, uri, etag); a file
        # added with a folder stores its path relative to _folders[index], one added alone
        # its absolute path as bytes (a folder's name may not be valid UTF-8)
        self._entries = Spool(width=7)
        self._folders: list[str] = []
        # special files (FIFOs, sockets, devices) left out of folders: (entry path, kind)
        self.skipped: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, entries={len(self)})"

    def __len__(self) -> int:
        return len(self._entries)

    def _add(self, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._entries.add(rows)
        except DuplicateKey as exc:
            raise InvalidPath(
                f"{exc.key!r} is already in artifact {self.name!r}; pass name= to store it "
                "under another path"
            ) from None

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None) -> str:
        """Add one file; its entry path defaults to the file's basename. Returns the path."""
        source = Path(local_path)
        if not source.exists():
            raise InvalidPath(f"cannot add {os.fspath(local_path)!r}: no such file")
        if not source.is_file():
            raise InvalidPath(
                f"cannot add {os.fspath(local_path)!r}: it is not a file (use add_dir for folders)"
            )
        path = normalise_entry_path(name if name is not None else source.name)
        self._add([(path, None, os.fsencode(os.path.abspath(source)), None, None, None, None)])
        return path

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        follow_outside_symlinks: bool = False,
        ignore: Sequence[str] | None = None,
    ) -> list[str]:
        """Add every file under a folder, with entry paths relative to it (under ``name``);
        returns them (`log_artifact` with a folder path skips building that list).

        Left out: a store's own folders, paths matched by ``.forebearignore`` files (in the
        folder, its subfolders and its parents up to the project root) or by ``ignore``
        (gitignore patterns, relative to the folder), and special files such as FIFOs,
        which are listed in ``skipped`` with a `ForebearWarning`. Symlinks are followed
        while their target stays inside the folder; one that points outside raises
        `InvalidPath` unless ``follow_outside_symlinks`` is set.
        """
        added: list[str] = []
        self.add_folder(local_path, name, follow_outside_symlinks, ignore, added.append)
        return added

    def add_folder(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        follow_outside_symlinks: bool = False,
        ignore: Sequence[str] | None = None,
        added: Callable[[str], object] | None = None,
    ) -> None:
        """`add_dir` without building the list of entry paths (a folder can hold
        millions); ``added`` is called with each instead."""
        root = Path(local_path)
        if not root.exists():
            raise InvalidPath(f"cannot add {os.fspath(local_path)!r}: no such folder")
        if not root.is_dir():
            raise InvalidPath(
                f"cannot add {os.fspath(local_path)!r}: it is not a folder (use add_file)"
            )
        prefix = normalise_entry_path(name) + "/" if name not in (None, "", ".") else ""
        folder = len(self._folders)
        self._folders.append(os.path.abspath(root))
        batch: list[tuple[Any, ...]] = []
        walk = Walk(str(root), follow_outside_symlinks, list(ignore or ()))
        for relative in walk.files():
            # names read from a folder hold no "/", NUL, "." or ".."; only a backslash
            # (a separator on Windows) needs the full check
            path = (
                prefix + check_text(relative)
                if "\\" not in relative
                else normalise_entry_path(prefix + relative)
            )
            batch.append((path, folder, relative, None, None, None, None))
            if added is not None:
                added(path)
            if len(batch) >= _ADD_BATCH:
                self._add(batch)
                batch = []
        self._add(batch)
        if walk.skipped:
            found = [(prefix + path, kind) for path, kind in walk.skipped]
            self.skipped.extend(found)
            listed = ", ".join(f"{path} ({kind})" for path, kind in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            warnings.warn(
                f"skipped {len(found)} special files with no bytes to store: {listed}{more}",
                ForebearWarning,
                stacklevel=3,
            )

    def add_reference(
        self, uri: str, name: str | None = None, *, checksum: bool = True
    ) -> list[str]:
        """Track data outside the store without copying it.

        Its content digest is recorded when it can be read cheaply (local files, or
        ``checksum=True`` on a backend without checksums), else the backend's ETag and
        size, so `verify` can tell when it changed. A folder adds every file under it.
        """
        entries = describe_reference(uri, name, checksum=checksum)
        self._add([(e.path, None, None, e.digest, e.size, e.uri, e.etag) for e in entries])
        return [e.path for e in entries]

    def _batches(self, size: int) -> Iterator[list[PendingFile | ManifestEntry]]:
        """Every entry in path order, ``size`` at a time: files still to hash as
        `PendingFile`, references as their finished `ManifestEntry`."""
        for rows in self._entries.batches(size):
            batch: list[PendingFile | ManifestEntry] = []
            for path, folder, local, digest, entry_size, uri, etag in rows:
                if uri is not None:
                    batch.append(ManifestEntry(path, digest, entry_size, uri, etag))
                elif folder is None:
                    batch.append(PendingFile(path, os.fsdecode(local)))
                else:
                    batch.append(PendingFile(path, f"{self._folders[folder]}/{local}"))
            yield batch


def type_name(value: object) -> str:
    return value.__class__.__name__


class ArtifactVersion:
    """One immutable version of an artifact, e.g. ``iris-rf:v0``."""

    def __init__(self, store: Store, data: VersionData) -> None:
        self._store = store
        self._data = data
        self._manifest: Manifest | None = None

    # -- identity ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._data.name

    @property
    def version(self) -> str:
        return f"v{self._data.number}"

    @property
    def ref(self) -> str:
        return f"{self._data.name}:v{self._data.number}"

    @property
    def qualified_ref(self) -> str:
        return f"{self._data.project}/{self.ref}"

    @property
    def project(self) -> str:
        return self._data.project

    @property
    def type(self) -> str:
        return self._data.type

    @property
    def digest(self) -> str:
        return self._data.digest

    @property
    def hash_algorithm(self) -> str:
        return self._data.hash_algorithm

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def file_count(self) -> int:
        return self._data.file_count

    @property
    def new_bytes(self) -> int | None:
        """Bytes of this version's files that were new to the store when it was logged:
        whole files and chunks no earlier version had stored. None for versions logged
        before forebear recorded it."""
        return self._data.new_bytes

    @property
    def shared_bytes(self) -> int | None:
        """Bytes of this version's files that were stored already when it was logged
        (shared with earlier versions, or repeated within this one): what deduplication
        saved. None for versions logged before forebear recorded it."""
        return self._data.shared_bytes

    @property
    def chunking(self) -> dict[str, Any] | None:
        """How files at least ``threshold`` bytes long were cut into chunks when this
        version was logged (None for versions logged before chunking existed)."""
        chunking = self._data.chunking
        return chunking.to_dict() if chunking is not None else None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._data.metadata)

    @property
    def description(self) -> str | None:
        return self._data.description

    @property
    def created_at(self) -> dt.datetime:
        return self._data.created_at

    @property
    def created_by(self) -> str | None:
        """The id of the run that first logged this content (None if none did)."""
        return self._data.created_by

    @property
    def id(self) -> int:
        return self._data.id

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.qualified_ref} {self.type}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and other._data.id == self._data.id

    def __hash__(self) -> int:
        return hash(self._data.id)

    # -- contents ---------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = self._store.content.manifest(self._data.id)
        return self._manifest

    def files(self) -> list[str]:
        return self.manifest.paths()

    def entries(self, start: int = 0, limit: int | None = None) -> list[ManifestEntry]:
        """Entries in path order, or one page of them (without loading the whole
        manifest: for versions with very many files)."""
        if self._manifest is not None:
            end = None if limit is None else start + limit
            return list(self._manifest.entries[start:end])
        return self._store.content.entries(self._data.id, start, limit)

    def iter_entries(self) -> Iterator[ManifestEntry]:
        """Every entry in path order, read from the catalog a page at a time: memory stays
        flat however many entries the version has."""
        if self._manifest is not None:
            yield from self._manifest
            return
        for page in self._store.content.entry_pages(self._data.id):
            yield from page

    def entry(self, path: str) -> ManifestEntry:
        wanted = normalise_entry_path(path)
        for entry in self.manifest:
            if entry.path == wanted:
                return entry
        from .errors import NotFound

        raise NotFound(f"{self.ref} has no entry {path!r} (its files: see .files())")

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        progress: bool | None = None,
        link: str = "auto",
    ) -> Path:
        """A verified local copy of every entry, directly under ``root`` (default: the
        store's cache). Files already there are re-hashed and replaced when they differ.

        ``link``: ``"auto"`` (a copy-on-write reflink where the filesystem can, else a
        copy), ``"reflink"``, ``"copy"``, or, on request, ``"hardlink"`` / ``"symlink"``
        (read-only files that *are* the stored objects: replace them, never edit in place).
        """
        return self._store._download(self, root, progress=progress, link=link)

    def open(self, path: str) -> BinaryIO:
        """A binary stream of one entry, verified against its digest as it is read."""
        entry = self.entry(path)
        return self._store.content.open_entry(f"{self.ref} {entry.path}", entry)

    def diff(self, other: ArtifactVersion) -> Diff:
        """How to get from this version to ``other``: paths added, removed and modified."""
        return diff_entries(self.manifest, other.manifest)

    def verify(self) -> None:
        """Re-hash the stored bytes; raise `IntegrityError` naming every bad entry."""
        self._store._verify_or_raise(self)

    # -- aliases ----------------------------------------------------------------------

    @property
    def aliases(self) -> list[str]:
        return self._store._aliases_of(self)

    def add_alias(self, alias: str) -> None:
        self._store._set_alias(self, alias)

    def remove_alias(self, alias: str) -> None:
        self._store._remove_alias(self, alias)

    # -- lineage ----------------------------------------------------------------------

    @property
    def producer(self) -> Run | None:
        """The run that first logged this content."""
        producers = self.producers
        if self._data.created_by is not None:
            for run in producers:
                if run.id == self._data.created_by:
                    return run
        return producers[0] if producers else None

    @property
    def producers(self) -> list[Run]:
        """Every run that logged this content, first one first."""
        return self._store._runs_of(self, "out")

    @property
    def consumers(self) -> list[Run]:
        return self._store._runs_of(self, "in")

    def upstream(self, type: str | None = None, depth: int | None = None) -> list[ArtifactVersion]:
        """Every version this one was made from, through any number of runs, nearest first."""
        return self._store._reachable(self, upstream=True, type_=type, depth=depth)

    def downstream(
        self, type: str | None = None, depth: int | None = None
    ) -> list[ArtifactVersion]:
        """Every version made from this one, through any number of runs, nearest first."""
        return self._store._reachable(self, upstream=False, type_=type, depth=depth)

    def lineage(
        self,
        upstream: bool = True,
        downstream: bool = False,
        depth: int | None = None,
        *,
        type: str | None = None,
    ) -> Lineage:
        """The graph of runs and versions around this version (see `Store.lineage`)."""
        return self._store.lineage(
            self, upstream=upstream, downstream=downstream, depth=depth, type=type
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "project": self.project,
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "digest": self.digest,
            "hash": self.hash_algorithm,
            "size": self.size,
            "new_bytes": self.new_bytes,
            "shared_bytes": self.shared_bytes,
            "chunking": self.chunking,
            "files": self.file_count,
            "aliases": self.aliases,
            "description": self.description,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }
