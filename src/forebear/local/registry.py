"""The registry in a local backend: links, protected aliases, and webhooks (receivers,
the delivery log, and sending what is queued)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..db import aliases as db_aliases
from ..db import audit
from ..db import projects as db_projects
from ..db import registry as db_registry
from ..db import versions as db_versions
from ..db import webhooks as db_webhooks
from ..db.engine import Engine, read_session, write_session
from ..paths import Ref
from ..records import Delivery, VersionData, Webhook
from . import webhooks

if TYPE_CHECKING:
    from .webhooks import Sender


class LocalRegistry:
    """The registry half of `LocalBackend` (which provides the engine, the actor and the
    webhook sender)."""

    engine: Engine
    actor: str
    sender: Sender

    if TYPE_CHECKING:  # provided by LocalBackend

        def require_writable(self) -> None: ...

    # -- the registry ----------------------------------------------------------------------

    def link(
        self,
        version_id: int,
        collection: str,
        *,
        aliases: Sequence[str],
        reason: str | None,
        run_id: str | None,
    ) -> VersionData:
        self.require_writable()
        with write_session(self.engine) as session:
            source = db_versions.version_row(session, version_id)
            row, _created = db_registry.link(
                session, source, collection, actor=self.actor, run_id=run_id,
                aliases=list(aliases), reason=reason,
            )  # fmt: skip
            return db_versions.load_versions(session, [row.id])[row.id]

    def protect_alias(
        self, ref: Ref, default_project: str | None, alias: str, *, protect: bool
    ) -> bool:
        self.require_writable()
        with write_session(self.engine) as session:
            artifact = db_projects.get_artifact(session, ref, default_project)
            if protect:
                changed = db_aliases.protect(session, artifact.id, alias, self.actor)
            else:
                changed = db_aliases.unprotect(session, artifact.id, alias)
            if changed:
                audit.record(
                    session, self.actor, "protect" if protect else "unprotect",
                    db_aliases.artifact_name(session, artifact.id),
                    artifact_id=artifact.id, details={"alias": alias},
                )  # fmt: skip
            return changed

    def protected_aliases(self, ref: Ref, default_project: str | None) -> list[str]:
        with read_session(self.engine) as session:
            artifact = db_projects.get_artifact(session, ref, default_project)
            return db_aliases.protected(session, artifact.id)

    # -- webhooks ------------------------------------------------------------------------

    def add_webhook(self, url: str, events: Sequence[str], secret: str) -> Webhook:
        self.require_writable()
        with write_session(self.engine) as session:
            hook = db_webhooks.add(session, url, list(events), secret, self.actor)
            audit.record(
                session, self.actor, "webhook", f"webhook {hook.id}",
                details={"added": url, "events": hook.events},
            )  # fmt: skip
            return hook

    def webhooks(self) -> list[Webhook]:
        with read_session(self.engine) as session:
            return db_webhooks.webhooks(session)

    def remove_webhook(self, webhook_id: int) -> Webhook:
        self.require_writable()
        with write_session(self.engine) as session:
            hook = db_webhooks.remove(session, webhook_id)
            audit.record(
                session, self.actor, "webhook", f"webhook {hook.id}",
                details={"removed": hook.url},
            )  # fmt: skip
            return hook

    def deliveries(self, webhook_id: int | None, limit: int) -> list[Delivery]:
        with read_session(self.engine) as session:
            return db_webhooks.deliveries(session, webhook_id, limit)

    def deliver_webhooks(self, *, due_only: bool) -> list[Delivery]:
        self.require_writable()
        self.sender.close()  # the background sender first: one attempt at a time here
        attempted = webhooks.send_pending(self.engine, due_only=due_only)
        with read_session(self.engine) as session:
            return db_webhooks.deliveries(session, None, None, ids=attempted)
