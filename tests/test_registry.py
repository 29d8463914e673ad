"""The registry: links into collections (nothing copied), lineage through links, what an
alias pointed at at any moment, protected aliases with reasons, and webhooks delivered to a
real HTTP receiver on 127.0.0.1; on SQLite + a folder and on PostgreSQL + S3."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import forebear

from .conftest import clean_env, cli_error, cli_ok, objects_behind, reopen
from .receiving import Receiver

TreeMaker = Callable[..., Path]
SECRET = "a-long-signing-secret"
ALL_EVENTS = ["version.logged", "version.linked", "alias.moved", "version.deleted"]


def train(store: forebear.Store, model: Path, **options: Any) -> forebear.ArtifactVersion:
    with forebear.init(project="fraud", name="train", store=store) as run:
        return run.log_model(model, name="fraud-rf", **options)


def stored_objects(store: forebear.Store) -> set[str]:
    return set(objects_behind(store).iter_digests())


# -- links -------------------------------------------------------------------------------


def test_a_link_shares_the_source_files_and_numbers_its_own_versions(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    model = make_tree("m", {"model.pkl": "weights-1", "conf/params.json": "{}"})
    v0 = train(store, model)
    before = stored_objects(store)
    reg = v0.link("registry/fraud-detector", aliases=["staging"])
    assert reg.qualified_ref == "registry/fraud-detector:v0"
    assert (reg.digest, reg.files(), reg.type) == (v0.digest, v0.files(), "model")
    assert reg.is_link and reg.source == v0 and v0.source is None
    assert stored_objects(store) == before  # nothing copied, nothing uploaded
    assert reg.aliases == ["latest", "staging"]
    assert reg.open("model.pkl").read() == b"weights-1"
    # the same source again gives the same registry version; a link of a link, too
    assert v0.link("registry/fraud-detector").qualified_ref == reg.qualified_ref
    assert reg.link("registry/fraud-detector").qualified_ref == reg.qualified_ref
    (model / "model.pkl").write_text("weights-2")
    with forebear.init(project="fraud", name="train-2", store=store) as run:
        reg1 = run.link_model(model, "fraud-detector", name="fraud-rf", aliases=["staging"])
    assert reg1.qualified_ref == "registry/fraud-detector:v1"
    assert reg1.source is not None and reg1.source.qualified_ref == "fraud/fraud-rf:v1"
    assert store.artifact("registry/fraud-detector:staging") == reg1
    assert store.artifact("fraud-rf").project == "fraud"  # the model, not the collection
    assert reg1.to_dict()["source"] == "fraud/fraud-rf:v1"
    assert store.verify() == []


def test_lineage_passes_through_links_both_ways(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    data = make_tree("d", {"train.csv": "a,b"})
    model = make_tree("m", {"model.pkl": "w"})
    with forebear.init(project="fraud", name="prepare", store=store) as run:
        run.log_artifact(data, name="train-data", type="dataset")
    with forebear.init(project="fraud", name="train", store=store) as run:
        run.use_artifact("train-data")
        source = run.log_model(model, name="fraud-rf")
        reg = run.link_artifact(source, "registry/fraud-detector", aliases=["production"])
        run.use_model("registry/fraud-detector:production")  # reads its own link back
    with forebear.init(project="serving", name="score", store=store) as run:
        path = run.use_model("registry/fraud-detector:production", root=data.parent / "dl")
        assert (path / "model.pkl").read_text() == "w"
        (data / "scores.csv").write_text("0.1")
        scores = run.log_artifact(data / "scores.csv", name="scores", type="predictions")
    assert [v.qualified_ref for v in reg.upstream()] == ["fraud/fraud-rf:v0", "fraud/train-data:v0"]
    downstream = [v.qualified_ref for v in store.artifact("fraud/train-data").downstream()]
    assert downstream == ["fraud/fraud-rf:v0", "registry/fraud-detector:v0", "serving/scores:v0"]
    assert [v.qualified_ref for v in scores.upstream(type="dataset")] == ["fraud/train-data:v0"]
    graph = store.artifact("fraud/train-data").lineage(upstream=False, downstream=True)
    assert graph.graph.edges["fraud/fraud-rf:v0", "registry/fraud-detector:v0"]["kind"] == "link"
    assert "-. link .->" in graph.to_mermaid()
    walked = store.artifact("fraud/train-data").lineage(upstream=False, downstream=True, depth=3)
    assert set(walked.versions()) == set(graph.versions())


def test_a_run_links_a_version_by_its_ref(store: forebear.Store, make_tree: TreeMaker) -> None:
    """``run.link_artifact`` takes a ref as well as a version: in the run's project unless
    it names another; anything else is one clear error."""
    model = make_tree("m", {"model.pkl": "w"})
    v0 = train(store, model)
    with forebear.init(project=v0.project, name="promote", store=store) as run:
        reg = run.link_artifact(f"{v0.name}:v0", "registry/by-ref", aliases=["staging"])
        with pytest.raises(forebear.NotFound):
            run.link_artifact("no-such-model:v0", "registry/by-ref")
        with pytest.raises(forebear.InvalidInput, match="not int"):
            run.link_artifact(3, "registry/by-ref")  # type: ignore[arg-type]
    with forebear.init(project="elsewhere", name="promote", store=store) as run:
        again = run.link_artifact(v0.qualified_ref, "registry/by-ref")
    assert reg.source == v0 and again.source == v0
    assert reg.qualified_ref == "registry/by-ref:v0"
    assert store.artifact("registry/by-ref:staging") == reg


def test_the_registry_takes_links_only(store: forebear.Store, make_tree: TreeMaker) -> None:
    model = make_tree("m", {"model.pkl": "w"})
    for reserved in ("registry", "wandb-registry-model"):
        with pytest.raises(forebear.InvalidInput, match="names the registry"):
            forebear.init(project=reserved, store=store)
    v0 = train(store, model)
    for target in ("other/fraud", "registry/Bad Name", "registry/x:v1", "", "registry/"):
        with pytest.raises(forebear.InvalidInput):
            v0.link(target)
    with pytest.raises(forebear.InvalidInput, match="not a registry version"):
        v0.unlink()
    assert store.artifacts() == [v0]  # nothing was made by the refusals


def test_a_linked_source_cannot_be_deleted_or_pruned_until_unlinked(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    model = make_tree("m", {"model.pkl": "w0"})
    v0 = train(store, model)
    for n in range(1, 4):
        (model / "model.pkl").write_text(f"w{n}")
        train(store, model)
    reg = v0.link("registry/fraud-detector", aliases=["production"])
    with pytest.raises(forebear.InvalidInput, match="registry/fraud-detector:v0: unlink"):
        v0.delete()
    store.set_retention("fraud/fraud-rf", keep_last=1, keep_aliased=False)
    assert "fraud/fraud-rf:v0" not in store.prune(dry_run=True).versions
    assert sorted(store.prune().versions) == ["fraud/fraud-rf:v1", "fraud/fraud-rf:v2"]
    reg.unlink()
    assert store.versions("registry/fraud-detector") == []
    assert reg.source is not None and not reg.source.deleted
    v0.delete()
    report = store.gc(grace=dt.timedelta(0))
    assert (
        "registry/fraud-detector:v0" in report.versions and "fraud/fraud-rf:v0" in report.versions
    )
    assert store.verify() == []


def test_push_carries_links_into_another_store(
    direct_store: forebear.Store, make_tree: TreeMaker, tmp_path: Path
) -> None:
    store = direct_store  # push and pull copy between stores this process reaches
    model = make_tree("m", {"model.pkl": "w0"})
    source = train(store, model)
    reg = source.link("registry/fraud-detector", aliases=["production"])
    with forebear.init(project="serving", name="score", store=store) as run:
        run.use_model("registry/fraud-detector:production", root=tmp_path / "dl")
        (tmp_path / "scores.csv").write_text("0.1")
        scores = run.log_artifact(tmp_path / "scores.csv", name="scores")
    with forebear.open(tmp_path / "elsewhere") as other:
        report = store.push(other, [scores.qualified_ref])
        assert report.versions[reg.qualified_ref] == "registry/fraud-detector:v0"
        copied = other.artifact("registry/fraud-detector:production")
        assert copied.is_link and copied.source is not None
        assert copied.source.qualified_ref == "fraud/fraud-rf:v0"
        assert other.artifact("serving/scores").upstream()[0].qualified_ref == (
            "registry/fraud-detector:v0"
        )
        assert other.verify() == []


# -- time travel and protected aliases ---------------------------------------------------


def test_what_an_alias_pointed_at_at_any_moment(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    model = make_tree("m", {"model.pkl": "w0"})
    first = train(store, model).link("registry/fraud-detector")
    (model / "model.pkl").write_text("w1")
    second = train(store, model).link("registry/fraud-detector")
    first.add_alias("production", reason="first launch")
    between = store.audit()[-1].at
    second.add_alias("production", reason="better recall")
    now = dt.datetime.now(dt.timezone.utc)
    ref = "registry/fraud-detector:production"
    assert store.artifact(ref, at=between) == first
    assert store.artifact(ref, at=now) == second == store.artifact(ref)
    before = first.created_at - dt.timedelta(seconds=1)
    with pytest.raises(forebear.VersionNotFound, match="pointed at no version"):
        store.artifact(ref, at=before)
    with pytest.raises(forebear.VersionNotFound, match="did not exist yet"):
        store.artifact("registry/fraud-detector:v1", at=before)
    with pytest.raises(forebear.InvalidInput, match="aware datetime"):
        store.artifact(ref, at=dt.datetime(2026, 1, 1))  # naive: which zone?
    moves = [
        m for m in store.alias_history("registry/fraud-detector") if m["alias"] == "production"
    ]
    assert [(m["version"], m["previous"], m["reason"]) for m in moves] == [
        ("v0", None, "first launch"),
        ("v1", "v0", "better recall"),
    ]
    assert all(m["actor"] for m in moves)


def test_a_protected_alias_moves_only_when_forced(
    store: forebear.Store, make_tree: TreeMaker
) -> None:
    model = make_tree("m", {"model.pkl": "w0"})
    first = train(store, model).link("registry/fraud-detector", aliases=["production"])
    (model / "model.pkl").write_text("w1")
    second = train(store, model).link("registry/fraud-detector")
    assert store.protect_alias("registry/fraud-detector", "production") is True
    assert store.protect_alias("registry/fraud-detector", "production") is False
    assert store.protected_aliases("registry/fraud-detector") == ["production"]
    for attempt in (
        lambda: second.add_alias("production"),
        lambda: first.remove_alias("production"),
        lambda: first.delete(delete_aliases=True),
        lambda: second.link("registry/fraud-detector", aliases=["production"]),
    ):
        with pytest.raises(forebear.PermissionDenied, match="protected"):
            attempt()
    assert store.artifact("registry/fraud-detector:production") == first  # nothing moved
    second.add_alias("production", reason="passed shadow test", force=True)
    assert store.artifact("registry/fraud-detector:production") == second
    event = store.audit("registry/fraud-detector:v1")[-1]
    assert event.details == {"set": "production", "reason": "passed shadow test", "forced": True}
    assert store.unprotect_alias("registry/fraud-detector", "production") is True
    first.add_alias("production")  # a rollback, unprotected now
    # prune never expires a protected version
    store.protect_alias("registry/fraud-detector", "production")
    store.set_retention("registry/fraud-detector", keep_last=1, keep_aliased=False)
    assert store.prune(dry_run=True).versions == []


# -- webhooks ----------------------------------------------------------------------------


def test_webhooks_are_signed_and_sent_for_every_event(
    store: forebear.Store, make_tree: TreeMaker, receiver: Receiver
) -> None:
    hook = store.add_webhook(receiver.url, events=ALL_EVENTS, secret=SECRET)
    model = make_tree("m", {"model.pkl": "w0"})
    source = train(store, model)
    reg = source.link("registry/fraud-detector", aliases=["staging"])
    reg.add_alias("production", reason="shadow ok")
    (model / "model.pkl").write_text("w1")
    newer = train(store, model)
    newer.delete()
    store.deliver_webhooks()  # whatever the background sender has not sent yet
    events = receiver.wait_for(6)
    assert [e["event"] for e in events] == [
        "version.logged",
        "alias.moved",
        "version.linked",
        "alias.moved",
        "version.logged",
        "version.deleted",
    ]
    assert events[3]["data"] == {
        "artifact": "registry/fraud-detector",
        "alias": "production",
        "version": "v0",
        "previous": None,
        "reason": "shadow ok",
    }
    assert events[2]["data"]["source"] == "fraud/fraud-rf:v0"
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Forebear-Signature"] == expected
        assert headers["X-Forebear-Event"] == json.loads(body)["event"]
    assert all(d.status == "delivered" for d in store.webhook_deliveries(hook.id))
    assert store.deliver_webhooks() == []  # a 2xx is never sent again
    assert len(receiver.received) == 6
    # the secret is never shown
    listed = [h._asdict() for h in store.webhooks()]
    assert SECRET not in json.dumps(listed, default=str)
    assert SECRET not in json.dumps([e.details for e in store.audit()])


def test_a_failing_receiver_is_retried_and_nothing_is_lost(
    store: forebear.Store, make_tree: TreeMaker, receiver: Receiver
) -> None:
    receiver.status = 503
    store.add_webhook(receiver.url, events=["version.logged"], secret=SECRET)
    train(store, make_tree("m", {"model.pkl": "w0"}))
    store.deliver_webhooks()
    receiver.wait_for(1)
    (failing,) = store.webhook_deliveries()
    assert failing.status == "failing" and failing.last_status == 503
    assert failing.next_attempt_at is not None
    assert failing.next_attempt_at > dt.datetime.now(dt.timezone.utc)  # backing off
    receiver.status = 200
    (sent,) = store.deliver_webhooks()  # now, whatever the backoff
    assert sent.status == "delivered" and sent.attempts >= 2
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # every attempt sent the same signed body


def test_a_running_process_retries_by_itself_after_the_backoff(
    local_store: forebear.Store, make_tree: TreeMaker, receiver: Receiver
) -> None:
    receiver.status = 503
    local_store.add_webhook(receiver.url, events=["version.logged"], secret=SECRET)
    train(local_store, make_tree("m", {"model.pkl": "w0"}))
    receiver.wait_for(1)  # the first attempt, right after the commit, fails
    receiver.status = 200
    receiver.wait_for(2)  # the retry, about 10 s later, with nobody asking

    def settled() -> bool:
        return [(d.status, d.attempts) for d in local_store.webhook_deliveries()] == [
            ("delivered", 2)
        ]

    deadline = time.monotonic() + 60
    while not settled():  # the sender records the answer just after the receiver has it
        assert time.monotonic() < deadline, local_store.webhook_deliveries()
        time.sleep(0.05)


def test_a_huge_answer_is_not_read_whole(
    store: forebear.Store, make_tree: TreeMaker, receiver: Receiver
) -> None:
    receiver.status = 500
    receiver.answer = b"x" * (64 * 1024 * 1024)  # 64 MiB of error page
    store.add_webhook(receiver.url, events=["version.logged"], secret=SECRET)
    train(store, make_tree("m", {"model.pkl": "w0"}))
    (attempt,) = store.deliver_webhooks()
    assert attempt.status == "failing" and attempt.last_status == 500
    assert attempt.last_error is not None and len(attempt.last_error) < 300


def test_an_unreachable_receiver_is_a_recorded_failure(
    store: forebear.Store, make_tree: TreeMaker, receiver: Receiver
) -> None:
    url = receiver.url
    receiver.close()  # nothing listens there any more
    store.add_webhook(url, events=["version.logged"], secret=SECRET)
    version = train(store, make_tree("m", {"model.pkl": "w0"}))
    assert version.version == "v0"  # the change itself never fails for a webhook
    (attempt,) = store.deliver_webhooks()
    assert attempt.status == "failing" and "Connect" in (attempt.last_error or "")


def test_events_survive_a_process_killed_after_its_change(
    tmp_path: Path, make_tree: TreeMaker
) -> None:
    down = Receiver()
    down.close()  # its port is free again: nothing listens while the change is made
    store_path = tmp_path / "store"
    with forebear.open(store_path) as store:
        store.add_webhook(down.url, events=["version.logged"], secret=SECRET)
    model = make_tree("m", {"model.pkl": "w0"})
    script = (
        "import os, forebear\n"
        f"store = forebear.open({str(store_path)!r})\n"
        "with forebear.init(project='fraud', store=store) as run:\n"
        f"    run.log_model({str(model)!r}, name='fraud-rf')\n"
        "os._exit(0)\n"  # no clean shutdown: whatever was not sent is still queued
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=clean_env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with forebear.open(store_path) as store:
        (queued,) = store.webhook_deliveries()
        assert queued.delivered_at is None
        assert queued.body["data"]["version"] == "fraud/fraud-rf:v0"
        revived = Receiver(down.port)  # the receiver comes back at the same address
        try:
            (sent,) = store.deliver_webhooks()
            assert sent.status == "delivered"
            assert [e["event"] for e in revived.wait_for(1)] == ["version.logged"]
        finally:
            revived.close()


def test_two_senders_never_send_one_delivery_twice(
    store: forebear.Store, make_tree: TreeMaker, receiver: Receiver, tmp_path: Path
) -> None:
    store.add_webhook(receiver.url, events=["version.logged"], secret=SECRET)
    for n in range(12):
        train(store, make_tree(f"m{n}", {"model.pkl": f"w{n}"}))
    other = reopen(store, cache_dir=tmp_path / "other-cache")
    try:
        threads = [
            threading.Thread(target=s.deliver_webhooks) for s in (store, other, store, other)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    store.deliver_webhooks()
    ids = [json.loads(body)["id"] for _, body in receiver.received]
    assert len(ids) == len(set(ids)) == 12


def test_a_receiver_gets_events_in_the_order_they_happened(
    direct_store: forebear.Store, make_tree: TreeMaker, receiver: Receiver, tmp_path: Path
) -> None:
    store = direct_store  # two processes of one team, each sending what it changed
    receiver.hold = threading.Event()
    store.add_webhook(receiver.url, events=["version.logged"], secret=SECRET)
    train(store, make_tree("m0", {"model.pkl": "w0"}))
    receiver.wait_for(1)  # v0's event is being sent, and its receiver takes its time
    other = reopen(store, cache_dir=tmp_path / "other-cache")
    try:
        train(other, make_tree("m1", {"model.pkl": "w1"}))
        # another sender does not overtake the send in progress: v1 waits for v0
        assert other.deliver_webhooks() == []
    finally:
        other.close()  # its background sender, too, has finished
    assert len(receiver.received) == 1
    receiver.hold.set()
    events = receiver.wait_for(2)  # the sender of v0 sends v1 next
    assert [e["data"]["version"] for e in events] == ["fraud/fraud-rf:v0", "fraud/fraud-rf:v1"]


def test_bad_webhooks_are_refused(store: forebear.Store, receiver: Receiver) -> None:
    with pytest.raises(forebear.InvalidInput, match="unknown webhook event"):
        store.add_webhook(receiver.url, events=["version.created"], secret=SECRET)
    for url in ("ftp://example/hook", "http://", "https://ci:port/x", "http://a b/", "http://[::1"):
        with pytest.raises(forebear.InvalidInput, match="webhook URL"):
            store.add_webhook(url, events=["alias.moved"], secret=SECRET)
    with pytest.raises(forebear.InvalidInput, match="secret"):
        store.add_webhook(receiver.url, events=["alias.moved"], secret="")
    with pytest.raises(forebear.NotFound, match="no webhook 42"):
        store.remove_webhook(42)
    assert store.webhooks() == []


# -- the command line --------------------------------------------------------------------


def test_the_registry_from_the_command_line(
    make_tree: TreeMaker, tmp_path: Path, receiver: Receiver
) -> None:
    store = tmp_path / "store"
    model = make_tree("m", {"model.pkl": "w0"})
    cli_ok(store, "log", str(model), "--name", "fraud-rf", "--type", "model", "--project", "fraud")
    added = json.loads(
        cli_ok(
            store, "webhook", "add", receiver.url, "-e", "alias.moved", "--secret-stdin", "--json",
            input=SECRET + "\n",
        )
    )  # fmt: skip
    assert added["events"] == ["alias.moved"] and "secret" not in added
    assert SECRET not in cli_ok(store, "webhook", "ls", "--json")
    out = cli_ok(
        store, "link", "fraud/fraud-rf:v0", "registry/fraud-detector", "--alias", "staging"
    )
    assert out.startswith("registry/fraud-detector:v0 -> fraud/fraud-rf:v0")
    cli_ok(store, "protect", "registry/fraud-detector", "production")
    line = cli_error(store, "alias", "registry/fraud-detector:v0", "production")
    assert "protected" in line and "--force" in line
    cli_ok(store, "alias", "registry/fraud-detector:v0", "production", "--force",
           "--reason", "passed shadow test")  # fmt: skip
    shown = json.loads(cli_ok(store, "show", "registry/fraud-detector:production", "--json"))
    assert shown["source"] == "fraud/fraud-rf:v0" and "production" in shown["aliases"]
    history = json.loads(cli_ok(store, "history", "registry/fraud-detector", "--json"))
    assert history["protected"] == ["production"]
    assert [(m["alias"], m["reason"]) for m in history["moves"]] == [
        ("staging", None),
        ("production", "passed shadow test"),
    ]
    assert "passed shadow test" in cli_ok(store, "history", "registry/fraud-detector")
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    at = cli_ok(store, "show", "registry/fraud-detector:production", "--at", now, "--json")
    assert json.loads(at)["version"] == "v0"
    assert "pointed at no version" in cli_error(
        store, "show", "registry/fraud-detector:production", "--at", "2020-01-01"
    )
    assert "upstream" not in cli_ok(store, "lineage", "registry/fraud-detector:production")
    assert "fraud-rf:v0" in cli_ok(store, "lineage", "registry/fraud-detector:production")
    receiver.wait_for(2)  # staging and production, sent after each command
    cli_ok(store, "webhook", "deliver")
    deliveries = json.loads(cli_ok(store, "webhook", "deliveries", "--json"))
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    assert "registry" in cli_error(store, "log", str(model), "--project", "registry")
    assert "unlink it first" in cli_error(store, "delete", "fraud/fraud-rf:v0")
    assert "cannot link into" in cli_error(store, "link", "fraud/fraud-rf:v0", "fraud/x")
    assert "no webhook 9" in cli_error(store, "webhook", "rm", "9")
    cli_ok(store, "webhook", "rm", str(added["id"]))
    assert "no webhooks" in cli_ok(store, "webhook", "ls")
