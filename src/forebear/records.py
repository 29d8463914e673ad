"""Plain records that cross the backend interface: what a catalog knows about versions,
runs and lineage, detached from any database session (named tuples: cheap to build by the
hundred thousand, and easy to send over HTTP)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

from .chunking import Chunking

# The catalog's integers are 64-bit: a whole number it holds (a size, a count, an offset,
# a metric kept exactly) lies from -INTEGER_LIMIT up to, not including, INTEGER_LIMIT.
INTEGER_LIMIT = 2**63


class VersionData(NamedTuple):
    """One version as the catalog records it."""

    id: int
    artifact_id: int
    project: str
    name: str
    number: int
    type: str
    digest: str
    hash_algorithm: str
    size: int
    file_count: int
    description: str | None
    metadata_json: str  # decoded on access: bulk loads of many versions skip the cost
    created_at: dt.datetime
    created_by: str | None
    chunking_json: str | None
    new_bytes: int | None
    shared_bytes: int | None
    deleted_at: dt.datetime | None = None
    deleted_by: str | None = None
    purged_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    source_version_id: int | None = None  # set on a registry version: the version it links

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(json.loads(self.metadata_json)) if self.metadata_json else {}

    @property
    def chunking(self) -> Chunking | None:
        found = json.loads(self.chunking_json) if self.chunking_json else None
        return Chunking.from_dict(found) if found else None

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.number}"


class RunData(NamedTuple):
    """One run as the catalog records it; ``status`` as read (a running run whose
    process is gone reads as ``crashed``)."""

    id: str
    project: str
    name: str
    status: str
    config: dict[str, Any]
    summary: dict[str, Any]
    context: dict[str, Any]
    started_at: dt.datetime
    ended_at: dt.datetime | None
    deleted_at: dt.datetime | None = None
    deleted_by: str | None = None


class RunSummary(NamedTuple):
    """What a lineage graph shows of a run."""

    pk: int
    id: str
    name: str
    status: str
    started_at: dt.datetime
    project: str
    deleted: bool = False


class LineageData(NamedTuple):
    """The runs and versions around one version, and the edges between them: ``(run key,
    direction, version id)``, ``out`` for a run that logged a version, ``in`` for one
    that used it."""

    root: int
    versions: dict[int, VersionData]
    aliases: dict[int, list[str]]
    runs: dict[int, RunSummary]
    edges: set[tuple[int, str, int]]
    # registry links among the versions: (source version id, registry version id)
    links: frozenset[tuple[int, int]] = frozenset()


class AuditEvent(NamedTuple):
    """One change to the catalog: when, by whom (``user@host``, or a server token's user),
    what (``log``, ``alias``, ``edit``, ``delete``, ``restore``, ``purge``, ``retention``,
    ``gc``, ``delete-run``...), on which target (a qualified ref, ``run <id>``, or an
    artifact), and the details of the change."""

    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class RetentionPolicy(NamedTuple):
    """How many versions of an artifact `prune` keeps: the newest ``keep_last``, none older
    than ``max_age``, and (``keep_aliased``) every version a user alias points at."""

    project: str
    name: str
    keep_last: int | None
    max_age: dt.timedelta | None
    keep_aliased: bool


class Redaction(NamedTuple):
    """An entry whose bytes were purged: when, by whom and why."""

    path: str
    digest: str
    reason: str
    actor: str
    purged_at: dt.datetime

    def message(self, ref: str) -> str:
        """What a reader of this entry of version ``ref`` is told instead of its bytes."""
        when = self.purged_at.strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{ref} {self.path}: its bytes were purged by {self.actor} at {when} "
            f"({self.reason}); the rest of {ref} stays readable"
        )


WEBHOOK_EVENTS = ("version.logged", "version.linked", "alias.moved", "version.deleted", "run.alert")


class Webhook(NamedTuple):
    """A receiver of event POSTs (its secret is never handed out)."""

    id: int
    url: str
    events: list[str]
    created_at: dt.datetime
    created_by: str


class Delivery(NamedTuple):
    """One event sent (or still to send) to one webhook."""

    id: int
    webhook_id: int
    event: str
    created_at: dt.datetime
    attempts: int
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None  # None once delivered
    last_status: int | None
    last_error: str | None
    body: dict[str, Any]

    @property
    def status(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        return "failing" if self.attempts else "pending"


ROLES = ("reader", "writer", "maintainer")  # each can do what those before it can


class UserInfo(NamedTuple):
    """A user of a forebear server, with their roles by project."""

    name: str
    admin: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    grants: dict[str, str]


class TokenInfo(NamedTuple):
    """One of a user's API tokens (never the token itself: only its hash is kept)."""

    user: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        now = dt.datetime.now(dt.timezone.utc)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Principal(NamedTuple):
    """Who a request comes from: the token's user, whether a server admin, and the roles
    they hold by project."""

    id: int
    name: str
    admin: bool
    roles: dict[str, str]

    def may(self, project: str, role: str) -> bool:
        """Whether this user holds ``role`` (or a greater one) in ``project``."""
        if self.admin:
            return True
        held = self.roles.get(project)
        return held is not None and ROLES.index(held) >= ROLES.index(role)

    def projects(self, role: str = "reader") -> frozenset[str]:
        """The projects where this user holds ``role`` or more."""
        return frozenset(p for p in self.roles if self.may(p, role))
