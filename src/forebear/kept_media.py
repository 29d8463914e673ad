"""W&B's values kept as files of a version, and read back as the objects they were.

``artifact.add(obj, name)`` keeps a picture, sound, video or page as W&B keeps it: W&B's
record of it in ``<name>.<kind>-file.json`` (``sample.image-file.json``), naming the media
file beside it, ``media/<kind>/<digest>.<suffix>`` (see `tables`, whose cells keep media
the same way). ``version.get(name)`` finds the record and gives the object back, and a
table's cells the same.

A record comes from a version anyone may have written, so it is trusted for nothing: one
naming a path the version does not hold, a reference (which would be fetched), a file
larger than media may be, or a format the kind does not have is read no further. In a
table's cell it stays the record it is; asked for by name, it is one `InvalidInput`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from .errors import InvalidInput, InvalidPath, NotFound
from .jsonvalues import loads
from .manifest import ManifestEntry
from .tables import media_record, stored_json

# the record's type, by the kind of media it keeps (W&B's ``_log_type``)
RECORD_TYPES = {kind: f"{kind}-file" for kind in ("image", "audio", "video", "html")}
_RECORD_BYTES = 1 << 20  # a record is a few hundred bytes: larger is no record


class StoredFiles(Protocol):
    """What reading back needs of a version: its entries, and their bytes."""

    def entry(self, path: str) -> ManifestEntry: ...

    def open(self, path: str) -> BinaryIO: ...


def is_kept_media(value: object) -> bool:
    """Whether ``artifact.add`` keeps ``value`` as a picture, sound, video or page."""
    from .media import Image
    from .media_files import MediaFile

    return isinstance(value, (Image, MediaFile)) and _kind(value) in RECORD_TYPES


def record_path(name: str, value: object) -> str:
    """Where ``artifact.add(value, name)`` keeps W&B's record: ``<name>.<type>.json``."""
    suffix = f".{RECORD_TYPES[_kind(value)]}.json"
    return name if name.endswith(suffix) else f"{name}{suffix}"


def stored_files(value: object, path: str) -> dict[str, bytes]:
    """The files that keep ``value`` in a version: W&B's record under ``path``, then the
    media file it names."""
    return stored_json(path, lambda media: media_record(value, media))


def find_record(version: StoredFiles, name: str) -> dict[str, Any] | None:
    """The record ``artifact.add(obj, name)`` kept in ``version`` for a picture, sound,
    video or page, or None when it has none."""
    for record_type in RECORD_TYPES.values():
        path = f"{name}.{record_type}.json"
        try:
            entry = version.entry(path)
        except NotFound:
            continue
        if entry.uri is not None or entry.size > _RECORD_BYTES:
            raise InvalidInput(
                f"{path} is not a record of {record_type} (a reference, or too large)"
            )
        with version.open(path) as file:
            text = file.read().decode(errors="replace")
        try:
            record = loads(text, path)
        except ValueError as exc:  # not JSON at all
            raise InvalidInput(f"{path} is not a record of {record_type} ({exc})") from None
        if not isinstance(record, dict):
            raise InvalidInput(f"{path} is not a record of {record_type}")
        return {**record, "_type": record_type}
    return None


def read_added(version: StoredFiles, name: str, where: str) -> Any:
    """The picture, sound, video or page ``artifact.add(obj, name)`` kept in ``version``
    (``where``: its ref, for errors), or None when it has none; `InvalidInput` for a
    record naming no file of the version that can be read back."""
    record = find_record(version, name)
    if record is None:
        return None
    made = read_back(version, record)
    if made is record:
        raise InvalidInput(
            f"{name}.{record['_type']}.json in {where} names no media file of this version "
            f"that can be read back ({str(record.get('path'))[:80]!r}: outside it, missing, "
            "a reference, or of another format); read the record with version.open(...)"
        )
    return made


def read_back(version: StoredFiles, record: Any) -> Any:
    """The picture, sound, video or page a record names, read from its file in
    ``version``; anything else, or a record the version cannot vouch for (see the
    module), as it is."""
    if not isinstance(record, dict):
        return record
    make = _MAKERS.get(str(record.get("_type")))
    if make is None:
        return record
    from .media import MAX_BYTES

    try:
        path = record.get("path")
        if not isinstance(path, str):
            return record
        entry = version.entry(path)
        if entry.uri is not None or entry.size > MAX_BYTES:  # a reference is not fetched
            return record
        with version.open(path) as file:
            data = file.read(MAX_BYTES + 1)
    except (NotFound, InvalidPath):
        return record
    made = make(data, record)
    return record if made is None else made


def read_cells(version: StoredFiles, rows: list[list[Any]]) -> None:
    """Replace, in place, each cell of ``rows`` holding a media record by its object."""
    for row in rows:
        for index, cell in enumerate(row):
            if isinstance(cell, dict) and cell.get("_type") in _MAKERS:
                row[index] = read_back(version, cell)


def _kind(value: object) -> str:
    from .media import Image

    return "image" if isinstance(value, Image) else str(getattr(value, "kind", ""))


def _caption(record: dict[str, Any]) -> str | None:
    caption = record.get("caption")
    return None if caption is None else str(caption)


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _image(data: bytes, record: dict[str, Any]) -> Any:
    from .media import FORMATS, stored_image

    format = str(record.get("format"))
    if format not in FORMATS.values():  # no picture's, as for the other kinds
        return None
    return stored_image(data, format, _caption(record))


def _media_file(kind: str) -> Callable[[bytes, dict[str, Any]], Any]:
    def make(data: bytes, record: dict[str, Any]) -> Any:
        from .media_files import stored_media

        described = {k: _whole(record.get(k)) for k in ("sample_rate", "width", "height")}
        return stored_media(kind, data, str(record.get("format")), _caption(record), described)

    return make


_MAKERS: dict[str, Callable[[bytes, dict[str, Any]], Any]] = {
    "image-file": _image,
    "audio-file": _media_file("audio"),
    "video-file": _media_file("video"),
    "html-file": _media_file("html"),
}
