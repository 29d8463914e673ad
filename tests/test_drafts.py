"""Drafts (``version.new_draft()``): a new version made from another by a few changes, in
time that follows the changes. What it holds must be exactly what logging the same files
from scratch would hold, and it keeps every promise of a log."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import forebear

TreeMaker = Callable[..., Path]
FILES = {
    "images/a.png": "a",
    "images/b.png": "b",
    "images/more/c.png": "c",
    "images/more/d.png": "d",
    "train.csv": "t",
}


def log(
    store: forebear.Store, what: Path | forebear.Artifact, name: str = "ds"
) -> forebear.ArtifactVersion:
    with forebear.init(project="p", name="writer", store=store) as run:
        return (
            run.log_artifact(what, name=name) if isinstance(what, Path) else run.log_artifact(what)
        )


def test_a_draft_holds_what_logging_the_same_files_would(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    v0 = log(store, make_tree("data", FILES))
    draft = v0.new_draft()
    assert len(draft) == 5
    draft.remove("train.csv")  # replaced
    with draft.new_file("train.csv") as f:
        f.write("new rows")
    draft.remove("images/more/")  # a folder, whole
    with draft.new_file("notes/readme.md") as f:  # added
        f.write("r")
    assert len(draft) == 4
    with pytest.raises(forebear.InvalidPath, match="remove it first"):
        draft.new_file("images/a.png").__enter__()
    with pytest.raises(forebear.NotFound):
        draft.remove("images/more/c.png")  # went with its folder
    with draft.new_file("images/more/e.png") as f:  # a removed folder takes new files
        f.write("e")
    v1 = log(store, draft)
    expected = {
        "images/a.png": "a", "images/b.png": "b", "images/more/e.png": "e",
        "notes/readme.md": "r", "train.csv": "new rows",
    }  # fmt: skip
    full = log(store, make_tree("same", expected), name="from-scratch")
    assert v1.digest == full.digest and v1.version == "v1"
    assert v1.files() == sorted(expected) and v1.file_count == 5
    assert v1.size == sum(len(text) for text in expected.values())
    assert v1.open("images/b.png").read() == b"b"
    assert v1.new_bytes == len("new rows") + 2  # only what the draft added was stored
    assert store.verify() == []

    again = v0.new_draft()  # the same changes again: the same version, not a new one
    for path in ("train.csv", "images/more/"):
        again.remove(path)
    for path, text in (("train.csv", "new rows"), ("notes/readme.md", "r"),
                       ("images/more/e.png", "e")):  # fmt: skip
        with again.new_file(path) as f:
            f.write(text)
    assert log(store, again) == v1
    assert [v.version for v in store.versions("ds")] == ["v0", "v1"]


def test_a_draft_that_only_removes_and_one_that_removes_everything(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    v0 = log(store, make_tree("data", FILES))
    draft = v0.new_draft()
    draft.remove("images/")
    only_train = log(store, draft)
    assert only_train.files() == ["train.csv"]
    assert only_train.digest == log(store, make_tree("t", {"train.csv": "t"}), "t").digest
    empty = only_train.new_draft()
    empty.remove("train.csv")
    assert len(empty) == 0
    with pytest.raises(forebear.InvalidInput, match="empty"):
        log(store, empty)
    assert [v.version for v in store.versions("ds")] == ["v0", "v1"]


def test_a_draft_of_a_deleted_version_waits_for_its_restore(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    v0 = log(store, make_tree("data", FILES))
    draft = v0.new_draft()
    with draft.new_file("extra.txt") as f:
        f.write("x")
    v0.delete()
    with pytest.raises(forebear.InvalidInput, match="restore it"):
        log(store, draft)
    assert store.versions("ds") == []  # nothing was committed
    store.restore("ds:v0")
    assert log(store, draft).files() == sorted([*FILES, "extra.txt"])
    assert store.verify() == []


def test_a_purged_file_is_not_in_a_draft(store: forebear.Store, make_tree: TreeMaker) -> None:
    v0 = log(store, make_tree("data", FILES))
    store.purge(v0.entry("train.csv").digest or "", reason="leaked personal data")
    with pytest.warns(forebear.ForebearWarning, match="1 purged files"):
        draft = v0.new_draft()
    assert len(draft) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v1 = log(store, draft)
    assert "train.csv" not in v1.files() and v1.redactions() == []
    assert store.verify() == []


def test_gc_between_the_draft_and_its_log_takes_nothing_it_needs(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    import datetime as dt

    v0 = log(store, make_tree("data", FILES))
    draft = v0.new_draft()
    draft.remove("train.csv")
    store.gc(grace=dt.timedelta(0))
    v1 = log(store, draft)
    assert v1.open("images/more/d.png").read() == b"d"
    store.gc(grace=dt.timedelta(0))
    assert store.verify() == []


def test_a_draft_is_logged_only_in_its_own_store(
    store: forebear.Store, make_tree: TreeMaker, tmp_path: Path
) -> None:
    other = forebear.open(tmp_path / "other-store")
    unrelated = log(other, make_tree("unrelated", {"secret.csv": "not yours"}), name="x")
    v0 = log(store, make_tree("data", FILES))
    assert unrelated.id == v0.id  # the same number in both catalogs: a trap
    draft = v0.new_draft()
    draft.remove("train.csv")
    with pytest.raises(forebear.InvalidInput, match="another store"):
        log(other, draft)
    assert [a.name for a in other.artifacts()] == ["x"]  # nothing was committed there
    with (
        forebear.init(project="p", store=store) as run,
        pytest.raises(forebear.InvalidInput, match="distributed"),
    ):
        run.upsert_artifact(draft, distributed_id="d1")
    # save() with no run: the next version of the same artifact, in its store and project
    v1 = draft.save()
    assert (v1.ref, v1.project, v1.files()) == ("ds:v1", "p", sorted(set(FILES) - {"train.csv"}))
    assert v1.logged_by().name == "save ds"
    with forebear.open(tmp_path / "other-store") as same:
        assert same.store_id == other.store_id != store.store_id
    again = v1.new_draft()
    with again.new_file("extra.txt") as f:
        f.write("x")
    with forebear.init(project="q", name="elsewhere", store=other):
        v2 = again.save()  # a run of another store is active: the draft still goes home
    assert (v2.ref, v2.project) == ("ds:v2", "p")
    assert [a.name for a in other.artifacts()] == ["x"] and store.verify() == []
    other.close()
