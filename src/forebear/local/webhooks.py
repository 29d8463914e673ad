"""Sending webhook deliveries: signed JSON POSTs from the outbox in the catalog.

After a write transaction that queued deliveries commits, a background thread of this
process sends the due ones, and while the process lives it sends failed ones again when
their backoff (10 s, 20 s, 40 s ... at most an hour) ends; `close()` and the exit of the
process give a send in progress a few seconds to finish. Whatever is not sent (the process
died, the receiver was down) stays queued: the next process that changes the store, or
`forebear webhook deliver`, sends it. A delivery answered 2xx is never sent again.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import hmac
import threading
import weakref
from typing import Any

from ..db import webhooks as db_webhooks
from ..db.engine import Engine, read_session, write_session

TIMEOUT_SECONDS = 10.0
ANSWER_SHOWN = 200  # bytes of a failed answer kept in the delivery log
SIGNATURE_HEADER = "X-Forebear-Signature"
EVENT_HEADER = "X-Forebear-Event"
DELIVERY_HEADER = "X-Forebear-Delivery"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body, keyed with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_pending(engine: Engine, *, due_only: bool) -> list[int]:
    """Send what is queued (only what is due, or everything now); the ids attempted."""
    import httpx2  # only a process that sends pays for the import

    attempted: list[int] = []
    with httpx2.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        while True:
            with write_session(engine) as session:
                batch = db_webhooks.claim(session, due_only=due_only, skip=attempted)
            if not batch:
                return attempted
            for delivery_id, url, secret, event, body in batch:
                attempted.append(delivery_id)
                status, error = _post(client, url, secret, event, delivery_id, body.encode())
                with write_session(engine) as session:
                    db_webhooks.settle(session, delivery_id, status, error)


def _post(
    client: Any, url: str, secret: str, event: str, delivery_id: int, body: bytes
) -> tuple[int | None, str | None]:
    """One attempt: the answer's status, and what went wrong (None on a 2xx). Only the
    first bytes of an answer are read: a receiver cannot make this process hold a large
    body."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "forebear-webhook",
        SIGNATURE_HEADER: signature(secret, body),
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
    }
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            status = int(response.status_code)
            if 200 <= status < 300:
                return status, None
            head = b""
            for piece in response.iter_bytes():
                head += piece
                if len(head) >= ANSWER_SHOWN:
                    break
    except Exception as error:  # noqa: BLE001 - unreachable, refused, timed out, bad URL:
        return None, f"{type(error).__name__}: {error}"  # recorded, and tried again later
    text = head[:ANSWER_SHOWN].decode("utf-8", "replace")
    return status, f"HTTP {status}: {text}"


_SENDERS: weakref.WeakSet[Sender] = weakref.WeakSet()


@atexit.register
def _finish_sending() -> None:
    """A script that ends right after a change still sends its events (within the timeout)."""
    for sender in list(_SENDERS):
        sender.close()


class Sender:
    """Sends due deliveries in a background thread after each commit that queued some,
    and, while this process lives, again when failed ones are due."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.again = False
        self.stopping = threading.Event()
        _SENDERS.add(self)

    def after_commit(self, info: dict[str, Any]) -> None:
        if not info.get(db_webhooks.QUEUED):
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                self.again = True
                self.stopping.set()  # wake it from waiting for a retry: there is news
                return
            self.again = False
            self.stopping.clear()
            self.thread = threading.Thread(target=self._run, name="forebear-webhooks", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                send_pending(self.engine, due_only=True)
                with read_session(self.engine) as session:
                    due = db_webhooks.next_attempt(session)
            except Exception:  # noqa: BLE001 - queued deliveries wait for the next sender
                due = None
            with self.lock:
                if self.again:
                    self.again = False
                    self.stopping.clear()
                    continue
                if due is None:
                    self.thread = None
                    return
            wait = (due - dt.datetime.now(dt.timezone.utc)).total_seconds()
            if self.stopping.wait(max(wait, 0.0) + 0.5):
                with self.lock:
                    if not self.again:  # closed: what is left waits for the next sender
                        self.thread = None
                        return

    def close(self, timeout: float = TIMEOUT_SECONDS) -> None:
        """Let a send in progress finish (up to ``timeout``); stop waiting for retries."""
        self.stopping.set()
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
