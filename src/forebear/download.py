"""Materialise a version into a local folder: every entry verified, nothing outside it."""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import progress
from .destination import Destination, Target, check_link_type, place_object, write_stream
from .errors import ForebearWarning, IntegrityError, InvalidInput, InvalidPath, ObjectNotFound
from .fingerprint import fingerprint_if_readable
from .manifest import PAGE_ENTRIES, ManifestEntry, ManifestWriter
from .statcache import FileStat

if TYPE_CHECKING:
    from .chunking import ChunkList
    from .objects import ObjectLocation
    from .store import Store
    from .views import ArtifactVersion

# Folders kept open at once while a batch of entries is placed (each is a file handle).
OPEN_FOLDERS = 256


def _up_to_date(
    store: Store, destination: Destination, wanted: list[tuple[ManifestEntry, Target]]
) -> set[int]:
    """Which targets already hold their entry's bytes: the stat cache vouches for files
    it has seen unchanged, the rest of the same size are hashed on every core (read
    through their folder's handle, not their path)."""
    indices: list[int] = []
    paths: list[str] = []
    stats: list[FileStat] = []
    for index, (entry, target) in enumerate(wanted):
        if entry.digest is None:
            continue
        info = destination.existing(target)
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_size == entry.size:
            indices.append(index)
            paths.append(destination.read_path(target))
            stats.append(FileStat.of(info))
    found = fingerprint_if_readable(paths, stats, store.stat_cache)
    return {
        i
        for i, f in zip(indices, found, strict=True)
        if f is not None and f.digest == wanted[i][0].digest
    }


def download(
    store: Store,
    version: ArtifactVersion,
    root: str | os.PathLike[str] | None,
    *,
    show_progress: bool | None = None,
    link: str = "auto",
    select: Callable[[str], bool] | None = None,
    allow_missing_references: bool = False,
) -> Path:
    """`materialise` into ``root``, or without one into the store's cache, which then
    stays within its bound (least recently used first, never this version)."""
    options: dict[str, Any] = {
        "show_progress": show_progress, "link": link, "select": select,
        "allow_missing_references": allow_missing_references,
    }  # fmt: skip
    if root is not None:
        return materialise(store, version, Path(root), **options)
    folder = store.cache.download_folder(version.project, version.name, version.version)
    done = materialise(store, version, folder, **options)
    store.cache.touch(done)
    store.cache.prune(keep=done)
    return done


def materialise(
    store: Store,
    version: ArtifactVersion,
    root: Path,
    *,
    show_progress: bool | None = None,
    link: str = "auto",
    select: Callable[[str], bool] | None = None,
    allow_missing_references: bool = False,
) -> Path:
    """Every entry of ``version`` (or those whose path ``select`` accepts) under ``root``,
    verified; files already there and intact are kept, others replaced. Remote objects go
    through the store's local cache. ``link`` says how stored bytes are placed (see
    `links.LINK_TYPES`). ``allow_missing_references``: a reference whose target is gone
    is left out, with a warning, instead of failing the download."""
    if check_link_type(link) == "symlink" and not store.objects.is_local:
        raise InvalidInput(
            "link 'symlink' needs a local object location (links into the download cache "
            "would break when it is pruned); use 'hardlink', 'auto' or 'copy'"
        )
    _check_listed(version)
    with (
        Destination(root) as destination,
        progress.bar(
            f"downloading {version.ref}", version.size, progress.wanted(show_progress)
        ) as tick,
    ):
        batch: list[tuple[ManifestEntry, Target, str]] = []
        missing: list[str] | None = [] if allow_missing_references else None
        purged = {r.path: r for r in version.redactions() if select is None or select(r.path)}
        for entry in version.iter_entries():
            if select is not None and not select(entry.path):
                continue
            if entry.path in purged:  # its bytes are gone: it cannot be placed
                tick(entry.size)
                continue
            label = f"{version.ref} {entry.path}"
            target = destination.target(entry.path)
            info = destination.existing(target)
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise InvalidPath(
                    f"cannot download {label}: {target.path!r} is a folder; move it away"
                )
            batch.append((entry, target, label))
            if len(batch) >= PAGE_ENTRIES or destination.open_folders >= OPEN_FOLDERS:
                _place(store, destination, batch, link, tick, missing)
                batch = []
        _place(store, destination, batch, link, tick, missing)
    if not store.objects.is_local:
        store.cache.prune(keep=root)
    if missing:
        warnings.warn(
            f"{version.ref}: {len(missing)} references whose targets are gone were not "
            f"downloaded: {', '.join(missing[:10])}",
            ForebearWarning,
            stacklevel=3,
        )
    if purged:
        listed = "; ".join(f"{p} ({r.reason})" for p, r in sorted(purged.items()))
        warnings.warn(
            f"{version.ref}: {len(purged)} purged files were not downloaded: {listed}",
            ForebearWarning,
            stacklevel=3,
        )
    return root.resolve()


