"""The images, sound and video a run logged, shown on its page: found through the records
`Run.log` leaves in the summary (``{"_type": "image-file", "artifact": ..., "path": ...}``),
each file served inline from the version that keeps it.

Only files of a type a browser shows and cannot run are served inline (pictures, sound,
video; never a page or an SVG), each with its own media type, so a logged file can never
act as part of the web UI. The summary is the script's to write: what it names is only
ever a link into this site, which the version's route checks as any other."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from ..pages import quoted, version_page
from ..paths import normalise_entry_path

# what a browser shows inline and runs nothing of, by the file name's ending
SHOWN_INLINE = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "bmp": "image/bmp", "webp": "image/webp",
    "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac",
    "m4a": "audio/mp4", "aac": "audio/aac",
    "mp4": "video/mp4", "webm": "video/webm",
}  # fmt: skip
_KINDS = {"image": "image", "images": "image", "audio": "audio", "video": "video"}
MAX_SHOWN = 24  # files shown for one key: a list of a thousand images is a link, not a page


def inline_type(path: str) -> str | None:
    """The media type a file is served inline with, or None: not shown inline."""
    return SHOWN_INLINE.get(path.rsplit(".", 1)[-1].lower()) if "." in path else None


def logged_media(summary: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Each key of the summary that names logged pictures, sound or video (in nested
    dicts too, as ``outer.inner``), with the files to show: their page address, the tag
    that shows them (``img``, ``audio``, ``video``) and their captions."""
    found: list[dict[str, Any]] = []
    for key, value in sorted(summary.items()):
        if not isinstance(value, dict):
            continue
        name = f"{prefix}{key}"
        kind = _KINDS.get(str(value.get("_type", "")).split("-file")[0].split("/")[0])
        where = _version_address(value.get("artifact"))
        if kind is None or where is None:
            found.extend(logged_media(value, f"{name}."))
            continue
        paths = value.get("paths", [value.get("path")])
        captions = value.get("captions", [value.get("caption")])
        if not isinstance(paths, list) or not isinstance(captions, list):
            continue
        files = []
        for index, path in enumerate(paths[:MAX_SHOWN]):
            media_type = inline_type(path) if _entry_path(path) else None
            if media_type is None:
                continue
            caption = captions[index] if index < len(captions) else None
            tag = "img" if media_type.startswith("image/") else media_type.split("/")[0]
            address = f"{where}/view/" + "/".join(quoted(part) for part in path.split("/"))
            files.append({"src": address, "tag": tag, "caption": caption, "path": path})
        if files:
            more = max(0, len(paths) - MAX_SHOWN)
            found.append({"key": name, "kind": kind, "files": files, "page": where, "more": more})
    return found


def _entry_path(path: object) -> bool:
    """Whether ``path`` is a file's path in a version as written there (no ``..``, no
    leading ``/``): a link to anything else is not made."""
    if not isinstance(path, str):
        return False
    try:
        return normalise_entry_path(path) == path
    except InvalidInput:
        return False


def _version_address(ref: object) -> str | None:
    """The page of the version ``project/name:vN`` names, or None: no such ref."""
    if not isinstance(ref, str) or "/" not in ref or ":" not in ref:
        return None
    artifact, _, version = ref.rpartition(":")
    project, _, name = artifact.partition("/")
    if not (project and name and version):
        return None
    return version_page(project, name, version)
