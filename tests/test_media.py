"""W&B's ``wandb.Image``: what a training script makes from an array, a file or a PIL image
is encoded once, and `run.log` keeps it with the run as a version of its own."""

from __future__ import annotations

import hashlib
import io
import json
import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import forebear


def pixels(data: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(data))


def test_an_array_becomes_a_png_scaled_as_w_and_b_scales_it() -> None:
    digit = np.zeros((28, 20))
    digit[4:24, 8:12] = 1.0  # floats from 0 to 1: scaled to 0-255
    image = forebear.Image(digit, caption="a one")
    assert (image.format, image.width, image.height, image.caption) == ("png", 20, 28, "a one")
    decoded = pixels(image.data)
    assert decoded.getpixel((9, 5)) == 255 and decoded.getpixel((0, 0)) == 0
    digit[:] = 0.5  # encoded when made: a later change does not reach it
    assert pixels(image.data).getpixel((9, 5)) == 255
    signed = forebear.Image(np.array([[-1.0, 0.0, 1.0]]))  # from -1 to 1
    assert [pixels(signed.data).getpixel((x, 0)) for x in range(3)] == [0, 128, 255]
    raw = forebear.Image(np.array([[0.0, 1.0]]), normalize=False)
    assert [pixels(raw.data).getpixel((x, 0)) for x in range(2)] == [0, 1]
    mask = forebear.Image(np.array([[0, 1, 300, -5]]))  # whole numbers: kept, clipped
    assert [pixels(mask.data).getpixel((x, 0)) for x in range(4)] == [0, 1, 255, 0]
    first = np.zeros((3, 8, 6), dtype=np.uint8)  # channels first, as tensors have them
    first[0] = 200
    rgb = forebear.Image(first)
    assert (rgb.width, rgb.height) == (6, 8) and pixels(rgb.data).getpixel((2, 2)) == (200, 0, 0)
    gray = forebear.Image(np.full((4, 4, 1), 7, dtype=np.uint8), mode="L")
    assert pixels(gray.data).mode == "L" and pixels(gray.data).getpixel((1, 1)) == 7
    jpeg = forebear.Image(first, file_type="jpg")
    assert jpeg.format == "jpeg" and jpeg.data[:2] == b"\xff\xd8"


def test_a_file_keeps_its_bytes_and_a_pil_image_is_encoded(tmp_path: Path) -> None:
    photo = tmp_path / "cat.jpg"
    PILImage.new("RGB", (5, 3), (10, 20, 30)).save(photo, format="JPEG")
    image = forebear.Image(photo)
    assert image.data == photo.read_bytes() and (image.format, image.width) == ("jpeg", 5)
    assert forebear.Image(image).data == image.data  # an Image of an Image: the same
    made = forebear.Image(PILImage.new("RGBA", (2, 2)), caption=3)
    assert pixels(made.data).size == (2, 2) and made.caption == "3"

    class Figure:  # what forebear asks of a matplotlib figure
        def savefig(self, target: io.BytesIO, format: str) -> None:
            PILImage.new("RGB", (9, 4)).save(target, format=format)

    assert (forebear.Image(Figure()).width, forebear.Image(Figure()).height) == (9, 4)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (np.zeros(5), "not a ndarray of shape (5,)"),
        (np.zeros((2, 2, 5)), "of shape (2, 2, 5)"),
        (np.array([[np.nan]]), "NaN or infinite"),
        (np.array([["a"]]), "of <U1 values"),
        (np.zeros((0, 3)), "values"),
        ({"not": "an image"}, "not a dict"),
        ("missing.png", "cannot read the image 'missing.png'"),
        ("notes.txt", "'notes.txt' is not named as an image file"),
    ],
)
def test_what_is_no_image_gets_one_clear_error(data: object, says: str) -> None:
    with pytest.raises(forebear.InvalidInput, match=f"{says.replace('(', '.').replace(')', '.')}"):
        forebear.Image(data)


def test_an_unknown_file_type_or_mode_is_refused() -> None:
    with pytest.raises(forebear.InvalidInput, match="file_type='tiff': an image is one of"):
        forebear.Image(np.zeros((2, 2)), file_type="tiff")
    for data in (np.zeros((2, 2, 3), dtype=np.uint8), PILImage.new("RGB", (2, 2))):
        with pytest.raises(forebear.InvalidInput, match="mode='nonsense' does not fit"):
            forebear.Image(data, mode="nonsense")


