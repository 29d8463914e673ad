"""Materialise a version into a local folder: every entry verified, nothing outside it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from . import progress
from .errors import InvalidInput, InvalidPath
from .fingerprint import fingerprint
from .manifest import PAGE_ENTRIES, ManifestEntry, pages
from .objects import check_link_type, place_verified, save_stream
from .statcache import FileStat

if TYPE_CHECKING:
    from .artifacts import ArtifactVersion
    from .store import Store


def _target(root: str, entry_path: str) -> str:
    """The file for an entry under ``root``; refuses anything that would land outside it,
    including through a symlinked folder already present in the destination.

    Plain strings, not `pathlib`: a version can hold millions of entries."""
    current = root
    for part in entry_path.split("/")[:-1]:
        current = os.path.join(current, part)
        if os.path.lexists(current):
            if os.path.islink(current):
                if not os.path.exists(current):
                    raise InvalidPath(
                        f"refusing to write {entry_path!r}: {current!r} is a broken symlink; "
                        "remove it and try again"
                    )
                real = os.path.realpath(current)
                if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
                    raise InvalidPath(
                        f"refusing to write {entry_path!r}: {current!r} leads outside the "
                        f"destination {root!r} (through a symlink); remove that link and "
                        "try again"
                    )
            if not os.path.isdir(current):
                raise InvalidPath(
                    f"cannot write {entry_path!r}: {current!r} is a file, not a folder; "
                    "move it away and try again"
                )
        else:
            os.mkdir(current)
    return os.path.join(root, entry_path)


def _up_to_date(store: Store, wanted: list[tuple[ManifestEntry, str]]) -> set[int]:
    """Which targets already hold their entry's bytes: the stat cache vouches for files
    it has seen unchanged, the rest of the same size are hashed on every core."""
    indices: list[int] = []
    paths: list[str] = []
    stats: list[FileStat] = []
    for index, (entry, target) in enumerate(wanted):
        if entry.digest is None or os.path.islink(target):
            continue
        try:
            info = os.stat(target)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size == entry.size:
            indices.append(index)
            paths.append(target)
            stats.append(FileStat.of(info))
    found = fingerprint(paths, stats, store.stat_cache)
    return {i for i, f in zip(indices, found, strict=True) if f.digest == wanted[i][0].digest}


def materialise(
    store: Store,
    version: ArtifactVersion,
    root: Path,
    *,
    show_progress: bool | None = None,
    link: str = "auto",
) -> Path:
    """Every entry of ``version`` under ``root``, verified; files already there and intact
    are kept, others replaced. Remote objects go through the store's local cache.
    ``link`` says how stored bytes are placed (see `links.LINK_TYPES`)."""
    if check_link_type(link) == "symlink" and not store.objects.is_local:
        raise InvalidInput(
            "link 'symlink' needs a local object location (links into the download cache "
            "would break when it is pruned); use 'hardlink', 'auto' or 'copy'"
        )
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    base = str(root)
    location = store.objects
    with progress.bar(
        f"downloading {version.ref}", version.size, progress.wanted(show_progress)
    ) as tick:
        for page in pages(version.iter_entries(), PAGE_ENTRIES):
            placed: list[tuple[ManifestEntry, str, str]] = []
            for entry in page:
                target = _target(base, entry.path)
                label = f"{version.ref} {entry.path}"
                if os.path.isdir(target) and not os.path.islink(target):
                    raise InvalidPath(
                        f"cannot download {label}: {target!r} is a folder; move it away"
                    )
                placed.append((entry, target, label))
            current = _up_to_date(store, [(e, t) for e, t, _ in placed])
            todo = []
            for index, (entry, target, label) in enumerate(placed):
                if index in current:
                    tick(entry.size)
                else:
                    todo.append((entry, target, label))
            chunked = store._chunk_lists(e for e, _, _ in todo)
            if not location.is_local:  # fetch what the cache lacks, several at a time
                store.cache.fill(
                    location,
                    {
                        e.digest: label
                        for e, _, label in todo
                        if e.digest and not e.uri and e.digest not in chunked
                    },
                )
            for entry, target, label in todo:
                if os.path.islink(target):
                    os.unlink(target)
                chunks = chunked.get(entry.digest or "")
                if chunks is not None:  # a copy, whatever the link type: no one object has it
                    cached = not location.is_local
                    with store._open_chunked(label, chunks, cached=cached) as src:
                        save_stream(src, target, tick)
                elif entry.uri is not None:
                    with store._open_entry(label, entry) as src:
                        save_stream(src, target, tick)
                elif location.is_local:
                    digest = entry.digest or ""
                    source = location.local_object(digest, label)
                    place_verified(source, target, digest, link, tick, label)
                else:
                    store.cache.copy_out(location, entry.digest or "", target, tick, label, link)
    if not location.is_local:
        store.cache.prune()
    return root
