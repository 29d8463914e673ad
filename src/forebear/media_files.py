"""W&B's ``wandb.Audio``, ``wandb.Video`` and ``wandb.Html``: sound, moving pictures and
pages a training script logs (``run.log({"samples": [Audio(...), ...]})``), kept with the
run as a version of their own, as images are (see `Run.log`).

Each is one file, made once, when it is made: a file given by its path keeps its own
bytes (up to `MAX_BYTES`), an array is encoded as W&B encodes it where the standard
library or Pillow can (sound as 16-bit WAV, video as an animated GIF), and a later change
to the array or the file does not reach it."""

from __future__ import annotations

import io
import os
import wave
from typing import Any

from .errors import InvalidInput
from .media import MAX_BYTES, read_capped

AUDIO_FORMATS = ("wav", "mp3", "ogg", "flac", "m4a", "aac", "webm")
VIDEO_FORMATS = ("gif", "mp4", "webm", "ogg")
VIDEO_FPS = 4  # W&B's frames per second when none is said
MAX_CHANNELS = 8  # of a sound: more is an array the wrong way round


class MediaFile:
    """One file of media: its bytes (``data``), the name's ending (``suffix``) and a
    ``caption``. `Run.log` keeps it under ``<step>_<index>.<suffix>``; ``kind`` names what
    it is (``"audio"``) and `describe` what the summary says of it beside its path."""

    kind = "file"
    plural = "files"

    def __init__(self, data: bytes, suffix: str, caption: Any = None) -> None:
        self.data = data
        self.suffix = suffix
        self.caption = None if caption is None else str(caption)

    def describe(self) -> dict[str, Any]:
        return {"format": self.suffix, "size": len(self.data), "caption": self.caption}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.suffix} {len(self.data)} bytes>"


class Audio(MediaFile):
    """W&B's ``wandb.Audio(data_or_path, sample_rate=None, caption=None)``: the path of
    a sound file (``wav``, ``mp3``, ``ogg``, ``flac``, ``m4a``, ``aac``, ``webm``), or the
    samples as a numpy array (or a tensor) with their ``sample_rate``: one value per
    sample, or a row of one per channel; floats from -1 to 1, or 16-bit integers. Samples
    are kept as a 16-bit WAV file."""

    kind = "audio"
    plural = "audio"

    def __init__(
        self, data_or_path: Any, sample_rate: int | None = None, caption: Any = None
    ) -> None:
        self.sample_rate = sample_rate
        if isinstance(data_or_path, (str, os.PathLike)):
            path = os.fspath(data_or_path)
            super().__init__(*read_media(path, AUDIO_FORMATS, "sound"), caption)
            return
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise InvalidInput(
                "forebear.Audio of samples needs their sample_rate, a whole number of samples "
                f"a second (sample_rate=44100), not {sample_rate!r:.40}"
            )
        super().__init__(_wav(data_or_path, sample_rate), "wav", caption)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sample_rate": self.sample_rate}


class Video(MediaFile):
    """W&B's ``wandb.Video(data_or_path, caption=None, fps=None, format=None)``: the path
    of a video file (``gif``, ``mp4``, ``webm``, ``ogg``), or frames as a numpy array (or a
    tensor) of time x channels x height x width (1, 3 or 4 channels; a batch of such is
    laid out side by side, as W&B lays it out), values cast to 0-255, shown at ``fps``
    frames a second (4 unless said). Frames are kept as an animated GIF (it needs
    Pillow): W&B's other formats need an encoder forebear does not carry, so give those as
    a file."""

    kind = "video"
    plural = "videos"

    def __init__(
        self,
        data_or_path: Any,
        caption: Any = None,
        fps: int | None = None,
        format: str | None = None,  # W&B's name
    ) -> None:
        self.fps = fps
        self.width: int | None = None
        self.height: int | None = None
        if isinstance(data_or_path, (str, os.PathLike)):
            path = os.fspath(data_or_path)
            super().__init__(*read_media(path, VIDEO_FORMATS, "video"), caption)
            return
        if format is not None and str(format).lower() != "gif":
            raise InvalidInput(
                f"forebear.Video makes GIF files of frames, not {format!r}: give "
                "format='gif', or write the video yourself and pass its path"
            )
        chosen = VIDEO_FPS if fps is None else fps
        if isinstance(chosen, bool) or not isinstance(chosen, (int, float)) or not chosen > 0:
            raise InvalidInput(f"fps is a number of frames a second, not {fps!r:.40}")
        data, self.width, self.height = _gif(data_or_path, float(chosen))
        self.fps = chosen
        super().__init__(data, "gif", caption)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "width": self.width, "height": self.height}


