"""The lifecycle of versions: edits saved together, tags, soft deletion and restoring,
retention and TTL applied by prune, gc purging what was deleted, which versions hold some
bytes, purges, and the audit trail; on SQLite + a folder and on PostgreSQL + S3."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import random
import shutil
import socket
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import forebear
from forebear.hashing import hash_bytes

from .conftest import cli_error, cli_ok, objects_behind, stored_digests

DAY = dt.timedelta(days=1)
NOW = dt.timedelta(0)
TreeMaker = Callable[..., Path]


def log(
    store: forebear.Store, path: Path, name: str, **options: object
) -> forebear.ArtifactVersion:
    with forebear.init(project="p", name=f"log-{name}", store=store) as run:
        return run.log_artifact(path, name=name, **options)  # type: ignore[arg-type]


def versions_of(store: forebear.Store, name: str, **options: object) -> list[str]:
    return [v.version for v in store.versions(name, **options)]  # type: ignore[arg-type]


# -- edits ------------------------------------------------------------------------------


def test_edits_persist_only_on_save_in_one_transaction(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    v0 = log(store, make_tree("d", {"a.txt": "a"}), "ds", aliases=["best"])
    digest, files = v0.digest, v0.files()
    v0.description = "retrained"
    v0.metadata["owner"] = "ml-team"
    v0.tags = ["baseline"]
    v0.aliases.append("candidate")
    v0.ttl = dt.timedelta(days=30)
    before = store.artifact("ds:v0")  # another reader sees nothing yet
    assert (before.description, before.metadata, before.tags) == (None, {}, [])
    assert sorted(before.aliases) == ["best", "latest"]
    v0.save()
    after = store.artifact("ds:v0")
    assert after.description == "retrained"
    assert after.metadata == {"owner": "ml-team"}
    assert after.tags == ["baseline"]
    assert sorted(after.aliases) == ["best", "candidate", "latest"]
    assert after.ttl == dt.timedelta(days=30)
    assert (after.digest, after.files()) == (digest, files)  # the content never changes
    edits = [e for e in store.audit("ds:v0") if e.action == "edit"]
    assert len(edits) == 1 and set(edits[0].details) == {
        "description", "metadata", "tags", "aliases", "expires_at",
    }  # fmt: skip
    v0.save()  # nothing changed since: nothing written
    assert len([e for e in store.audit("ds:v0") if e.action == "edit"]) == 1


def test_containers_are_live_until_saved_and_fresh_otherwise(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    data = make_tree("d", {"a.txt": "a"})
    v0 = log(store, data, "ds")
    assert v0.aliases == ["latest"]
    (data / "a.txt").write_text("b")
    log(store, data, "ds")
    assert v0.aliases == []  # not edited: read again, and latest has moved on
    v0.aliases.append("best")
    assert v0.aliases == ["best"]  # edited: the same container until saved
    v0.save()
    v1 = store.artifact("ds:v1")
    v1.aliases.append("best")  # an alias added by edit moves like add_alias
    v1.save()
    assert store.artifact("ds:best").version == "v1"
    assert store.artifact("ds:v0").aliases == []
    moves = [m for m in store.alias_history("ds") if m["alias"] == "best"]
    assert [(m["version"], m["previous"]) for m in moves] == [("v0", None), ("v1", "v0")]


def test_bad_edits_are_refused_and_change_nothing(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    v0 = log(store, make_tree("d", {"a.txt": "a"}), "ds")
    v0.aliases.remove("latest")
    with pytest.raises(forebear.InvalidInput, match="'latest' is kept"):
        v0.save()
    fresh = store.artifact("ds:v0")
    fresh.tags = ["v3"]
    with pytest.raises(forebear.InvalidName, match="looks like a version"):
        fresh.save()
    fresh.tags = ["ok"]
    fresh.metadata["x"] = float("nan")
    with pytest.raises(forebear.InvalidInput, match="finite"):
        fresh.save()
    for bad in (dt.timedelta(0), -DAY, 30, "30d", DAY * 10**8):  # the last past year 9999
        with pytest.raises(forebear.InvalidInput, match="ttl"):
            fresh.ttl = bad  # type: ignore[assignment]
    draft = forebear.Artifact("ds")
    for wrong in (5, {"a": 1}):  # a dict reached the catalog as a misleading StoreError
        with pytest.raises(forebear.InvalidInput, match="description must be text"):
            forebear.Artifact("ds", description=wrong)  # type: ignore[arg-type]
        with pytest.raises(forebear.InvalidInput, match="description must be text"):
            draft.description = wrong  # type: ignore[assignment]
    with pytest.raises(forebear.InvalidInput, match="list of names"):
        fresh.tags = "baseline"  # type: ignore[assignment]
    again = store.artifact("ds:v0")
    assert (again.tags, again.metadata, again.aliases) == ([], {}, ["latest"])


def test_tags_filter_listings(store: forebear.Store, make_tree: TreeMaker) -> None:
    data = make_tree("d", {"a.txt": "a"})
    log(store, data, "ds", tags=["baseline", "cv"])
    (data / "a.txt").write_text("b")
    log(store, data, "ds", tags=["cv"])
    log(store, make_tree("m", {"w.bin": "w"}), "model", tags=["baseline"])
    tagged = store.artifacts(tags=["baseline"])
    assert [(v.name, v.version) for v in tagged] == [("ds", "v0"), ("model", "v0")]
    assert [(v.name, v.version) for v in store.artifacts(tags=["cv"])] == [("ds", "v1")]
    assert store.artifacts(tags=["baseline", "cv"])[0].version == "v0"
    assert versions_of(store, "ds", tags=["cv"]) == ["v0", "v1"]
    assert store.artifacts(tags=["nothing"]) == []
    with pytest.raises(forebear.InvalidName):
        store.artifacts(tags=["bad tag!"])


# -- deletion -------------------------------------------------------------------------------


def test_a_deleted_version_is_hidden_explained_and_restorable(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    data = make_tree("d", {"a.txt": "a"})
    for text in ("a", "b", "c"):
        (data / "a.txt").write_text(text)
        log(store, data, "ds")
    store.artifact("ds:v2").delete()
    assert store.artifact("ds").version == "v1"  # latest moved back
    assert versions_of(store, "ds") == ["v0", "v1"]
    assert versions_of(store, "ds", include_deleted=True) == ["v0", "v1", "v2"]
    with pytest.raises(forebear.VersionNotFound) as caught:
        store.artifact("ds:v2")
    message = str(caught.value)
    assert "deleted by" in message and store.backend.actor in message
    assert "forebear restore" in message
    (data / "a.txt").write_text("d")
    assert log(store, data, "ds").version == "v3"  # numbers are never reused
    restored = store.restore("ds:v2")
    assert restored.version == "v2" and not restored.deleted
    assert store.artifact("ds").version == "v3"  # latest stays on the newest


def test_the_same_content_after_a_deletion_is_a_new_version(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    data = make_tree("d", {"a.txt": "a"})
    v0 = log(store, data, "ds")
    v0.delete()
    v1 = log(store, data, "ds")
    assert v1.version == "v1" and v1.digest == v0.digest
    with pytest.raises(forebear.InvalidInput, match="same content as v1"):
        store.restore("ds:v0")


def test_deleting_the_only_version_empties_listings_but_not_lineage(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    raw = log(store, make_tree("d", {"a.txt": "a"}), "raw")
    with forebear.init(project="p", name="train", store=store) as run:
        run.use_artifact("raw")
        model = run.log_artifact(make_tree("m", {"w.bin": "w"}), name="model", type="model")
    raw.delete()
    assert [v.name for v in store.artifacts()] == ["model"]
    assert [v.name for v in store.artifacts(include_deleted=True)] == ["model", "raw"]
    with pytest.raises(forebear.VersionNotFound, match="no live version"):
        store.artifact("raw")
    store.delete_run(model.producer.id)  # type: ignore[union-attr]
    graph = store.lineage(model).graph
    assert graph.nodes["p/raw:v0"]["deleted"] is True
    runs = [d for _, d in graph.nodes(data=True) if d["kind"] == "run"]
    assert sorted((r["name"], r["deleted"]) for r in runs) == [
        ("log-raw", False),
        ("train", True),
    ]
    assert graph.number_of_edges() == 3  # no edge lost
    assert [v.ref for v in model.upstream()] == ["raw:v0"]
    assert model.upstream()[0].deleted
    assert "[deleted]" in store.lineage(model).to_text()
    assert [r.name for r in store.runs()] == ["log-raw"]
    assert {r.name for r in store.runs(include_deleted=True)} == {"log-raw", "train"}


def test_user_aliases_block_deletion_unless_asked(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    v0 = log(store, make_tree("d", {"a.txt": "a"}), "ds", aliases=["prod"])
    with pytest.raises(forebear.InvalidInput, match="aliases prod"):
        v0.delete()
    assert not store.artifact("ds:v0").deleted
    v0.delete(delete_aliases=True)
    with pytest.raises(forebear.VersionNotFound):
        store.artifact("ds:prod")
    with pytest.raises(forebear.InvalidInput, match="is deleted"):
        v0.description = "x"
        v0.save()
    with pytest.raises(forebear.InvalidInput, match="deleted already"):
        v0.delete()


def test_delete_run_with_its_outputs(store: forebear.Store, make_tree: TreeMaker) -> None:
    with forebear.init(project="p", name="bad", store=store) as run:
        run.log_artifact(make_tree("a", {"a.txt": "a"}), name="a", aliases=["best"])
        run.log_artifact(make_tree("b", {"b.txt": "b"}), name="b")
    deleted = store.delete_run(run.id, delete_outputs=True)
    assert deleted == ["p/a:v0", "p/b:v0"]
    assert store.artifacts() == []
    assert store.run(run.id).deleted
    with pytest.raises(forebear.RunNotFound):
        store.delete_run("nosuchrn")


# -- prune, gc and retention ----------------------------------------------------------------


def test_retention_and_ttl_expire_what_prune_deletes(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    data = make_tree("ckpt", {"w.bin": "0"})
    for epoch in range(6):
        (data / "w.bin").write_text(f"weights {epoch}" * 100)
        log(store, data, "ckpt", aliases=["best"] if epoch == 1 else ())
    store.set_retention("ckpt", keep_last=3)
    other = log(
        store, make_tree("tmp", {"t.txt": "t"}), "scratch", ttl=dt.timedelta(microseconds=1)
    )
    kept = log(store, make_tree("keep", {"k.txt": "k"}), "pinned", aliases=["prod"])
    kept.ttl = dt.timedelta(microseconds=1)
    kept.save()
    plan = store.prune(dry_run=True)
    assert plan.versions == ["p/ckpt:v0", "p/ckpt:v2", "p/scratch:v0"]
    assert plan.rules == {"p/ckpt:v0": "keep_last", "p/ckpt:v2": "keep_last", "p/scratch:v0": "ttl"}
    sizes = [store.artifact(ref).size for ref in ("ckpt:v0", "ckpt:v2", "scratch:v0")]
    assert plan.size == sum(sizes) and plan.bytes == sum(sizes)  # nothing shared
    assert other.size == sizes[2]
    assert versions_of(store, "ckpt") == ["v0", "v1", "v2", "v3", "v4", "v5"]  # dry run
    done = store.prune()
    assert done.to_dict() == {**plan.to_dict(), "dry_run": False}
    # the newest three, and v1, which an alias keeps without counting among them
    assert versions_of(store, "ckpt") == ["v1", "v3", "v4", "v5"]
    assert store.artifact("pinned:v0").ttl is not None  # aliased: never expires
    events = [e for e in store.audit() if e.action == "delete"]
    assert [(e.target, e.details.get("by")) for e in events] == [
        ("p/ckpt:v0", "keep_last"),
        ("p/ckpt:v2", "keep_last"),
        ("p/scratch:v0", "ttl"),
    ]
    assert store.prune().versions == []  # nothing more to do


def test_max_age_keeps_the_newest_version(store: forebear.Store, make_tree: TreeMaker) -> None:
    data = make_tree("d", {"a.txt": "a"})
    for text in "abc":
        (data / "a.txt").write_text(text)
        log(store, data, "ds")
    store.set_retention("ds", max_age=dt.timedelta(microseconds=1), keep_aliased=False)
    assert store.prune().versions == ["p/ds:v0", "p/ds:v1"]
    assert versions_of(store, "ds") == ["v2"]
    assert [(p.name, p.max_age) for p in store.retention()] == [
        ("ds", dt.timedelta(microseconds=1))
    ]
    assert store.set_retention("ds") is None  # neither limit: the policy is removed
    assert store.retention() == []


@pytest.mark.parametrize("scan_share", [0, 10**9], ids=["lookup", "scan"])
def test_prune_counts_once_the_bytes_only_its_versions_hold(
    store: forebear.Store,
    make_tree: TreeMaker,
    monkeypatch: pytest.MonkeyPatch,
    scan_share: int,
) -> None:
    """Both ways of counting (a lookup per digest, or one pass over the digest index) give
    the same bytes: a file kept by a newer version is not counted, one held by several of
    the deleted versions (or twice by one) counts once."""
    from forebear.db import retention

    monkeypatch.setattr(retention, "SCAN_SHARE", scan_share)
    shared = {"kept.bin": b"K" * 1000}
    trees = [
        {**shared, "twice.bin": b"T" * 300, "own.bin": b"\0" * 10, "copy.bin": b"\0" * 10},
        {**shared, "twice.bin": b"T" * 300, "own.bin": b"\1" * 11},
        {**shared, "twice.bin": b"T" * 300, "own.bin": b"\2" * 12},
        {**shared, "own.bin": b"\3" * 13},
    ]
    for n, files in enumerate(trees):
        log(store, make_tree(f"v{n}", files), "ds")
    store.set_retention("ds", keep_last=1)
    plan = store.prune(dry_run=True)
    assert plan.versions == ["p/ds:v0", "p/ds:v1", "p/ds:v2"]
    assert plan.size == 1320 + 1311 + 1312
    assert plan.bytes == 300 + 10 + 11 + 12
    assert store.prune().bytes == plan.bytes


def test_bad_retention_is_one_clear_error(store: forebear.Store, make_tree: TreeMaker) -> None:
    log(store, make_tree("d", {"a.txt": "a"}), "ds")
    for options, match in (
        ({"keep_last": 0}, "keep_last"),
        ({"keep_last": True}, "keep_last"),
        ({"max_age": 30}, "max_age"),
        ({"max_age": -DAY}, "max_age"),
    ):
        with pytest.raises(forebear.InvalidInput, match=match):
            store.set_retention("ds", **options)  # type: ignore[arg-type]
    with pytest.raises(forebear.InvalidInput, match="artifact"):
        store.set_retention("ds:v0", keep_last=1)
    with pytest.raises(forebear.ArtifactNotFound):
        store.set_retention("nope", keep_last=1)


def test_gc_purges_deleted_versions_after_grace_and_keeps_shared_bytes(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    data = make_tree("d", {"shared.bin": b"S" * 5000, "own.bin": b"first" * 1000})
    v0 = log(store, data, "ds")
    (data / "own.bin").write_bytes(b"second" * 1000)
    log(store, data, "ds")
    own = v0.entry("own.bin").digest
    v0.delete()
    assert store.gc(grace=DAY).versions == []  # deleted an instant ago: kept
    assert store.restore("ds:v0").version == "v0"
    store.artifact("ds:v0").delete()
    dry = store.gc(grace=NOW, dry_run=True)
    assert dry.versions == ["p/ds:v0"] and own in dry.objects
    assert not store.artifact("ds:v1").deleted  # a dry run changes nothing
    assert store.restore("ds:v0").version == "v0"
    store.artifact("ds:v0").delete()
    real = store.gc(grace=NOW)
    assert (real.versions, sorted(real.objects), real.bytes) == (
        dry.versions, sorted(dry.objects), dry.bytes,
    )  # fmt: skip
    assert not objects_behind(store).has(own or "")
    assert store.verify() == []
    assert store.artifact("ds:v1").download(Path("out")).joinpath("shared.bin").read_bytes()
    with pytest.raises(forebear.VersionNotFound, match="can no longer be restored"):
        store.restore("ds:v0")
    gone = store.versions("ds", include_deleted=True)[0]
    assert gone.deleted and gone.files() == []
    assert [e.action for e in store.audit("ds:v0")][-2:] == ["delete", "gc"]


# -- which and purge ------------------------------------------------------------------------


def test_which_finds_every_version_holding_the_bytes(
    store: forebear.Store, make_tree: TreeMaker, tmp_path: Path
) -> None:
    log(store, make_tree("a", {"train.csv": "x,y\n1,2\n"}), "raw")
    log(store, make_tree("b", {"sub/copy.csv": "x,y\n1,2\n", "o.txt": "o"}), "clean")
    sample = tmp_path / "train.csv"
    sample.write_text("x,y\n1,2\n")
    found = [(v.qualified_ref, path) for v, path in store.which(sample)]
    assert found == [("p/raw:v0", "train.csv"), ("p/clean:v0", "sub/copy.csv")]
    digest = hash_bytes(b"x,y\n1,2\n")
    assert [p for _, p in store.which(digest)] == ["train.csv", "sub/copy.csv"]
    store.artifact("clean").delete()
    assert [v.deleted for v, _ in store.which(digest)] == [False, True]
    assert store.which(hash_bytes(b"nothing")) == []
    for bad in ("no-such-file", "0" * 31, tmp_path):
        with pytest.raises(forebear.InvalidPath):
            store.which(bad)


def test_purge_removes_the_bytes_everywhere_and_keeps_the_rest(
    store: forebear.Store, make_tree: TreeMaker, tmp_path: Path
) -> None:
    data = make_tree("d", {"secret.txt": "card 4111", "ok.txt": "fine"})
    v0 = log(store, data, "ds")
    v0.download()  # a copy in the store's cache
    cached = store.cache.download_folder("p", "ds", "v0") / "secret.txt"
    assert cached.exists()
    digest = v0.entry("secret.txt").digest or ""
    report = store.purge(data / "secret.txt", reason="GDPR request 42")
    assert report.entries == [("p/ds:v0", "secret.txt")] and report.bytes == 9
    assert not objects_behind(store).has(digest) and not cached.exists()
    version = store.artifact("ds:v0")
    assert version.redacted and "secret.txt" in version.files()
    with pytest.raises(forebear.IntegrityError, match="GDPR request 42"):
        version.open("secret.txt")
    assert version.open("ok.txt").read() == b"fine"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = version.download(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["ok.txt"]
    assert any("secret.txt" in str(w.message) for w in caught)
    assert store.verify() == [] and store.repair(source=tmp_path).restored == {}
    assert not objects_behind(store).has(digest)  # repair never brings purged bytes back
    again = log(store, data, "ds")  # logging the same data again: the purge stands
    assert again.version == "v0" and not objects_behind(store).has(digest)
    fresh = log(store, make_tree("e", {"secret.txt": "card 4111"}), "other")
    assert objects_behind(store).has(digest)  # a new version stores them: a new decision
    assert fresh.open("secret.txt").read() == b"card 4111"
    assert store.artifact("ds:v0").redacted  # the old entry stays redacted
    purges = [e for e in store.audit() if e.action == "purge"]
    assert purges[0].details["reason"] == "GDPR request 42"
    with pytest.raises(forebear.InvalidInput, match="reason"):
        store.purge(digest, reason=" ")
    with pytest.raises(forebear.InvalidInput, match="no version holds"):
        store.purge(hash_bytes(b"never logged"), reason="x")


def test_purging_a_chunked_file_removes_only_its_own_chunks(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    from forebear.chunking import Chunking

    store.chunking = Chunking.around(avg_size=4096, threshold=65536)
    rng = random.Random(7)
    shared = rng.randbytes(150_000)
    one = log(store, make_tree("a", {"big.bin": shared + rng.randbytes(150_000)}), "a")
    two = log(store, make_tree("b", {"big.bin": shared + rng.randbytes(150_000)}), "b")
    before = stored_digests(store)
    store.purge(one.entry("big.bin").digest or "", reason="test")
    removed = before - stored_digests(store)
    assert 10 < len(removed) < 60  # its own chunks (about 37), not the shared ones
    assert two.open("big.bin").read()[:150_000] == shared
    assert store.verify() == []


# -- audit ----------------------------------------------------------------------------------


def test_the_audit_trail_names_who_did_what_and_when(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    start = dt.datetime.now(dt.timezone.utc)
    v0 = log(store, make_tree("d", {"a.txt": "a"}), "ds")
    v0.add_alias("best")
    v0.remove_alias("best")
    v0.delete()
    store.restore("ds:v0")
    store.set_retention("ds", keep_last=2)
    events = [e for e in store.audit() if e.at >= start]  # a server's users came before
    assert [e.action for e in events] == [
        "log", "alias", "alias", "delete", "restore", "retention",
    ]  # fmt: skip
    direct = f"{getpass.getuser()}@{socket.gethostname()}"  # through a server: the token's user
    actor = direct if getattr(store, "server", None) is None else "admin"
    assert {e.actor for e in events} == {actor}
    assert all(start <= e.at <= dt.datetime.now(dt.timezone.utc) for e in events)
    assert [e.target for e in events][:2] == ["p/ds:v0", "p/ds:v0"]
    assert [e.action for e in store.audit("ds:v0")] == [
        "log", "alias", "alias", "delete", "restore",
    ]  # fmt: skip
    assert [e.action for e in store.audit("ds")][-1] == "retention"  # the whole artifact
    assert store.audit(since=dt.datetime.now(dt.timezone.utc) + DAY) == []
    with pytest.raises(forebear.InvalidInput, match="timezone-aware"):
        store.audit(since=dt.datetime.now())


# -- writers beside deletion and gc ---------------------------------------------------------


def test_gc_beside_writers_and_deletions_loses_nothing_live(
    local_store: forebear.Store, make_tree: TreeMaker
) -> None:
    """Writers keep logging versions that share bytes with versions being deleted while gc
    with no grace runs in a loop: every live version stays whole."""
    data = make_tree("d", {"shared.bin": b"S" * 20000, "n.txt": "0"})
    log(local_store, data, "ds")
    stop = threading.Event()
    errors: list[BaseException] = []

    def collect() -> None:
        with forebear.open(local_store.objects_url) as other:
            while not stop.is_set():
                try:
                    other.gc(grace=NOW)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        for n in range(1, 25):
            (data / "n.txt").write_text(str(n))
            version = log(local_store, data, "ds")
            if n % 2:
                version.delete()
    finally:
        stop.set()
        collector.join()
    assert errors == []
    assert local_store.verify() == []
    for version in local_store.versions("ds"):
        out = version.download(Path("check") / version.version)
        assert (out / "shared.bin").read_bytes() == b"S" * 20000


# -- upgrading, and the command line --------------------------------------------------------


def test_a_store_from_before_the_lifecycle_gets_it(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "data" / "store-v1"
    shutil.copytree(fixture, tmp_path / "old")
    with forebear.open(tmp_path / "old") as old:
        first = old.artifacts()[0]
        versions = old.versions(first.name, project=first.project)
        versions[0].tags = ["old"]
        versions[0].save()
        versions[-1].delete(delete_aliases=True)
        assert old.restore(versions[-1].qualified_ref).version == versions[-1].version
        assert old.artifacts(tags=["old"])[0].name == first.name
        assert old.verify() == []


def test_the_lifecycle_from_the_command_line(make_tree: TreeMaker, tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = make_tree("d", {"a.txt": "a", "secret.txt": "s"})
    cli_ok(store, "log", str(data), "--name", "ds", "--alias", "prod")
    (data / "a.txt").write_text("b")
    cli_ok(store, "log", str(data), "--name", "ds")
    cli_ok(store, "edit", "ds:v0", "-d", "first", "-m", "owner=ml", "-m", "acc=0.9", "--ttl", "30d")
    shown = json.loads(cli_ok(store, "show", "ds:v0", "--json"))
    assert (shown["description"], shown["metadata"]) == ("first", {"owner": "ml", "acc": 0.9})
    assert shown["ttl_seconds"] == 30 * 86400 and shown["redacted"] is False
    cli_ok(store, "tag", "ds:v0", "baseline", "cv")
    assert "ds" in cli_ok(store, "ls", "--tag", "baseline")
    assert "v0" in cli_ok(store, "ls", "--tag", "baseline")
    cli_ok(store, "tag", "ds:v0", "cv", "--remove")
    assert json.loads(cli_ok(store, "show", "ds:v0", "--json"))["tags"] == ["baseline"]
    assert "aliases prod" in cli_error(store, "delete", "ds:v0")
    assert "deleted" in cli_ok(store, "delete", "ds:v0", "--delete-aliases")
    assert "deleted by" in cli_error(store, "show", "ds:v0")
    assert "v0 (deleted)" in cli_ok(store, "versions", "ds", "--deleted")
    cli_ok(store, "restore", "ds:v0")
    cli_ok(store, "retention", "ds", "--keep-last", "1", "--no-keep-aliased")
    assert "keep last" in cli_ok(store, "retention")
    plan = json.loads(cli_ok(store, "prune", "--dry-run", "--json"))
    assert plan["versions"] == [{"ref": "default/ds:v0", "rule": "keep_last"}]
    assert "default/ds:v0" in cli_ok(store, "prune")
    found = json.loads(cli_ok(store, "which", str(data / "secret.txt"), "--json"))
    assert [f["ref"] for f in found] == ["default/ds:v0", "default/ds:v1"]
    purged = json.loads(
        cli_ok(store, "purge", str(data / "secret.txt"), "--reason", "leak", "--json")
    )
    assert purged["reason"] == "leak" and len(purged["entries"]) == 2
    assert json.loads(cli_ok(store, "show", "ds:v1", "--json"))["redacted"] is True
    assert "[purged]" in cli_ok(store, "show", "ds:v1")
    gc = json.loads(cli_ok(store, "gc", "--grace", "0", "--json"))
    assert gc["versions"] == ["default/ds:v0"] and gc["bytes"] > 0
    actions = [e["action"] for e in json.loads(cli_ok(store, "audit", "--json"))]
    assert actions[:2] == ["log", "log"] and {"edit", "delete", "purge", "gc"} <= set(actions)
    assert "restore" in cli_ok(store, "audit", "ds:v0")
    assert cli_ok(store, "audit", "--since", "1d")
    assert "can no longer be restored" in cli_error(store, "restore", "ds:v0")
    assert "invalid duration" in cli_error(store, "edit", "ds:v1", "--ttl", "soon")
    assert "invalid duration" in cli_error(store, "audit", "--since", "yesterday")
    assert "neither a file nor" in cli_error(store, "which", "nothing-here")
    assert "--keep-last" in cli_error(store, "retention", "ds")
    assert "no artifact" in cli_error(store, "delete", "nope:v0")
    assert "no version" in cli_error(store, "delete", "ds:v99")
