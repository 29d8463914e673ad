"""What `Run.log` keeps of the values that are more than a number: a `Table`, images,
audio, video, pages, a `Histogram`, a `Chart`. Each is kept as a version of its own,
beside the run, as W&B keeps them as files of the run; this module says which files make
that version and what the summary says of it, and the run logs it (see `Run.log`)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .histograms import Histogram
from .media import Image, is_images
from .media_files import MediaFile
from .plot import Chart
from .tables import Table, table_path


class Kept(NamedTuple):
    """How one logged value is kept: as a version of ``run-<id>-<name><ending>`` of type
    ``type``, holding ``files`` (path → bytes), with ``metadata``; the summary then holds
    ``record`` and the version's ref (under ``artifact``)."""

    ending: str
    type: str
    files: dict[str, bytes]
    record: dict[str, Any]
    metadata: dict[str, Any] | None = None


def is_kept(value: object) -> bool:
    """Whether `Run.log` keeps ``value`` as a version of its own."""
    return isinstance(value, (Table, Histogram, Chart)) or is_images(value) or _media(value) != []


def holds_kept(value: object) -> bool:
    """Whether ``value`` is kept, or is a dict (``{"val": {"sample": image}}``, as W&B
    takes them) that holds one at any depth."""
    if isinstance(value, dict):
        return any(holds_kept(item) for item in value.values())
    return is_kept(value)


def _media(value: object) -> list[MediaFile]:
    """The media files of one kind ``value`` is (one, or a list of them), else none."""
    if isinstance(value, MediaFile):
        return [value]
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], MediaFile):
        kind = type(value[0])
        if all(type(item) is kind for item in value):
            return list(value)
    return []


def kept_form(name: str, value: Any, step: int) -> Kept | None:
    """How ``value``, logged under the artifact-safe ``name`` at ``step``, is kept; None
    for a value the summary and history take as it is."""
    if isinstance(value, Chart):
        table = _kept_table(name, value.table)
        return table._replace(record={**table.record, "chart": value.to_json()})
    if isinstance(value, Table):
        return _kept_table(name, value)
    if isinstance(value, Histogram):
        path = f"{step}.histogram.json"
        data = json.dumps(value.to_json(), separators=(",", ":")).encode()
        record = {**value.to_json(), "path": path}
        return Kept("-histograms", "run_media", {path: data}, record, {"step": step})
    media = _media(value)
    if media:
        return _kept_media(media, single=isinstance(value, MediaFile), step=step)
    if not is_images(value):
        return None
    images: list[Image] = [value] if isinstance(value, Image) else list(value)
    paths = [f"{step}_{index}.{image.suffix}" for index, image in enumerate(images)]
    files = {path: image.data for path, image in zip(paths, images, strict=True)}
    if isinstance(value, Image):
        record = {"_type": "image-file", "format": value.format, "path": paths[0],
                  "width": value.width, "height": value.height,
                  "caption": value.caption}  # fmt: skip
    else:
        record = {"_type": "images/separated", "format": images[0].format,
                  "count": len(images), "paths": paths,
                  "captions": [image.caption for image in images]}  # fmt: skip
    return Kept("-images", "run_media", files, record, {"step": step})


def _kept_media(media: list[MediaFile], single: bool, step: int) -> Kept:
    """Audio, videos or pages logged at ``step``: W&B's ``<kind>-file`` record for one,
    and for a list the paths and captions of all."""
    first = media[0]
    paths = [f"{step}_{index}.{item.suffix}" for index, item in enumerate(media)]
    files = {path: item.data for path, item in zip(paths, media, strict=True)}
    if single:
        record = {"_type": f"{first.kind}-file", "path": paths[0], **first.describe()}
    else:
        record = {"_type": f"{first.kind}/separated", "count": len(media), "paths": paths,
                  "captions": [item.caption for item in media]}  # fmt: skip
    return Kept(f"-{first.plural}", "run_media", files, record, {"step": step})


def _kept_table(name: str, table: Table) -> Kept:
    path = table_path(name[:100])
    record = {"_type": "table-file", "path": path, "nrows": len(table.data),
              "ncols": len(table.columns)}  # fmt: skip
    return Kept("", "run_table", table.stored_files(path), record)