def test_logged_images_are_kept_with_the_run_step_by_step(store: forebear.Store) -> None:
    with forebear.init(project="p", name="samples", store=store) as run:
        batch = [
            forebear.Image(np.full((4, 4), i, dtype=np.uint8), caption=f"#{i}") for i in (1, 2)
        ]
        run.log({"examples": batch, "loss": 0.5})
        run.log({"examples": batch[:1], "best": forebear.Image(np.ones((2, 3)))})
        summary = dict(run.summary)
    first, second = store.versions(f"p/run-{run.id}-examples-images")
    assert first.files() == ["0_0.png", "0_1.png"] and second.files() == ["1_0.png"]
    assert (first.type, first.metadata, second.metadata) == ("run_media", {"step": 0}, {"step": 1})
    assert pixels(first.open("0_1.png").read()).getpixel((0, 0)) == 2
    assert summary["examples"] == {
        "_type": "images/separated", "artifact": second.qualified_ref, "format": "png",
        "count": 1, "paths": ["1_0.png"], "captions": ["#1"],
    }  # fmt: skip
    best = store.artifact(summary["best"]["artifact"])
    assert summary["best"] == {
        "_type": "image-file", "artifact": best.qualified_ref, "format": "png",
        "path": "1_0.png", "width": 3, "height": 2, "caption": None,
    }  # fmt: skip
    assert run.outputs == [first, second, best]  # the run logged them: lineage says so
    history = store.run(run.id).history()  # numbers only: no column for the images
    assert history == [{"step": 0, "loss": 0.5}]


def test_a_long_run_id_and_key_still_name_what_is_kept(store: forebear.Store) -> None:
    key = "validation-" + "k" * 120
    with forebear.init(project="p", id="r" * 64, store=store) as run:
        run.log({key: forebear.Image(np.zeros((2, 2))), f"{key}2": forebear.Table(data=[[1]])})
    names = sorted(v.name for v in run.outputs)
    assert [len(name) for name in names] == [128, 128]
    assert names[0].endswith("-images") and run.summary[f"{key}2"]["nrows"] == 1


def test_samples_become_a_wav_file_and_a_sound_file_keeps_its_bytes(tmp_path: Path) -> None:
    tone = np.sin(np.linspace(0, 2 * np.pi * 440, 8000))
    audio = forebear.Audio(tone, sample_rate=8000, caption="la")
    with wave.open(io.BytesIO(audio.data)) as sound:
        params = (sound.getnchannels(), sound.getsampwidth(), sound.getframerate())
        frames = np.frombuffer(sound.readframes(sound.getnframes()), dtype="<i2")
    assert params == (1, 2, 8000) and audio.suffix == "wav" and audio.caption == "la"
    assert np.abs(frames / 32767 - tone).max() < 1e-4  # floats from -1 to 1, kept to 16 bits
    stereo = forebear.Audio(np.array([[1, -1], [300, -300]], dtype=np.int16), sample_rate=2)
    with wave.open(io.BytesIO(stereo.data)) as sound:
        assert sound.getnchannels() == 2
        assert np.frombuffer(sound.readframes(2), "<i2").tolist() == [1, -1, 300, -300]
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3 not really a song")
    assert forebear.Audio(song).data == song.read_bytes() and forebear.Audio(song).suffix == "mp3"


