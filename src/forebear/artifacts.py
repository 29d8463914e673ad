"""`Artifact`: what a script fills with files, folders and references before it is logged."""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import os
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Self

from .errors import ForebearWarning, InvalidInput, InvalidPath, NotFound
from .jsonvalues import check_json, check_no_nul
from .manifest import ManifestEntry, pages
from .paths import check_name, check_text, normalise_entry_path
from .references import describe_reference
from .spool import DuplicateKey, Spool
from .walk import Walk

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class DraftBase:
    """The committed version a draft starts from, told by the layer that reads the
    catalog: its entries stay where they are (nothing of them is loaded) until asked for."""

    version_id: int  # in its own store's catalog: meaningless in any other
    label: str  # its ref, for messages
    store: Store  # the store it is in: a draft is logged there or nowhere
    project: str  # its project: where `save()` logs the draft
    count: int  # its entries, purged ones left out
    present: Callable[[list[str]], set[str]]  # which of these entry paths it holds
    count_under: Callable[[str], int]  # how many of its entries are under a folder ("a/")
    entries: Callable[[], Iterator[ManifestEntry]]  # in path order, purged ones left out

    def is_in(self, store: Store) -> bool:
        """Whether ``store`` is the one the base is in (by its id; by its catalog's URL
        for a read-only store made before stores had one)."""
        return (store.store_id or store.db_url) == (self.store.store_id or self.store.db_url)

    def refuse_other_store(self, store: Store) -> None:
        """A draft logged into another store would take that catalog's version of the
        same number as its base: refuse it, saying where it can go."""
        if not self.is_in(store):
            raise InvalidInput(
                f"this draft of {self.label} starts from a version in another store "
                f"({self.store.objects_url}); log it with a run of that store, or call "
                "its save() to make the next version there"
            )


class PendingFile(NamedTuple):
    """A local file to hash and store when the artifact is logged (a tuple: a log makes
    one for every file, three times faster than a frozen dataclass)."""

    path: str
    local_path: str  # absolute


# How many walked files go to the spool at a time.
_ADD_BATCH = 10_000