def _check_listed(version: ArtifactVersion) -> None:
    """Refuse, before anything is placed, a version whose entries as the catalog lists them
    are not those its digest names (the manifest it committed): a catalog changed behind
    forebear's back could otherwise place one file's bytes under another's path, each
    object still matching its own digest. One more pass over the entries: for 50,000
    entries about 0.3 s, beside the seconds placing them takes."""
    writer = ManifestWriter(None)
    writer.add_rows((e.path, e.digest, e.size, e.uri, e.etag) for e in version.iter_entries())
    listed = writer.finish()
    if listed != version.digest:
        raise IntegrityError(
            f"{version.ref}: the catalog's entries hash to {listed}, not to the version's "
            f"digest {version.digest}: the catalog was changed outside forebear, and nothing "
            "was downloaded; restore it from a backup ('forebear verify' lists what else)"
        )


def _place(
    store: Store,
    destination: Destination,
    batch: list[tuple[ManifestEntry, Target, str]],
    link: str,
    tick: Callable[[int], None],
    missing: list[str] | None = None,
) -> None:
    """Write one batch of entries whose targets are open, then close their folders; a
    reference whose target is gone goes to ``missing``, when given, instead of raising."""
    try:
        current = _up_to_date(store, destination, [(e, t) for e, t, _ in batch])
        todo = []
        for index, (entry, target, label) in enumerate(batch):
            if index in current:
                tick(entry.size)
            else:
                todo.append((entry, target, label))
        location = store.objects
        chunked = store.content.chunk_lists(e for e, _, _ in todo)
        packed = location.packed(e.digest for e, _, _ in todo if e.digest and not e.uri)
        if not location.is_local:
            todo = _place_together(location, todo, chunked, tick)
            # fetch what the cache lacks, several at a time, chunks too: neighbours in a
            # pack come in one request, a server's in batches, and the rest side by side
            # (read as the file is written, a chunk at a time, a 64 MiB file through a
            # server took 835 requests one after the other)
            wanted = {
                e.digest: label
                for e, _, label in todo
                if e.digest and not e.uri and e.digest not in chunked
            }
            for e, _, label in todo:
                if (chunks := chunked.get(e.digest or "")) is not None:
                    for index, digest in enumerate(chunks.digests):
                        wanted.setdefault(digest, f"{label}: {chunks.describe(index)}")
            store.cache.fill(location, wanted)
        for entry, target, label in todo:
            chunks = chunked.get(entry.digest or "")
            if chunks is not None:  # a copy, whatever the link type: no one object has it
                cached = not location.is_local
                with store.content.open_chunked(label, chunks, cached=cached) as src:
                    write_stream(target, src, tick)
            elif entry.uri is not None or (location.is_local and entry.digest in packed):
                # a reference, or a packed object: no file of its own to link; a checked copy
                try:
                    with store.content.open_entry(label, entry, to_copy=True) as src:
                        write_stream(target, src, tick)
                except ObjectNotFound:
                    if missing is None or entry.uri is None:
                        raise
                    missing.append(entry.path)
                    tick(entry.size)
            elif location.is_local:
                digest = entry.digest or ""
                source = location.local_object(digest, label)
                place_object(target, source, digest, link, tick, label)
            else:
                store.cache.copy_out(location, entry.digest or "", target, tick, label, link)
    finally:
        destination.release()


def _place_together(
    location: ObjectLocation,
    todo: list[tuple[ManifestEntry, Target, str]],
    chunked: dict[str, ChunkList],
    tick: Callable[[int], None],
) -> list[tuple[ManifestEntry, Target, str]]:
    """Write the whole files a remote location reads together (packed ones: neighbours in
    one request; through a server, in batches) straight from what it reads, each object
    checked: a small file costs one file written, not a cached copy and then the file.
    What is left to place is returned."""
    direct: dict[str, list[Target]] = {}
    labels: dict[str, str] = {}
    rest = []
    for entry, target, label in todo:
        digest = entry.digest or ""
        if digest and digest not in chunked and entry.uri is None:
            direct.setdefault(digest, []).append(target)
            labels.setdefault(digest, label)
        else:
            rest.append((entry, target, label))
    for digest, data in location.read_together(direct, labels):
        for target in direct.pop(digest):
            write_stream(target, io.BytesIO(data), tick)
    rest.extend((e, t, label) for e, t, label in todo if e.digest in direct)
    return rest