def test_frames_become_an_animated_gif_and_a_page_is_kept_as_it_is(tmp_path: Path) -> None:
    frames = np.zeros((3, 3, 8, 10), dtype=np.uint8)  # time x channels x height x width
    frames[1, 0] = 255  # the second frame red
    video = forebear.Video(frames, fps=2, caption="clip")
    assert (video.width, video.height, video.suffix, video.fps) == (10, 8, "gif", 2)
    with PILImage.open(io.BytesIO(video.data)) as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 500
        gif.seek(1)
        assert gif.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    frames[:] = 7  # encoded when made
    batch = forebear.Video(np.zeros((2, 4, 1, 6, 5)))  # two videos side by side
    assert (batch.width, batch.height) == (10, 6)
    page = tmp_path / "report.html"
    page.write_text("<h1>done</h1>")
    assert forebear.Html(str(page)).data == forebear.Html(page).data == b"<h1>done</h1>"
    assert forebear.Html(io.StringIO("<p>x</p>")).data == b"<p>x</p>"
    assert forebear.Html("see.html", data_is_not_path=True).data == b"see.html"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: forebear.Audio(np.zeros(4)), "needs their sample_rate"),
        (lambda: forebear.Audio(np.zeros(4), sample_rate=0), "needs their sample_rate"),
        (lambda: forebear.Audio(np.zeros((2, 2, 2)), sample_rate=8), "not an array of shape"),
        (lambda: forebear.Audio(np.zeros((2, 800)), sample_rate=8), "not 800 channels"),
        (lambda: forebear.Audio(np.array([1], dtype=np.int32), sample_rate=8), "not int32"),
        (lambda: forebear.Audio(np.array([np.nan]), sample_rate=8), "NaN or infinite"),
        (lambda: forebear.Audio("notes.txt"), "'notes.txt' is not named as a sound file"),
        (lambda: forebear.Audio("missing.wav"), "cannot read the sound 'missing.wav'"),
        (lambda: forebear.Video(np.zeros((3, 8, 8))), "time x channels x height x width"),
        (lambda: forebear.Video(np.zeros((1, 3, 4, 4)), format="mp4"), "not 'mp4'"),
        (lambda: forebear.Video(np.zeros((1, 3, 4, 4)), fps=0), "fps is a number"),
        (lambda: forebear.Video(np.array([["a"]])), "array of numbers"),
        (lambda: forebear.Html(5), "takes a page's text or file"),
        (lambda: forebear.Html("missing.html"), "cannot read the page 'missing.html'"),
    ],
)
def test_what_is_no_sound_video_or_page_gets_one_clear_error(make: Any, says: str) -> None:
    with pytest.raises(forebear.InvalidInput, match=re.escape(says)):
        make()


def test_logged_sound_video_and_pages_are_kept_with_the_run(store: forebear.Store) -> None:
    audio = forebear.Audio(np.zeros(10), sample_rate=10, caption="quiet")
    video = forebear.Video(np.zeros((2, 3, 4, 4)))
    pages = [forebear.Html("<p>1</p>"), forebear.Html("<p>2</p>")]
    with forebear.init(project="p", name="media", store=store) as run:
        run.log({"sound": audio, "clip": video, "pages": pages, "loss": 0.5})
        summary = dict(run.summary)
    sound, clip, kept_pages = (
        store.artifact(summary[k]["artifact"]) for k in ("sound", "clip", "pages")
    )
    assert sound.name == f"run-{run.id}-sound-audio" and sound.metadata == {"step": 0}
    assert sound.open("0_0.wav").read() == audio.data and clip.files() == ["0_0.gif"]
    assert summary["sound"] == {
        "_type": "audio-file", "artifact": sound.qualified_ref, "path": "0_0.wav",
        "format": "wav", "size": len(audio.data), "caption": "quiet", "sample_rate": 10,
    }  # fmt: skip
    assert summary["clip"]["_type"] == "video-file" and summary["clip"]["width"] == 4
    assert summary["pages"] == {
        "_type": "html/separated", "artifact": kept_pages.qualified_ref, "count": 2,
        "paths": ["0_0.html", "0_1.html"], "captions": [None, None],
    }  # fmt: skip
    assert kept_pages.open("0_1.html").read() == b"<p>2</p>"
    assert store.run(run.id).history() == [{"step": 0, "loss": 0.5}]


