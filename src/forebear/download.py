"""Materialise a version into a local folder: every entry verified, nothing outside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import progress
from .errors import InvalidPath
from .hashing import hash_file
from .objects import save_stream

if TYPE_CHECKING:
    from .artifacts import ArtifactVersion
    from .manifest import ManifestEntry
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
    store: Store, version: ArtifactVersion, root: Path, *, show_progress: bool | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    entries = list(version.manifest)
    total = sum(e.size for e in entries)
    with progress.bar(f"downloading {version.ref}", total, progress.wanted(show_progress)) as tick:
        for entry in entries:
            target = _target(root, entry.path)
            label = f"{version.ref} {entry.path}"
            if target.is_dir() and not target.is_symlink():
                raise InvalidPath(
                    f"cannot download {label}: {str(target)!r} is a folder; move it away"
                )
            if _up_to_date(target, entry):
                tick(entry.size)
                continue
            if target.is_symlink():
                target.unlink()
            if entry.uri is None:
                assert entry.digest is not None
                store.objects.get_file(entry.digest, target, tick, label=label)
            else:
                with store._open_entry(label, entry) as src:
                    save_stream(src, target, tick)
    return root
