"""W&B's ``wandb.alert``: a training script tells people something went wrong (or right)
through the store's webhooks, a ``run.alert`` event each, without flooding the receiver
when the check sits in a loop."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

import forebear

from .receiving import Receiver
from .test_registry import SECRET


def test_an_alert_reaches_the_webhooks_that_asked_for_it(
    store: forebear.Store, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    store.add_webhook(receiver.url, events=["run.alert"], secret=SECRET)
    other = Receiver()  # asked for versions only
    store.add_webhook(other.url, events=["version.logged"], secret=SECRET)
    with forebear.init(project="p", name="train", store=store) as run:
        for step in range(3):  # a check in the training loop
            forebear.alert(
                "loss is NaN", f"at step {step}", level=forebear.AlertLevel.ERROR,
                wait_duration=300,
            )  # fmt: skip
        run.alert("done", "accuracy 0.93", wait_duration=0)
        run.alert("done", "again", "warn", wait_duration=0)
    store.deliver_webhooks()  # whatever the background sender has not sent yet
    events = receiver.wait_for(3)
    assert [(e["event"], e["data"]["title"], e["data"]["level"]) for e in events] == [
        ("run.alert", "loss is NaN", "ERROR"),
        ("run.alert", "done", "INFO"),
        ("run.alert", "done", "WARN"),
    ]
    assert events[0]["data"] == {
        "run": run.id, "project": "p", "name": "train", "title": "loss is NaN",
        "text": "at step 0", "level": "ERROR",
    }  # fmt: skip
    for headers, body in receiver.received:
        signed = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Forebear-Signature"] == signed
        assert headers["X-Forebear-Event"] == json.loads(body)["event"] == "run.alert"
    assert store.deliver_webhooks() == [] and len(receiver.received) == 3
    assert other.received == []
    other.close()
    assert f"forebear: ERROR alert from run {run.id}: loss is NaN" in capsys.readouterr().err


def test_an_alert_is_refused_clearly_and_sends_nothing(
    store: forebear.Store, receiver: Receiver
) -> None:
    store.add_webhook(receiver.url, events=["run.alert"], secret=SECRET)
    with pytest.raises(forebear.RunStateError, match=r"call forebear.init\(\) first"):
        forebear.alert("t", "x")
    with forebear.init(project="p", store=store) as run:
        for bad, says in (
            ({"title": ""}, "title is a text of 1 to 256"),
            ({"title": "a\x00b"}, "NUL"),
            ({"text": "x" * 100_001}, "at most 100,000"),
            ({"level": "loud"}, "one of INFO, WARN and ERROR"),
            ({"wait_duration": -1}, "0 or more seconds"),
            ({"wait_duration": "soon"}, "seconds or a timedelta"),
        ):
            with pytest.raises(forebear.InvalidInput, match=says):
                run.alert(**{"title": "t", "text": "x", **bad})  # type: ignore[arg-type]
    with pytest.raises(forebear.RunStateError, match=f"run {run.id} is finished"):
        run.alert("late", "x")
    with pytest.raises(forebear.RunStateError, match="is running"):
        running = forebear.init(project="p", store=store)
        store.run(running.id).alert("from a reader", "x")  # not the process's own run
    running.finish()
    assert store.deliver_webhooks() == [] and receiver.received == []


def test_a_disabled_run_alerts_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREBEAR_MODE", "disabled")
    with forebear.init(project="p"):
        assert forebear.alert("t", "x", forebear.AlertLevel.WARN) is None
