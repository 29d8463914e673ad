"""W&B's ``wandb.Image``: a picture a training script logs (``run.log({"examples": [...]})``),
kept with the run as a version of its own, as a `Table` is (see `Run.log`).

An image is encoded once, when it is made, so later changes to its array do not reach it:
PNG for an array, a tensor, a PIL image or a matplotlib figure; an image file given by
its path keeps its own bytes and format. An array or a PIL image needs Pillow, as W&B's
``Image`` does; a file or a figure does not."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from typing import Any

from .errors import InvalidInput

# the file types an image may be logged in: what browsers show
FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "bmp": "bmp", "webp": "webp"}
MAX_BYTES = 64 << 20  # an image file larger than this is no picture to look at
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Image:
    """W&B's ``wandb.Image(data_or_path, mode=None, caption=None, ...)``: ``data_or_path``
    is the path of an image file, a numpy array (height x width, with 1, 3 or 4 channels
    last or first; floats from 0 to 1, or from -1 to 1, are scaled to 0-255 unless not
    ``normalize``), a PyTorch tensor, a PIL image or a matplotlib figure. ``mode`` is
    Pillow's (``"L"``, ``"RGB"``, ``"RGBA"``), ``file_type`` the format of the file made
    from data (``"png"`` unless said). W&B's ``grouping``, ``classes``, ``boxes`` and
    ``masks`` (overlays drawn in its app) are accepted and not kept."""

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: str | None = None,
        grouping: int | None = None,
        classes: Any = None,
        boxes: Any = None,
        masks: Any = None,
        file_type: str | None = None,
        normalize: bool = True,
    ) -> None:
        del grouping, classes, boxes, masks
        self.caption = None if caption is None else str(caption)
        self.data: bytes
        self.format: str
        if isinstance(data_or_path, Image):
            self.data, self.format = data_or_path.data, data_or_path.format
        elif isinstance(data_or_path, (str, os.PathLike)):
            self.data, self.format = _read_file(os.fspath(data_or_path))
        elif hasattr(data_or_path, "savefig"):  # a matplotlib figure
            buffer = io.BytesIO()
            data_or_path.savefig(buffer, format="png")
            self.data, self.format = buffer.getvalue(), "png"
        else:
            chosen = _format(file_type or "png")
            if chosen is None:
                raise InvalidInput(f"file_type={file_type!r}: {_FORMATS_SAID}")
            self.data = _encode(_pil_image(data_or_path, mode, normalize), chosen)
            self.format = chosen
        self.width, self.height = _size(self.data)

    @property
    def suffix(self) -> str:
        """The file name's ending for this image's format."""
        return "jpg" if self.format == "jpeg" else self.format

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width is not None else "?"
        return f"<Image {self.format} {size} {len(self.data)} bytes>"


def stored_image(data: bytes, format: str, caption: str | None) -> Image:
    """An image read back from a version (a table cell's picture): its bytes as kept."""
    image = Image.__new__(Image)
    image.data, image.format, image.caption = data, format, caption
    image.width, image.height = _size(data)
    return image


def is_images(value: object) -> bool:
    """Whether ``value`` is what `Run.log` keeps as images: one, or a list of them."""
    if isinstance(value, Image):
        return True
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(item, Image) for item in value)
    )


_FORMATS_SAID = f"an image is one of {', '.join(sorted(FORMATS))}"


def _format(name: str) -> str | None:
    return FORMATS.get(str(name).lower().lstrip("."))


def _read_file(path: str) -> tuple[bytes, str]:
    chosen = _format(os.path.splitext(path)[1])
    if chosen is None:
        raise InvalidInput(f"{path!r} is not named as an image file: {_FORMATS_SAID}")
    return read_capped(path, "image"), chosen


def read_capped(path: str, what: str) -> bytes:
    """The bytes of a media file (``what``: "image", "sound", ...), read no further than
    `MAX_BYTES`; one clear `InvalidInput` when it cannot be read or is larger."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} {path!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise InvalidInput(
            f"the {what} {path!r} is larger than {MAX_BYTES >> 20} MiB: keep it with "
            "run.save(path) or in an Artifact"
        )
    return data


def _pil_image(data: Any, mode: str | None, normalize: bool) -> Any:
    """A PIL image of an array, a tensor or a PIL image."""
    try:
        from PIL import Image as PILImage
    except ImportError:
        raise InvalidInput(
            f"forebear.Image of a {type(data).__name__} needs Pillow (pip install pillow), as "
            "W&B's does; or pass the path of an image file"
        ) from None
    if isinstance(data, PILImage.Image):
        return _in_mode(lambda: data.convert(mode) if mode else data, mode)
    if hasattr(data, "detach"):  # a PyTorch tensor
        data = data.detach().cpu().numpy()
    import numpy as np

    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise _not_an_image(data) from exc
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channels first, as tensors have them
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise _not_an_image(data, f" of shape {array.shape}")
    if array.dtype.kind not in "biuf" or array.size == 0:
        raise _not_an_image(data, f" of {array.dtype} values")
    if array.dtype != np.uint8:
        floats = array.dtype.kind == "f"  # only floats are scaled, as W&B scales them
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise InvalidInput("forebear.Image: the array holds NaN or infinite values")
        if normalize and floats and array.min() >= -1 and array.max() <= 1:
            array = (array + 1) * 127.5 if array.min() < 0 else array * 255
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return _in_mode(
        lambda: PILImage.fromarray(array, mode) if mode else PILImage.fromarray(array), mode
    )


def _in_mode(make: Callable[[], Any], mode: str | None) -> Any:
    """The PIL image ``make`` returns; a ``mode`` Pillow cannot give it, said plainly."""
    try:
        return make()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"forebear.Image: mode={mode!r} does not fit this image: {exc}") from exc


def _not_an_image(data: Any, detail: str = "") -> InvalidInput:
    return InvalidInput(
        f"forebear.Image takes a path, a numpy array (height x width, with 1, 3 or 4 "
        f"channels), a tensor, a PIL image or a matplotlib figure, not a "
        f"{type(data).__name__}{detail}"
    )


def _encode(image: Any, chosen: str) -> bytes:
    buffer = io.BytesIO()
    if chosen == "jpeg" and image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    try:
        image.save(buffer, format=chosen.upper())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"forebear.Image: cannot make a {chosen} file of it: {exc}") from exc
    return buffer.getvalue()


def _size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height of a PNG from its header (any format with Pillow installed)."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    try:
        from PIL import Image as PILImage
    except ImportError:
        return None, None
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            width, height = image.size
            return width, height
    except (OSError, ValueError, PILImage.DecompressionBombError):  # bytes it cannot read
        return None, None