class Html(MediaFile):
    """W&B's ``wandb.Html(data, inject=True, data_is_not_path=False)``: a page, given as
    its text, as an open file, or as the path of an ``.html`` file (text that ends in
    ``.html`` is taken as a path, as in W&B, unless ``data_is_not_path``). It is kept as it is
    (W&B's ``inject`` adds W&B's own style sheet: nothing is added here)."""

    kind = "html"
    plural = "html"

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False) -> None:
        del inject
        if hasattr(data, "read"):
            text = data.read(MAX_BYTES + 1)  # a page larger than that is refused below
        elif isinstance(data, os.PathLike) or (
            isinstance(data, str) and not data_is_not_path and data.lower().endswith(".html")
        ):  # a path, as W&B takes it (data_is_not_path=True for text that ends so)
            super().__init__(read_media(os.fspath(data), ("html",), "page")[0], "html")
            return
        else:
            text = data
        if isinstance(text, str):
            text = text.encode()
        if not isinstance(text, bytes):
            raise InvalidInput(f"forebear.Html takes a page's text or file, not {data!r:.60}")
        if len(text) > MAX_BYTES:
            raise InvalidInput(f"the page is larger than {MAX_BYTES >> 20} MiB")
        super().__init__(text, "html")


def stored_media(
    kind: str, data: bytes, format: str, caption: str | None, described: dict[str, int | None]
) -> MediaFile | None:
    """A sound, video or page read back from a version (its bytes as kept, and what W&B's
    record says of it: ``sample_rate``, ``width``, ``height``); None for a format the
    kind does not have."""
    made: MediaFile
    if kind == "audio" and format in AUDIO_FORMATS:
        made = Audio.__new__(Audio)  # the constructors take a path or an array to encode
        made.sample_rate = described.get("sample_rate")
    elif kind == "video" and format in VIDEO_FORMATS:
        made = Video.__new__(Video)
        made.fps, made.width, made.height = None, described.get("width"), described.get("height")
    elif kind == "html" and format == "html":
        made = Html.__new__(Html)
    else:
        return None
    MediaFile.__init__(made, data, format, caption)
    return made


def read_media(path: str, formats: tuple[str, ...], what: str) -> tuple[bytes, str]:
    """The bytes and format (its name's ending) of a media file, one of ``formats``."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in formats:
        raise InvalidInput(
            f"{path!r} is not named as a {what} file: a {what} file is one of {', '.join(formats)}"
        )
    return read_capped(path, what), suffix


def _array(data: Any, what: str) -> Any:
    """``data`` (an array, a tensor, a list) as a numpy array of finite numbers."""
    try:
        import numpy as np
    except ImportError:
        raise InvalidInput(f"forebear.{what} of an array needs numpy: pip install numpy") from None
    if hasattr(data, "detach"):  # a PyTorch tensor, wherever it lives
        data = data.detach().cpu().numpy()
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"forebear.{what} takes a path or an array, not {data!r:.60}") from exc
    if array.dtype.kind not in "biuf" or array.size == 0:
        raise InvalidInput(
            f"forebear.{what} takes a path or an array of numbers, not a "
            f"{type(data).__name__} of {array.dtype} values and shape {array.shape}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput(f"forebear.{what}: the array holds NaN or infinite values")
    return array


def _wav(data: Any, sample_rate: int) -> bytes:
    """Samples as a 16-bit PCM WAV file."""
    import numpy as np

    samples = _array(data, "Audio")
    if samples.ndim not in (1, 2):
        raise InvalidInput(
            f"forebear.Audio takes one value per sample, or a row of one per channel, not an "
            f"array of shape {samples.shape}"
        )
    if samples.dtype.kind == "f":
        samples = np.rint(np.clip(samples, -1.0, 1.0) * 32767)
    elif samples.dtype != np.int16:
        raise InvalidInput(
            f"forebear.Audio takes floats from -1 to 1 or 16-bit integers, not {samples.dtype}"
        )
    frames = samples.astype("<i2")
    channels = 1 if frames.ndim == 1 else frames.shape[1]
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidInput(
            f"forebear.Audio takes a row per sample, with one value per channel (at most "
            f"{MAX_CHANNELS}), not {channels} channels: channels first? pass samples.T"
        )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(channels)
        sound.setsampwidth(2)
        sound.setframerate(sample_rate)
        sound.writeframes(frames.tobytes())
    return buffer.getvalue()


def _gif(data: Any, fps: float) -> tuple[bytes, int, int]:
    """Frames (time x channels x height x width, or a batch of such) as an animated GIF,
    with its width and height."""
    import numpy as np

    frames = _array(data, "Video")
    if frames.ndim == 5:  # a batch: its videos side by side, as W&B tiles them
        frames = np.concatenate(list(frames), axis=-1)
    if frames.ndim != 4 or frames.shape[1] not in (1, 3, 4):
        raise InvalidInput(
            "forebear.Video takes frames as time x channels x height x width (1, 3 or 4 "
            f"channels), not an array of shape {frames.shape}"
        )
    frames = np.clip(frames.astype(np.float64), 0, 255).astype(np.uint8)
    frames = np.moveaxis(frames, 1, -1)
    try:
        from PIL import Image as PILImage
    except ImportError:
        raise InvalidInput(
            "forebear.Video of frames needs Pillow (pip install pillow); or pass the path of "
            "a video file"
        ) from None
    gray = frames.shape[-1] == 1  # Pillow reads the mode from the shape: L, RGB or RGBA
    pictures = [PILImage.fromarray(frame[:, :, 0] if gray else frame) for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:],
        duration=max(1, round(1000 / fps)), loop=0,
    )  # fmt: skip
    height, width = frames.shape[1:3]
    return buffer.getvalue(), int(width), int(height)
