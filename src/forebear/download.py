"""Materialise a version into a local folder: every entry verified, nothing outside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import progress
from .errors import InvalidInput, InvalidPath
from .hashing import hash_file
from .manifest import ManifestEntry
from .objects import check_link_type, place_verified, save_stream

if TYPE_CHECKING:
    from .artifacts import ArtifactVersion
    from .store import Store


def _target(root: Path, entry_path: str) -> Path:
    """The file for an entry under ``root``; refuses anything that would land outside it,
    including through a symlinked folder already present in the destination."""
    current = root
    for part in entry_path.split("/")[:-1]:
        current = current / part
        if current.is_symlink() or current.exists():
            real = current.resolve()
            if real != root and root not in real.parents:
                raise InvalidPath(
                    f"refusing to write {entry_path!r}: {str(current)!r} leads outside the "
                    f"destination {str(root)!r} (through a symlink); remove that link and "
                    "try again"
                )
        if current.is_symlink() and not current.exists():
            raise InvalidPath(
                f"refusing to write {entry_path!r}: {str(current)!r} is a broken symlink; "
                "remove it and try again"
            )
        if not current.exists():
            current.mkdir()
        elif not current.is_dir():
            raise InvalidPath(
                f"cannot write {entry_path!r}: {str(current)!r} is a file, not a folder; "
                "move it away and try again"
            )
    return root / entry_path


def _up_to_date(target: Path, entry: ManifestEntry) -> bool:
    if target.is_symlink() or not target.is_file() or entry.digest is None:
        return False
    digest, size = hash_file(target)
    return digest == entry.digest and size == entry.size


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
    location = store.objects
    todo: list[tuple[ManifestEntry, Path, str]] = []
    with progress.bar(
        f"downloading {version.ref}", version.size, progress.wanted(show_progress)
    ) as tick:
        for entry in version.manifest:
            target = _target(root, entry.path)
            label = f"{version.ref} {entry.path}"
            if target.is_dir() and not target.is_symlink():
                raise InvalidPath(
                    f"cannot download {label}: {str(target)!r} is a folder; move it away"
                )
            if _up_to_date(target, entry):
                tick(entry.size)
            else:
                todo.append((entry, target, label))
        if not location.is_local:  # fetch what the cache lacks, several at a time
            store.cache.fill(
                location, {e.digest: label for e, _, label in todo if e.digest and not e.uri}
            )
        for entry, target, label in todo:
            if target.is_symlink():
                target.unlink()
            if entry.uri is not None:
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
