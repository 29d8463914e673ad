"""Hostile input through the Python API: unsafe entry paths, bad names, missing or linked
files, tampered destinations and corrupted objects. Each must fail with the documented
error at the documented moment, and never hand over bad data or write outside a root."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import forebear
from forebear.paths import normalise_entry_path

from .conftest import corrupt


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.txt"
    path.write_text("payload\n")
    return path


def log(
    store: forebear.Store, artifact: forebear.Artifact | Path, **kwargs: object
) -> forebear.ArtifactVersion:
    with forebear.init(name="hostile", store=store) as run:
        return run.log_artifact(artifact, **kwargs)  # type: ignore[arg-type]


# -- entry paths ----------------------------------------------------------------------------

UNSAFE_ENTRY_NAMES = [
    "..",
    "../x",
    "a/../../x",
    "a/..",
    "/etc/passwd",
    "//server/share",
    "C:\\x",
    "C:x",
    "c:/windows/system32",
    "..\\x",
    "a\\..\\..\\x",
    "\\\\server\\share",
    "\\x",
    "",
    ".",
    "./",
    "/",
    "a\x00b",
    "\x00",
]


@pytest.mark.parametrize("name", UNSAFE_ENTRY_NAMES)
def test_unsafe_entry_name_is_refused_by_add_file(name: str, source: Path) -> None:
    artifact = forebear.Artifact("hostile")
    with pytest.raises(forebear.InvalidPath):
        artifact.add_file(source, name=name)
    assert len(artifact) == 0


def test_a_name_that_windows_reads_as_a_drive_says_so(source: Path) -> None:
    """``a:b`` is a fine name here, and a path on drive A: there: refused, saying why."""
    with pytest.raises(forebear.InvalidPath, match=r"begins with a drive \('a:'\).*Windows"):
        forebear.Artifact("hostile").add_file(source, name="a:b")
    forebear.Artifact("fine").add_file(source, name="at 10:30.json")  # a colon further on


@pytest.mark.parametrize("name", ["../escape", "/abs", "C:\\x", "..\\x"])
def test_unsafe_folder_prefix_is_refused_by_add_dir(
    name: str, make_tree: Callable[..., Path]
) -> None:
    folder = make_tree("folder", {"a.txt": "a"})
    artifact = forebear.Artifact("hostile")
    with pytest.raises(forebear.InvalidPath):
        artifact.add_dir(folder, name=name)
    assert len(artifact) == 0


def test_safe_entry_names_are_normalised(source: Path) -> None:
    artifact = forebear.Artifact("fine")
    assert artifact.add_file(source, name="./a//b/./c.txt") == "a/b/c.txt"
    assert artifact.add_file(source, name="win\\style.txt") == "win/style.txt"
    assert artifact.add_file(source, name="..hidden") == "..hidden"
    with pytest.raises(forebear.InvalidPath):  # same entry twice, spelled differently
        artifact.add_file(source, name="a/b/c.txt/")


PATH_ALPHABET = st.sampled_from(["a", "b", ".", "..", "/", "\\", ":", "C", "c", "\x00", " ", "~"])


@given(st.one_of(st.lists(PATH_ALPHABET, max_size=12).map("".join), st.text(max_size=20)))
@example("./a:")  # a drive letter once the "./" is dropped
@example(".\\C:\\x")
def test_normalised_entry_paths_stay_inside_the_root(raw: str) -> None:
    try:
        path = normalise_entry_path(raw)
    except forebear.InvalidPath:
        return
    assert path
    assert not path.startswith("/")
    assert "\\" not in path
    assert "\x00" not in path
    assert not (len(path) >= 2 and path[1] == ":" and path[0].isalpha())
    parts = path.split("/")
    assert "" not in parts
    assert ".." not in parts
    assert "." not in parts
    root = "/srv/download-root"
    joined = posixpath.normpath(posixpath.join(root, path))
    assert joined.startswith(root + "/")
    assert normalise_entry_path(path) == path  # already canonical


# -- names ----------------------------------------------------------------------------------

BAD_NAMES = [
    "",
    "../x",
    "-bad",
    ".hidden",
    "_x",
    "a/b",
    "a b",
    "a:b",
    "a\x00",
    "name\n",
    "x" * 128 + "\n",
    "x" * 129,
]


def name_id(name: object) -> str:
    text = str(name)
    return f"{text[:3]}...len{len(text)}{text[-1]!r}" if len(text) > 20 else repr(text)


@pytest.mark.parametrize("name", BAD_NAMES, ids=name_id)
def test_bad_artifact_name_fails_at_once(name: str) -> None:
    with pytest.raises(forebear.InvalidName):
        forebear.Artifact(name)


# "" is not tested here: like None it means the default project
@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n], ids=name_id)
def test_bad_project_name_fails_at_once(name: str, store: forebear.Store) -> None:
    with pytest.raises(forebear.InvalidName):
        forebear.init(project=name, store=store)
    assert store.runs() == []
    assert forebear.runs.active_run() is None


@pytest.mark.parametrize("alias", [*BAD_NAMES, "v2", "v0", "v10"], ids=name_id)
def test_bad_alias_fails_at_once(alias: str, store: forebear.Store, source: Path) -> None:
    version = log(store, source, name="thing")
    with pytest.raises(forebear.InvalidName):
        version.add_alias(alias)
    assert version.aliases == ["latest"]


def test_bad_alias_given_to_log_artifact_logs_nothing(store: forebear.Store, source: Path) -> None:
    with forebear.init(store=store) as run, pytest.raises(forebear.InvalidName):
        run.log_artifact(source, name="thing", aliases=["v3"])
    assert store.artifacts() == []


def test_names_of_128_characters_are_accepted(store: forebear.Store, source: Path) -> None:
    name = "n" * 128
    assert forebear.Artifact(name).name == name
    with forebear.init(project="p" * 128, store=store) as run:
        version = run.log_artifact(source, name=name)
    version.add_alias("a" * 128)
    found = store.artifact(f"{'p' * 128}/{name}:{'a' * 128}")
    assert found == version
    assert found.project == "p" * 128


# -- refs ------------------------------------------------------------------------------------


def test_unknown_artifact_names_the_artifact(store: forebear.Store, source: Path) -> None:
    log(store, source, name="present")
    with pytest.raises(forebear.ArtifactNotFound, match="absent"):
        store.artifact("absent")
    with pytest.raises(forebear.ArtifactNotFound, match="absent"):
        store.artifact("default/absent:v0")
    with pytest.raises(forebear.ArtifactNotFound, match="present"):
        store.artifact("elsewhere/present")


def test_unknown_version_lists_the_existing_ones(store: forebear.Store, source: Path) -> None:
    log(store, source, name="thing")
    source.write_text("changed\n")
    log(store, source, name="thing")
    with pytest.raises(forebear.VersionNotFound) as caught:
        store.artifact("thing:v9")
    message = str(caught.value)
    assert "v9" in message
    assert "v0" in message
    assert "v1" in message
    with pytest.raises(forebear.VersionNotFound, match="nightly"):
        store.artifact("thing:nightly")
    with pytest.raises(forebear.VersionNotFound, match="no version thing:v9999"):
        store.artifact("thing:v" + "9" * 5000)  # more digits than Python converts


@pytest.mark.parametrize(
    "ref",
    [
        "a:b:c",
        "",
        "   ",
        "/thing",
        "o/p/q/r",
        "/q/r",
        "p//r",
        "-x",
        "thing:-x",
        "thing:",
        "p/thing: ",
    ],
)
def test_malformed_refs_are_invalid_input(ref: str, store: forebear.Store, source: Path) -> None:
    log(store, source, name="thing")
    with pytest.raises(forebear.InvalidInput):
        store.artifact(ref)


def test_same_name_in_two_projects_needs_the_project(store: forebear.Store, source: Path) -> None:
    with forebear.init(project="alpha", store=store) as run:
        in_alpha = run.log_artifact(source, name="shared")
    source.write_text("beta's content\n")
    with forebear.init(project="beta", store=store) as run:
        in_beta = run.log_artifact(source, name="shared")

    with pytest.raises(forebear.ArtifactNotFound) as caught:
        store.artifact("shared")
    assert "alpha/shared" in str(caught.value)
    assert "beta/shared" in str(caught.value)

    assert store.artifact("alpha/shared") == in_alpha
    assert store.artifact("beta/shared:v0") == in_beta
    assert store.artifact("beta/shared").open("source.txt").read() == b"beta's content\n"
    # inside a run, a bare name resolves in the run's own project
    with forebear.init(project="beta", store=store) as run:
        assert run.use_artifact("shared") == in_beta


# -- missing and wrong-kind paths -----------------------------------------------------------


def test_missing_or_wrong_kind_paths_fail_at_call_time(
    tmp_path: Path, source: Path, store: forebear.Store
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    artifact = forebear.Artifact("thing")
    with pytest.raises(forebear.InvalidPath, match=re.escape("missing.txt")):
        artifact.add_file(tmp_path / "missing.txt")
    with pytest.raises(forebear.InvalidPath, match="missing-folder"):
        artifact.add_dir(tmp_path / "missing-folder")
    with pytest.raises(forebear.InvalidPath):
        artifact.add_file(folder)
    with pytest.raises(forebear.InvalidPath):
        artifact.add_dir(source)
    assert len(artifact) == 0

    with forebear.init(store=store) as run:
        with pytest.raises(forebear.InvalidPath, match="nowhere"):
            run.log_artifact(tmp_path / "nowhere", name="thing")
        with pytest.raises(forebear.InvalidInput, match="empty"):
            run.log_artifact(forebear.Artifact("empty-one"))
    assert store.artifacts() == []


# -- symlinks in a logged folder ------------------------------------------------------------


def test_symlink_inside_the_folder_is_followed(
    make_tree: Callable[..., Path], store: forebear.Store
) -> None:
    folder = make_tree("folder", {"real.txt": "real content\n", "sub/deep.txt": "deep\n"})
    (folder / "link.txt").symlink_to("real.txt")
    (folder / "linked-sub").symlink_to("sub", target_is_directory=True)
    version = log(store, folder, name="linked")
    assert version.files() == ["link.txt", "linked-sub/deep.txt", "real.txt", "sub/deep.txt"]
    assert version.open("link.txt").read() == b"real content\n"
    assert version.open("linked-sub/deep.txt").read() == b"deep\n"


def test_symlink_pointing_outside_is_refused_unless_allowed(
    make_tree: Callable[..., Path], tmp_path: Path, store: forebear.Store
) -> None:
    folder = make_tree("folder", {"a.txt": "a\n"})
    secret = tmp_path / "secret.txt"
    secret.write_text("outside\n")
    (folder / "leak.txt").symlink_to(secret)

    with pytest.raises(forebear.InvalidPath, match=re.escape("leak.txt")):
        forebear.Artifact("folder").add_dir(folder)
    with forebear.init(store=store) as run, pytest.raises(forebear.InvalidPath, match="leak"):
        run.log_artifact(folder, name="folder")
    assert store.artifacts() == []

    artifact = forebear.Artifact("folder")
    assert artifact.add_dir(folder, follow_outside_symlinks=True) == ["a.txt", "leak.txt"]
    version = log(store, artifact)
    assert version.open("leak.txt").read() == b"outside\n"


def test_symlinked_folder_pointing_outside_is_refused(
    make_tree: Callable[..., Path], store: forebear.Store
) -> None:
    folder = make_tree("folder", {"a.txt": "a\n"})
    outside = make_tree("outside", {"private.txt": "private\n"})
    (folder / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(forebear.InvalidPath, match="escape"):
        forebear.Artifact("folder").add_dir(folder)


def test_broken_symlink_is_refused(make_tree: Callable[..., Path]) -> None:
    folder = make_tree("folder", {"a.txt": "a\n"})
    (folder / "dangling.txt").symlink_to(folder / "gone.txt")
    with pytest.raises(forebear.InvalidPath, match=re.escape("dangling.txt")):
        forebear.Artifact("folder").add_dir(folder)
    with pytest.raises(forebear.InvalidPath):
        forebear.Artifact("folder").add_dir(folder, follow_outside_symlinks=True)


# -- download safety ------------------------------------------------------------------------


@pytest.fixture
def nested(make_tree: Callable[..., Path], store: forebear.Store) -> forebear.ArtifactVersion:
    folder = make_tree(
        "nested", {"a.txt": "alpha\n", "sub/x.txt": "ex\n", "sub/deep/y.txt": "why\n"}
    )
    return log(store, folder, name="nested")


def test_download_refuses_a_symlinked_subfolder_leading_outside(
    nested: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)

    with pytest.raises(forebear.InvalidPath, match="sub"):
        nested.download(dest)
    # nothing at all was created through the link: no file, no folder
    assert sorted(p.name for p in outside.rglob("*")) == []
    assert (dest / "sub").is_symlink()


def test_download_repairs_a_tampered_copy(nested: forebear.ArtifactVersion, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    assert nested.download(dest) == dest.resolve()
    (dest / "a.txt").write_text("ALPHA\n")  # same size, different bytes
    (dest / "sub" / "x.txt").write_text("tampered and longer\n")
    nested.download(dest)
    assert (dest / "a.txt").read_text() == "alpha\n"
    assert (dest / "sub" / "x.txt").read_text() == "ex\n"
    assert (dest / "sub" / "deep" / "y.txt").read_text() == "why\n"


@pytest.mark.parametrize("target_content", ["do not touch\n", "alpha\n"])
def test_download_replaces_a_symlink_at_an_entry_and_spares_its_target(
    target_content: str, nested: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    # even a link to a file holding exactly the right bytes is replaced: the destination
    # must end up holding its own copy, not a pointer somewhere else
    outside = tmp_path / "outside.txt"
    outside.write_text(target_content)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").symlink_to(outside)

    nested.download(dest)
    assert not (dest / "a.txt").is_symlink()
    assert (dest / "a.txt").is_file()
    assert (dest / "a.txt").read_text() == "alpha\n"
    assert outside.read_text() == target_content


def test_download_replaces_a_dangling_symlink_at_an_entry(
    nested: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").symlink_to(tmp_path / "nowhere.txt")
    nested.download(dest)
    assert not (dest / "a.txt").is_symlink() and (dest / "a.txt").read_text() == "alpha\n"
    assert not (tmp_path / "nowhere.txt").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "sub"]  # no temporary file


def test_download_refuses_a_folder_at_an_entrys_name_and_keeps_it(
    nested: forebear.ArtifactVersion, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    (dest / "a.txt").mkdir(parents=True)
    (dest / "a.txt" / "kept").write_text("mine\n")
    with pytest.raises(forebear.InvalidPath, match="is a folder; move it away"):
        nested.download(dest)
    assert (dest / "a.txt" / "kept").read_text() == "mine\n"
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []


# -- corrupted and missing objects ----------------------------------------------------------


@pytest.fixture
def pair(make_tree: Callable[..., Path], store: forebear.Store) -> forebear.ArtifactVersion:
    folder = make_tree("pair", {"good.txt": "good bytes\n", "bad.txt": "fine for now\n"})
    return log(store, folder, name="pair")


def test_corrupted_object_is_never_handed_over(
    pair: forebear.ArtifactVersion, store: forebear.Store, tmp_path: Path
) -> None:
    corrupt(store, pair.entry("bad.txt").digest or "", b"FINE FOR NOW\n")  # same size

    dest = tmp_path / "fresh"
    with pytest.raises(forebear.IntegrityError, match=re.escape("bad.txt")):
        pair.download(dest)
    leftovers = [p.name for p in dest.iterdir() if p.name.startswith("bad.txt")]
    assert leftovers == []

    with pytest.raises(forebear.IntegrityError), pair.open("bad.txt") as stream:
        stream.read()
    assert pair.open("good.txt").read() == b"good bytes\n"

    with pytest.raises(forebear.IntegrityError) as caught:
        pair.verify()
    assert [(p.ref, p.path) for p in caught.value.problems] == [("pair:v0", "bad.txt")]
    assert "bad.txt" in str(caught.value)

    problems = store.verify()
    assert [(p.ref, p.path) for p in problems] == [("pair:v0", "bad.txt")]
    assert store.verify("pair:v0") == problems


def test_corrupted_object_is_not_trusted_from_a_warm_cache(
    pair: forebear.ArtifactVersion, store: forebear.Store
) -> None:
    cached = pair.download()
    assert (cached / "bad.txt").read_text() == "fine for now\n"
    (cached / "bad.txt").write_text("FINE FOR NOW\n")
    assert pair.download() == cached
    assert (cached / "bad.txt").read_text() == "fine for now\n"


def test_deleted_object_names_the_entry(
    make_tree: Callable[..., Path], loose_store: forebear.Store, tmp_path: Path
) -> None:
    store = loose_store  # each object a file of its own (a pack lost: tests/test_packs.py)
    folder = make_tree("pair", {"good.txt": "good bytes\n", "bad.txt": "fine for now\n"})
    pair = log(store, folder, name="pair")
    store.objects.fs.rm_file(store.objects.path_of(pair.entry("bad.txt").digest or ""))
    dest = tmp_path / "fresh"
    with pytest.raises(forebear.ForebearError) as caught:
        pair.download(dest)
    assert isinstance(caught.value, forebear.ObjectNotFound)
    assert "bad.txt" in str(caught.value)
    assert not (dest / "bad.txt").exists()
    problems = store.verify()
    assert [(p.ref, p.path) for p in problems] == [("pair:v0", "bad.txt")]
    assert "missing" in problems[0].message


# -- run state ------------------------------------------------------------------------------


def test_logging_after_the_run_finished_is_refused(store: forebear.Store, source: Path) -> None:
    with forebear.init(store=store) as run:
        pass
    assert run.status == "finished"
    with pytest.raises(forebear.RunStateError):
        run.log_artifact(source, name="late")
    with pytest.raises(forebear.RunStateError):
        run.use_artifact("anything")
    assert store.artifacts() == []


def test_module_level_calls_need_an_active_run(source: Path) -> None:
    with pytest.raises(forebear.RunStateError):
        forebear.log_artifact(source, name="orphan")
    with pytest.raises(forebear.RunStateError):
        forebear.use_artifact("orphan")
    with pytest.raises(forebear.RunStateError):
        forebear.log({"accuracy": 1.0})


# -- metadata and types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {"score": math.nan},
        {"score": math.inf},
        {"nested": {"deeper": [1, -math.inf]}},
        {"thing": object()},
        {"when": {1, 2}},
        {"raw": b"bytes"},
    ],
)
def test_metadata_must_be_finite_json(
    metadata: dict[str, object], store: forebear.Store, source: Path
) -> None:
    with pytest.raises(forebear.InvalidInput):
        forebear.Artifact("thing", metadata=metadata)
    with forebear.init(store=store) as run, pytest.raises(forebear.InvalidInput):
        run.log_artifact(source, name="thing", metadata=metadata)
    assert store.artifacts() == []


def test_a_config_must_be_finite_and_a_diverged_metric_goes_on(store: forebear.Store) -> None:
    with pytest.raises(forebear.InvalidInput):
        forebear.init(config={"lr": math.nan}, store=store)
    with forebear.init(store=store) as run:
        run.define_metric("loss", summary="min")
        run.log({"loss": 0.5, "acc": 0.1})
        run.log({"loss": math.nan, "acc": math.inf, "grad": {"norm": -math.inf}})  # diverged
        run.log({"loss": 0.25, "acc": 0.2})
        run.summary["best"] = math.nan
        with pytest.raises(forebear.InvalidInput, match="JSON-serialisable"):
            run.log({"pair": {(1, 2): 0.5}})  # a key JSON cannot name: one clear error
    kept = store.run(run.id)
    assert kept.summary["acc"] == 0.2 and kept.summary["loss"] == {"min": 0.25}
    assert kept.summary["grad"] == {"norm": "-Infinity"} and kept.summary["best"] == "NaN"
    # the history leaves them out, as a chart's gap: step 1 holds nothing
    assert kept.history() == [
        {"step": 0, "loss": 0.5, "acc": 0.1},
        {"step": 2, "loss": 0.25, "acc": 0.2},
    ]


def test_logging_with_another_type_is_refused(store: forebear.Store, source: Path) -> None:
    first = log(store, source, name="thing", type="dataset")
    source.write_text("now a model\n")
    with forebear.init(store=store) as run:
        model = forebear.Artifact("thing", type="model")
        model.add_file(source)
        with pytest.raises(forebear.InvalidInput) as caught:
            run.log_artifact(model)
        assert "dataset" in str(caught.value)
        assert "model" in str(caught.value)
        artifact = forebear.Artifact("thing", type="dataset")
        artifact.add_file(source)
        with pytest.raises(forebear.InvalidInput, match="model"):
            run.log_artifact(artifact, type="model")
    assert [v.ref for v in store.versions("thing")] == [first.ref]
    assert store.artifact("thing").type == "dataset"


NUL = "a\x00b"


def test_a_nul_character_is_refused_wherever_text_comes_in(
    store: forebear.Store, source: Path
) -> None:
    """PostgreSQL stores no NUL character, in a column or in JSON: every backend refuses
    one where a run's name, notes, tags, config, summary or metric names, or a version's
    description or metadata come in, and records nothing of the call."""
    for begin in (
        lambda: forebear.init(project="p", name=NUL, store=store),
        lambda: forebear.init(project="p", notes=NUL, store=store),
        lambda: forebear.init(project="p", tags=[NUL], store=store),
        lambda: forebear.init(project="p", config={"k": NUL}, store=store),
        lambda: forebear.init(project="p", config={NUL: 1}, store=store),
    ):
        with pytest.raises(forebear.InvalidInput, match="NUL"):
            begin()
    assert store.runs() == []
    with forebear.init(project="p", store=store) as run:
        for change in (
            lambda: run.log({NUL: 1.0}),
            lambda: run.summary.update({"k": NUL}),
            lambda: run.config.update({"k": [NUL]}),
            lambda: forebear.Artifact("doc", description=NUL),
            lambda: forebear.Artifact("doc", metadata={"k": NUL}),
        ):
            with pytest.raises(forebear.InvalidInput, match="NUL"):
                change()
        run.log_artifact(source, name="doc")
    read = store.run(run.id)
    with pytest.raises(forebear.InvalidInput, match="NUL"):
        read.notes = NUL
    read.name = NUL
    with pytest.raises(forebear.InvalidInput, match="NUL"):
        read.update()
    kept = store.run(run.id)
    assert (kept.config, kept.summary, kept.history(), kept.notes) == ({}, {}, [], None)
    assert kept.name == run.name