def check_copy_policy(policy: object, skip_cache: object) -> None:
    """W&B's ``policy`` ("mutable": W&B copies the file aside when it is added;
    "immutable": the caller promises not to change it) and ``skip_cache``: here nothing
    is copied aside or staged under either; a file's bytes are read, hashed and stored
    when the artifact is logged (a file changed while that runs is refused), so only
    their values are checked."""
    if policy not in ("mutable", "immutable"):
        raise InvalidInput(f"policy must be 'mutable' or 'immutable', not {policy!r}")
    if not isinstance(skip_cache, bool):
        raise InvalidInput(f"skip_cache must be True or False, not {skip_cache!r}")


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
        incremental: bool = False,
        use_as: str | None = None,
        storage_region: str | None = None,
    ) -> None:
        """W&B's ``use_as`` and ``storage_region`` are accepted (the store decides where
        bytes go); its ``incremental=True``, which W&B replaced by ``new_draft()``, is
        refused with that advice."""
        del use_as, storage_region
        if incremental:
            raise InvalidInput(
                "incremental=True is W&B's older way to add to the latest version: start "
                "from it with store.artifact('name:latest').new_draft() (W&B's too), add "
                "files, then log the draft"
            )
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
        self._scratch: str | None = None  # a folder for new_file's files, removed with self
        # a draft: the version it starts from, and what of it was removed
        self.base: DraftBase | None = None
        self._dropped: set[str] = set()
        self._dropped_folders: set[str] = set()
        self.logged: Any = None  # the version (views.ArtifactVersion) it became once logged
        self._warned_after: Any = None  # the logged version a change after it was warned of
        self.ttl: dt.timedelta | None = None  # W&B's: how long the version lives, once logged

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, entries={len(self)})"

    def refuse_others(self, name: str | None, type_: str | None) -> None:
        """Refuse a name or type given beside the artifact (``log_artifact(artifact,
        name=...)``) that is not its own."""
        for what, given, own in (("name", name, self.name), ("type", type_, self.type)):
            if given is not None and given != own:
                raise InvalidInput(
                    f"{what}={given!r} conflicts with the artifact's own {what} {own!r}"
                )

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        """Checked when set (W&B code sets it after making the artifact, too)."""
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"description must be text or None, not {type_name(value)}")
        self._description = value if value is None else check_no_nul(value, "a description")

    def logged_version(self, then: str) -> Any:
        """The version (`views.ArtifactVersion`) this artifact became once logged; one that
        is not logged yet raises `InvalidInput`, saying to log it first and ``then`` ..."""
        if self.logged is None:
            raise InvalidInput(
                f"artifact {self.name!r} is not logged yet: log it first "
                f"(run.log_artifact), then {then}"
            )
        return self.logged

    @property
    def folders(self) -> tuple[str, ...]:
        """The local folders added (absolute paths, in the order they were added)."""
        return tuple(self._folders)

    def __len__(self) -> int:
        if self.base is None:
            return len(self._entries)
        dropped = len(self._dropped) + sum(map(self.base.count_under, self._dropped_folders))
        return len(self._entries) + self.base.count - dropped

    @classmethod
    def draft(
        cls,
        base: DraftBase,
        name: str,
        type: str = "dataset",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Self:
        """A new version in the making that starts from ``base``'s entries."""
        artifact = cls(name, type, description, metadata)
        artifact.base = base
        return artifact

    def in_base(self, path: str) -> bool:
        """Whether ``path`` is one of the draft's base entries it still holds."""
        if self.base is None or path in self._dropped:
            return False
        if any(path.startswith(folder) for folder in self._dropped_folders):
            return False
        return bool(self.base.present([path]))

    def removed(self) -> tuple[frozenset[str], frozenset[str]]:
        """What a draft removed from its base: entry paths, and folders (``a/``)."""
        return frozenset(self._dropped), frozenset(self._dropped_folders)

    @contextlib.contextmanager
    def own_entries(self) -> Iterator[Artifact]:
        """This artifact as if it had no base, while the block runs: only what was added
        to it (a draft's changes, hashed and stored on their own)."""
        base, self.base = self.base, None
        try:
            yield self
        finally:
            self.base = base

    def _changing(self, stacklevel: int = 4) -> None:
        """Warn (once per logged version) that a change made after logging reaches no
        logged version: W&B refuses it (a logged artifact is final), and here it only
        goes into the next version if this artifact is logged again."""
        if self.logged is None or self._warned_after is self.logged:
            return
        self._warned_after = self.logged
        ref = getattr(self.logged, "ref", self.name)
        warnings.warn(
            f"artifact {self.name!r} is logged already (as {ref}), which this change does "
            "not alter: it goes into a new version only if the artifact is logged again "
            "(to change the logged version's files, log version.new_draft())",
            ForebearWarning,
            stacklevel=stacklevel,  # the caller's line (4: through _add)
        )

    def _add(self, rows: list[tuple[Any, ...]]) -> None:
        self._changing()
        if self.base is not None and rows:
            candidates = [
                row[0]
                for row in rows
                if row[0] not in self._dropped
                and not any(row[0].startswith(f) for f in self._dropped_folders)
            ]
            taken = self.base.present(candidates) if candidates else set()
            if taken:
                raise InvalidPath(
                    f"{min(taken)!r} is already in artifact {self.name!r} (from "
                    f"{self.base.label}); remove it first to replace it"
                )
        try:
            self._entries.add(rows)
        except DuplicateKey as exc:
            raise InvalidPath(
                f"{exc.key!r} is already in artifact {self.name!r}; pass name= to store it "
                "under another path"
            ) from None

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool = False,
        *,
        overwrite: bool = False,
        policy: str = "mutable",
        skip_cache: bool = False,
    ) -> str:
        """Add one file; its entry path defaults to the file's basename. Returns the path.
        ``overwrite`` replaces an entry already at that path (else that raises); W&B's
        ``policy`` and ``skip_cache`` are accepted (see `check_copy_policy`), and its
        ``is_tmp`` names the entry by its content, as W&B does: the name's stem becomes
        the first 20 hex digits of the file's digest (``a/x.png`` -> ``a/<digest>.png``),
        so files written to one temporary name do not collide."""
        check_copy_policy(policy, skip_cache)
        source = Path(local_path)
        if not source.exists():
            raise InvalidPath(f"cannot add {os.fspath(local_path)!r}: no such file")
        if not source.is_file():
            raise InvalidPath(
                f"cannot add {os.fspath(local_path)!r}: it is not a file (use add_dir for folders)"
            )
        path = normalise_entry_path(name if name is not None else source.name)
        if is_tmp:
            from .hashing import hash_file

            folder, _, file_name = path.rpartition("/")
            parts = file_name.split(".")
            parts[0] = hash_file(source)[0][:20]
            path = f"{folder}/{'.'.join(parts)}" if folder else ".".join(parts)
        if overwrite:
            with contextlib.suppress(NotFound):
                self.remove(path)
        self._add([(path, None, os.fsencode(os.path.abspath(source)), None, None, None, None)])
        return path

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        follow_outside_symlinks: bool = False,
        ignore: Sequence[str] | None = None,
        policy: str = "mutable",
        skip_cache: bool = False,
        merge: bool = False,
    ) -> list[str]:
        """Add every file under a folder, with entry paths relative to it (under ``name``);
        returns them (`log_artifact` with a folder path skips building that list). A path
        the artifact holds already raises `InvalidPath`, unless ``merge`` (W&B's): then
        the folder's file replaces it. W&B's ``policy`` and ``skip_cache`` are accepted
        (see `check_copy_policy`).

        Left out: a store's own folders, paths matched by ``.forebearignore`` files (in the
        folder, its subfolders and its parents up to the project root) or by ``ignore``
        (gitignore patterns, relative to the folder), and special files such as FIFOs,
        which are listed in ``skipped`` with a `ForebearWarning`. Symlinks are followed
        while their target stays inside the folder; one that points outside raises
        `InvalidPath` unless ``follow_outside_symlinks`` is set.
        """
        check_copy_policy(policy, skip_cache)
        added: list[str] = []
        self.add_folder(
            local_path, name, follow_outside_symlinks, ignore, added.append, replace=merge
        )
        return added

    def add_folder(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        follow_outside_symlinks: bool = False,
        ignore: Sequence[str] | None = None,
        added: Callable[[str], object] | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """`add_dir` without building the list of entry paths (a folder can hold
        millions); ``added`` is called with each instead. ``replace``: entries already
        at the folder's paths are replaced (`add_dir`'s ``merge``)."""
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
            if replace:
                with contextlib.suppress(NotFound):
                    self.remove(path)
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
        self,
        uri: str,
        name: str | None = None,
        *,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[str]:
        """Track data outside the store without copying it.

        Its content digest is recorded when it can be read cheaply (local files, or
        ``checksum=True`` on a backend without checksums), else the backend's ETag and
        size, so `verify` can tell when it changed. A folder adds every file under it; with
        ``max_objects``, a folder holding more raises and adds nothing.
        """
        if max_objects is not None and (
            isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 1
        ):
            raise InvalidInput(f"max_objects must be a whole number from 1, not {max_objects!r}")
        entries = describe_reference(uri, name, checksum=checksum)
        if max_objects is not None and len(entries) > max_objects:
            raise InvalidInput(
                f"{uri!r} holds {len(entries)} objects, more than max_objects={max_objects}; "
                "nothing was added: raise max_objects, or reference a narrower prefix"
            )
        self._add([(e.path, None, None, e.digest, e.size, e.uri, e.etag) for e in entries])
        return [e.path for e in entries]

    def add_entries(self, entries: Iterable[ManifestEntry]) -> None:
        """Add entries of versions already in the store, by digest, without local copies
        (what `ArtifactVersion.new_draft` starts from). Logging refuses bytes that no
        committed version of the store holds."""
        batch: list[tuple[Any, ...]] = []
        for entry in entries:
            if not isinstance(entry, ManifestEntry):
                raise InvalidInput(f"add_entries takes ManifestEntry objects, not {entry!r}")
            path = normalise_entry_path(entry.path)
            batch.append((path, None, None, entry.digest, entry.size, entry.uri, entry.etag))
            if len(batch) >= _ADD_BATCH:
                self._add(batch)
                batch = []
        self._add(batch)

    def remove(self, item: str | ManifestEntry) -> None:
        """Drop an entry (a path, or an entry), or with a path ending in ``/`` every entry
        under that folder. An unknown path raises `NotFound`."""
        path = item.path if isinstance(item, ManifestEntry) else item
        if not isinstance(path, str) or not path:
            raise InvalidInput(f"remove takes an entry path, not {item!r}")
        self._changing(stacklevel=3)
        folder = path.endswith("/")
        key = normalise_entry_path(path.rstrip("/")) + ("/" if folder else "")
        found = self._entries.remove(key, prefix=folder)
        if self.base is not None and folder:
            if self._base_count_under(key):
                self._dropped = {p for p in self._dropped if not p.startswith(key)}
                self._dropped_folders = {f for f in self._dropped_folders if not f.startswith(key)}
                self._dropped_folders.add(key)
                found = True
        elif self.in_base(key):
            self._dropped.add(key)
            found = True
        if not found:
            raise NotFound(
                f"artifact {self.name!r} has no {'folder' if folder else 'entry'} {path!r}"
            )

    def _base_count_under(self, folder: str) -> int:
        """How many base entries under ``folder`` the draft still holds."""
        if self.base is None or any(folder.startswith(f) for f in self._dropped_folders):
            return 0
        inside = [f for f in self._dropped_folders if f.startswith(folder)]
        dropped = sum(1 for p in self._dropped if p.startswith(folder))
        return self.base.count_under(folder) - dropped - sum(map(self.base.count_under, inside))

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "w", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """A new file to write, added under ``name`` when the block ends (text unless
        ``mode`` says ``b``)::

            with artifact.new_file("labels.json") as f:
                json.dump(labels, f)
        """
        path = normalise_entry_path(name)
        if path in self._entries or self.in_base(path):
            raise InvalidPath(
                f"{path!r} is already in artifact {self.name!r}; remove it first to replace it"
            )
        if mode not in ("w", "x", "wb", "xb", "w+", "wb+"):
            raise InvalidInput(f"new_file writes a new file: mode 'w' or 'wb', not {mode!r}")
        import shutil  # here, not on every start: 7 ms of imports with tempfile
        import tempfile

        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="forebear-new-file-")
            weakref.finalize(self, shutil.rmtree, self._scratch, ignore_errors=True)
        handle, name_on_disk = tempfile.mkstemp(dir=self._scratch, suffix=f"-{Path(path).name}")
        os.close(handle)  # reopened below in the mode asked for
        local = Path(name_on_disk)
        binary = "b" in mode
        with open(local, "wb" if binary else "w", encoding=None if binary else encoding) as f:
            yield f
        self.add_file(local, path)

    def batches(self, size: int) -> Iterator[list[PendingFile | ManifestEntry]]:
        """Every entry in path order, ``size`` at a time: files still to hash as
        `PendingFile`; references, and entries kept from a stored version, as their
        finished `ManifestEntry` (a stored one has a digest and no URI). A draft's base
        entries that it still holds come in their place in the order."""
        if self.base is not None:
            yield from pages(self._merged(size), size)
            return
        yield from self._own_batches(size)

    def _merged(self, size: int) -> Iterator[PendingFile | ManifestEntry]:
        assert self.base is not None
        kept = (e for e in self.base.entries() if self.in_base(e.path))
        own = (item for batch in self._own_batches(size) for item in batch)
        return heapq.merge(kept, own, key=attrgetter("path"))

    def _own_batches(self, size: int) -> Iterator[list[PendingFile | ManifestEntry]]:
        pending = tuple.__new__  # a PendingFile without its Python-level constructor (1M files)
        for rows in self._entries.batches(size):
            batch: list[PendingFile | ManifestEntry] = []
            for path, folder, local, digest, entry_size, uri, etag in rows:
                if uri is not None or (local is None and digest is not None):
                    batch.append(ManifestEntry(path, digest, entry_size, uri, etag))
                elif folder is None:
                    batch.append(pending(PendingFile, (path, os.fsdecode(local))))
                else:
                    batch.append(pending(PendingFile, (path, f"{self._folders[folder]}/{local}")))
            yield batch


