"""Webhooks in the catalog: receivers, and the outbox of deliveries.

An event is queued by inserting one delivery per subscribed receiver in the transaction of
the change it reports: if the change commits, so does the delivery, and a process that dies
after the commit loses nothing (the next sender finds it). Senders claim deliveries for a
short while, so two processes do not send one at once; a delivery answered with 2xx is
marked delivered and never sent again.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from ..errors import NotFound
from ..records import Delivery, Webhook
from .schema import DeliveryRow, WebhookRow, utcnow

QUEUED = "forebear.webhooks.queued"  # set in session.info when a delivery was queued
_RECEIVERS = "forebear.webhooks.receivers"
CLAIM = dt.timedelta(seconds=60)  # how long a sender holds a delivery it is sending
FIRST_RETRY = dt.timedelta(seconds=10)
LONGEST_WAIT = dt.timedelta(hours=1)


def add(session: Session, url: str, events: list[str], secret: str, actor: str) -> Webhook:
    row = WebhookRow(
        url=url, events=sorted(set(events)), secret=secret, created_at=utcnow(), created_by=actor
    )
    session.add(row)
    session.flush()
    session.info.pop(_RECEIVERS, None)
    return _webhook(row)


def remove(session: Session, webhook_id: int) -> Webhook:
    """Stop sending to a receiver: its pending deliveries are dropped from the queue (the
    delivery log keeps them, undelivered)."""
    row = session.get(WebhookRow, webhook_id)
    if row is None or row.removed_at is not None:
        raise NotFound(f"no webhook {webhook_id} (run 'forebear webhook ls')")
    row.removed_at = utcnow()
    session.flush()
    session.info.pop(_RECEIVERS, None)
    return _webhook(row)


def webhooks(session: Session) -> list[Webhook]:
    rows = session.execute(
        select(WebhookRow).where(WebhookRow.removed_at.is_(None)).order_by(WebhookRow.id)
    ).scalars()
    return [_webhook(row) for row in rows]


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(row.id, row.url, list(row.events), row.created_at, row.created_by)


def queue(session: Session, event: str, actor: str, data: dict[str, Any]) -> None:
    """One delivery of ``event`` per receiver that asked for it, in the caller's
    transaction."""
    queue_many(session, event, actor, [data])


def queue_many(
    session: Session, event: str, actor: str, payloads: Sequence[dict[str, Any]]
) -> None:
    """`queue` for many events of one kind (a prune deletes thousands of versions): their
    deliveries in one insert."""
    subscribed = session.info.get(_RECEIVERS)
    if subscribed is None:  # read once per transaction
        subscribed = {
            row.id: set(row.events)
            for row in session.execute(
                select(WebhookRow).where(WebhookRow.removed_at.is_(None))
            ).scalars()
        }
        session.info[_RECEIVERS] = subscribed
    receivers = [webhook_id for webhook_id, events in subscribed.items() if event in events]
    if not receivers or not payloads:
        return
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for data in payloads:
        body = json.dumps(
            {
                "event": event,
                "id": uuid.uuid4().hex,
                "at": now.isoformat(),
                "actor": actor,
                "data": data,
            },
            sort_keys=True,
        )
        rows.extend(
            {
                "webhook_id": webhook_id,
                "event": event,
                "body": body,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for webhook_id in receivers
        )
    session.execute(insert(DeliveryRow.__table__), rows)  # type: ignore[arg-type]
    session.info[QUEUED] = True


def claim(
    session: Session, *, due_only: bool, skip: Sequence[int] = (), limit: int = 50
) -> list[tuple[int, str, str, str, str]]:
    """Take up to ``limit`` undelivered deliveries (due ones only, or every one; not those
    in ``skip``) to send: (delivery id, url, secret, event, body).

    A receiver gets its events in the order they happened: none is taken while an earlier
    one to the same receiver is being sent by another sender (another thread, worker or
    process); the sender of that earlier one takes it next. Only an earlier delivery that
    failed and waits for its retry lets later ones overtake it, so one receiver that is
    down for an hour does not hold every later event back."""
    now = utcnow()
    earlier = aliased(DeliveryRow)
    earlier_in_flight = (
        select(earlier.id)
        .where(
            earlier.webhook_id == DeliveryRow.webhook_id,
            earlier.id < DeliveryRow.id,
            earlier.delivered_at.is_(None),
            earlier.claimed_until >= now,
        )
        .exists()
    )
    query = (
        select(
            DeliveryRow.id, WebhookRow.url, WebhookRow.secret, DeliveryRow.event, DeliveryRow.body
        )
        .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
        .where(
            DeliveryRow.delivered_at.is_(None),
            WebhookRow.removed_at.is_(None),
            or_(DeliveryRow.claimed_until.is_(None), DeliveryRow.claimed_until < now),
            ~earlier_in_flight,
        )
        .order_by(DeliveryRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=DeliveryRow)
    )
    if due_only:
        query = query.where(DeliveryRow.next_attempt_at <= now)
    if skip:  # attempted already by this sender: once per call is enough
        query = query.where(DeliveryRow.id.not_in(list(skip)))
    found = [tuple(row) for row in session.execute(query)]
    if found:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_([row[0] for row in found]))
            .values(claimed_until=now + CLAIM)
        )
    return found  # type: ignore[return-value]


def settle(session: Session, delivery_id: int, status: int | None, error: str | None) -> None:
    """Record one attempt: delivered on a 2xx, else the next attempt after a backoff that
    doubles each time (10 s, 20 s, ... up to an hour)."""
    row = session.get(DeliveryRow, delivery_id)
    if row is None:
        return
    now = utcnow()
    row.attempts += 1
    row.last_attempt_at = now
    row.last_status = status
    row.last_error = error[:500] if error else None
    row.claimed_until = None
    if status is not None and 200 <= status < 300:
        row.delivered_at = now
    else:
        wait = min(FIRST_RETRY * 2 ** min(row.attempts - 1, 20), LONGEST_WAIT)
        row.next_attempt_at = now + wait
    session.flush()


def deliveries(
    session: Session,
    webhook_id: int | None,
    limit: int | None,
    *,
    ids: Sequence[int] | None = None,
) -> list[Delivery]:
    """The delivery log (of one webhook, or these deliveries), newest first."""
    query = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)
    if webhook_id is not None:
        query = query.where(DeliveryRow.webhook_id == webhook_id)
    if ids is not None:
        query = query.where(DeliveryRow.id.in_(list(ids)))
    return [
        Delivery(
            row.id,
            row.webhook_id,
            row.event,
            row.created_at,
            row.attempts,
            row.delivered_at,
            row.next_attempt_at if row.delivered_at is None else None,
            row.last_status,
            row.last_error,
            json.loads(row.body),
        )
        for row in session.execute(query).scalars()
    ]


def next_attempt(session: Session) -> dt.datetime | None:
    """When the soonest undelivered delivery is due (None: nothing is waiting)."""
    found = session.execute(
        select(func.min(DeliveryRow.next_attempt_at))
        .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
        .where(DeliveryRow.delivered_at.is_(None), WebhookRow.removed_at.is_(None))
    ).scalar()
    return found if isinstance(found, dt.datetime) else None