def test_pictures_sound_and_histograms_in_table_cells_are_kept_as_w_and_b_keeps_them(
    store: forebear.Store,
) -> None:
    """A prediction table with a picture per row (W&B's most common table): each picture
    is a file of the table's version, named by its bytes, its cell W&B's record of it; a
    histogram's cell holds its record. `version.get` gives the pictures back."""
    cat, dog = forebear.Image(np.zeros((2, 2)), caption="cat"), forebear.Image(np.ones((3, 2)))
    sound = forebear.Audio(np.zeros(10), sample_rate=10)
    table = forebear.Table(columns=["image", "label", "sound", "h"])
    table.add_data(cat, "cat", sound, forebear.Histogram([1, 2, 2]))
    table.add_data(dog, "dog", None, None)
    table.add_data(forebear.Image(np.zeros((2, 2)), caption="cat"), "cat again", None, None)
    with forebear.init(project="p", store=store) as run:
        run.log({"predictions": table})
    (kept,) = [v for v in store.versions(f"run-{run.id}-predictions", project="p")]
    files = kept.files()
    assert len(files) == 4  # the table, two distinct pictures (the third is the first's bytes)
    body = json.loads(kept.open("predictions.table.json").read())
    first, second, third = (row[0] for row in body["data"])
    assert first["_type"] == "image-file" and first["path"].startswith("media/images/")
    assert first["sha256"] == hashlib.sha256(cat.data).hexdigest() and third == first
    assert (first["width"], first["height"], first["caption"]) == (2, 2, "cat")
    assert second["path"] != first["path"] and second["path"] in files
    assert kept.open(first["path"]).read() == cat.data
    recorded_sound = body["data"][0][2]
    assert recorded_sound["_type"] == "audio-file" and recorded_sound["sample_rate"] == 10
    assert kept.open(recorded_sound["path"]).read() == sound.data
    assert body["data"][0][3]["_type"] == "histogram"
    back = kept.get("predictions")
    assert back is not None
    pictures = back.get_column("image")
    assert [type(p) for p in pictures] == [forebear.Image] * 3
    assert pictures[0].data == cat.data and pictures[1].data == dog.data
    assert pictures[0].caption == "cat" and pictures[1].width == 2
    sound_back = back.data[0][2]  # other media too, from the file the record names
    assert isinstance(sound_back, forebear.Audio) and sound_back.data == sound.data
    assert (sound_back.sample_rate, sound_back.suffix) == (10, "wav")
    assert back.data[0][3]["_type"] == "histogram"  # a histogram: its record


def test_a_table_added_to_an_artifact_brings_its_pictures(
    store: forebear.Store, tmp_path: Path
) -> None:
    picture = forebear.Image(np.zeros((2, 2)))
    table = forebear.Table(columns=["image"], data=[[picture], [picture]])
    artifact = forebear.Artifact("samples", type="dataset")
    artifact.add(table, "samples")
    artifact.add(forebear.Table(columns=["image"], data=[[picture]]), "again")
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(artifact)
    (media,) = [f for f in version.files() if f.startswith("media/")]
    assert version.open(media).read() == picture.data
    assert version.get("again").get_column("image")[0].data == picture.data  # type: ignore[union-attr]


def test_pictures_sound_video_and_pages_added_to_an_artifact_come_back_as_they_were(
    store: forebear.Store,
) -> None:
    """W&B's ``artifact.add(wandb.Image(...), "sample")``: W&B's record of it in
    ``sample.image-file.json`` beside the picture's file, and ``get`` gives it back."""
    picture = forebear.Image(np.zeros((3, 2)), caption="empty")
    sound = forebear.Audio(np.zeros(10), sample_rate=10, caption="quiet")
    clip = forebear.Video(np.zeros((2, 3, 4, 5), dtype=np.uint8), fps=2)
    page = forebear.Html("<p>hello</p>")
    artifact = forebear.Artifact("samples", type="dataset")
    assert artifact.add(picture, "sample") == "sample.image-file.json"
    artifact.add(sound, "sound")
    artifact["clip"] = clip
    artifact.add(page, "pages/page")
    artifact.add(forebear.Image(np.zeros((3, 2)), caption="again"), "again")  # the same bytes
    with pytest.raises(forebear.InvalidInput, match="Table, Image, Audio, Video or Html"):
        artifact.add(forebear.Histogram([1, 2]), "h")  # type: ignore[arg-type]
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(artifact)
    files = version.files()
    assert {"sample.image-file.json", "sound.audio-file.json", "clip.video-file.json",
            "pages/page.html-file.json", "again.image-file.json"} <= set(files)  # fmt: skip
    assert len([f for f in files if f.startswith("media/images/")]) == 1
    record = json.loads(version.open("sample.image-file.json").read())
    assert record["_type"] == "image-file" and record["path"] in files
    assert (record["width"], record["height"], record["caption"]) == (2, 3, "empty")
    back = version.get("sample")
    assert isinstance(back, forebear.Image) and back.data == picture.data
    assert (back.caption, back.width, back.height) == ("empty", 2, 3)
    heard = version.get("sound")
    assert isinstance(heard, forebear.Audio) and heard.data == sound.data
    assert (heard.sample_rate, heard.caption) == (10, "quiet")
    seen = version.get("clip")
    assert isinstance(seen, forebear.Video) and seen.data == clip.data
    assert (seen.width, seen.height, seen.suffix) == (clip.width, clip.height, "gif")
    read = version["pages/page"]
    assert isinstance(read, forebear.Html) and read.data == b"<p>hello</p>"
    assert version.get("nothing") is None