def type_name(value: object) -> str:
    return value.__class__.__name__


def artifact_from_path(
    path: str | os.PathLike[str],
    name: str | None,
    type: str | None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    follow_outside_symlinks: bool = False,
    ignore: Sequence[str] | None = None,
) -> Artifact:
    """The artifact for the path shorthand: a folder's files, or one file (without
    listing a folder's entry paths, which can be millions)."""
    source = Path(path)
    from .errors import InvalidPath

    if not source.exists():
        raise InvalidPath(f"cannot log {os.fspath(path)!r}: no such file or folder")
    artifact_name = name if name is not None else _default_name(source)
    artifact = Artifact(artifact_name, type or "dataset", description, metadata)
    if source.is_dir():
        artifact.add_folder(source, None, follow_outside_symlinks, ignore)
    else:
        artifact.add_file(source)
    return artifact


def distributed_part(
    artifact: Artifact | str | os.PathLike[str], name: str | None, type_: str | None
) -> Artifact:
    """What one process adds to a distributed version: an artifact or a path, never a
    draft (a distributed version starts empty; its parts cannot carry a base)."""
    if not isinstance(artifact, Artifact):
        return artifact_from_path(artifact, name, type_, None, None)
    if artifact.base is not None:
        raise InvalidInput(
            f"a draft of {artifact.base.label} cannot be part of a distributed version, "
            "which starts empty; log the draft with log_artifact, or add its files to a "
            "new Artifact"
        )
    return artifact


def _default_name(source: Path) -> str:
    """A file's name without its last suffix (``my.model.v2.pkl`` is ``my.model.v2``), a
    folder's name as it is."""
    resolved = source.resolve()
    return resolved.stem if source.is_file() and resolved.stem else resolved.name


def refuse_store_files(
    batch: Sequence[PendingFile | ManifestEntry], forbidden: frozenset[str]
) -> None:
    """Refuse a batch holding one of ``forbidden``, the store's own files (its catalog
    and caches): logging a file that changes as it is logged cannot succeed."""
    # only a file named like one of them is made absolute (doing it for every file took
    # 31 ms of a log of 50,000 files here)
    names = {os.path.basename(path) for path in forbidden} | {"", ".", ".."}
    for item in batch:
        if (
            isinstance(item, PendingFile)
            and item.local_path.rpartition(os.sep)[2] in names
            and os.path.abspath(item.local_path) in forbidden
        ):
            raise InvalidPath(
                f"cannot log {item.local_path!r}: it is one of the store's own files (its "
                "catalog or caches); leave it out with a .forebearignore line or "
                "ignore=[...], or keep the catalog outside the folder"
            )