def logged_beside_a_reference(
    store: forebear.Store, tmp_path: Path, artifact: forebear.Artifact
) -> forebear.ArtifactVersion:
    """``artifact`` logged with a reference to a picture outside the store, ``elsewhere.png``,
    which is then removed: were a read to fetch it, that read would fail."""
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(forebear.Image(np.zeros((2, 2))).data)
    artifact.add_reference(elsewhere.as_uri())
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(artifact)
    elsewhere.unlink()
    return version


def test_a_hostile_media_record_is_one_clear_error_and_nothing_is_fetched(
    store: forebear.Store, tmp_path: Path
) -> None:
    """Records written by hand: one naming a path outside the version, a reference, or a
    format its kind does not have, and one that is no record at all (a list, not JSON, or
    far too large) is each one clear error, and nothing is fetched."""
    artifact = forebear.Artifact("handmade", type="dataset")
    made = {
        "outside.image-file.json": {"path": "../../etc/passwd", "format": "png"},
        "ref.image-file.json": {"path": "elsewhere.png", "format": "png"},
        "odd.audio-file.json": {"path": "media/x.exe", "format": "exe"},
        "odder.image-file.json": {"path": "media/x.exe", "format": "exe"},
        "list.image-file.json": ["not", "a", "record"],
    }
    for name, body in made.items():
        with artifact.new_file(name) as file:
            json.dump(body, file)
    with artifact.new_file("media/x.exe") as file:
        file.write("MZ")
    with artifact.new_file("broken.html-file.json") as file:
        file.write('{"path": ')
    with artifact.new_file("big.video-file.json") as file:
        file.write('{"path": "' + "x" * (2 << 20) + '"}')
    version = logged_beside_a_reference(store, tmp_path, artifact)
    for name in ("outside", "ref", "odd", "odder"):
        with pytest.raises(forebear.InvalidInput, match=rf"{name}\..*names no media file"):
            version.get(name)
    with pytest.raises(forebear.InvalidInput, match=r"list\.image-file\.json is not a record"):
        version.get("list")
    with pytest.raises(forebear.InvalidInput, match=r"big\.video-file\.json is not a record"):
        version.get("big")
    with pytest.raises(forebear.InvalidInput, match=r"broken\.html-file\.json is not a record"):
        version.get("broken")


def test_a_table_whose_picture_records_name_no_picture_gives_the_records_back(
    store: forebear.Store, tmp_path: Path
) -> None:
    """A table written elsewhere (or by hand): a record naming a path outside the version,
    a file it lacks, or a reference is given back as it is, and nothing is fetched."""
    records = [
        {"_type": "image-file", "path": "../../etc/passwd", "format": "png"},
        {"_type": "image-file", "path": "media/images/missing.png", "format": "png"},
        {"_type": "image-file", "path": "elsewhere.png", "format": "png"},
    ]
    artifact = forebear.Artifact("handmade", type="dataset")
    with artifact.new_file("t.table.json") as file:
        json.dump({"_type": "table", "columns": ["image"], "data": [[r] for r in records]}, file)
    version = logged_beside_a_reference(store, tmp_path, artifact)
    table = version.get("t")
    assert table is not None and table.get_column("image") == records


def test_a_media_file_is_read_no_further_than_64_mib(tmp_path: Path) -> None:
    for name, make in (("big.png", forebear.Image), ("big.wav", forebear.Audio)):
        big = tmp_path / name
        with big.open("wb") as file:
            file.truncate((64 << 20) + 1)  # sparse: no disk spent
        with pytest.raises(forebear.InvalidInput, match=r"is larger than 64 MiB: keep it with"):
            make(big)
