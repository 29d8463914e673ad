"""The registry: the reserved project ``registry``, whose collections link versions logged
elsewhere (W&B's Registry and ``link_artifact``, MLflow's registered models and aliases).

A registry version (``registry/fraud-detector:v0``) has its source's files and digest;
nothing is copied or uploaded. It numbers its own versions and carries its own aliases,
whose every move is kept with who made it and why, so ``store.artifact(ref, at=...)`` says
what ``production`` was at any moment. Protected aliases move only when forced. Webhooks
tell other systems (CI, deployment) when versions are logged, linked or deleted and when
aliases move.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import active
from .artifacts import Artifact
from .errors import InvalidInput
from .paths import REGISTRY, check_alias, check_name, is_wandb_registry, parse_ref
from .records import WEBHOOK_EVENTS as EVENTS
from .records import Delivery, Webhook

if TYPE_CHECKING:
    from .backend import Backend
    from .records import VersionData
    from .store import Store
    from .views import ArtifactVersion


def collection_of(target_path: object) -> str:
    """The collection a link target names: ``registry/<collection>`` or ``<collection>``;
    W&B's ``[entity/]wandb-registry-<kind>/<collection>`` and ``[entity/]model-registry/
    <collection>`` name the same collection (one registry holds every kind here)."""
    if not isinstance(target_path, str) or not target_path:
        raise InvalidInput(f"a link target is 'registry/<collection>', not {target_path!r}")
    project, _, name = target_path.rpartition("/")
    registry = project.rpartition("/")[2]  # W&B's, after an entity: or the older name
    if project.count("/") <= 1 and is_wandb_registry(registry):
        project = REGISTRY
    if project not in ("", REGISTRY) or ":" in name:
        raise InvalidInput(
            f"cannot link into {target_path!r}: links go into the registry, as "
            "'registry/<collection>' (e.g. 'registry/fraud-detector')"
        )
    return check_name(name, "collection")


def aliases_list(aliases: Sequence[str] | str | None) -> list[str]:
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    return [check_alias(alias) for alias in aliases]


class Linkable:
    """The registry half of `ArtifactVersion` (which provides ``_store`` and ``_data``)."""

    _store: Store
    _data: VersionData

    if TYPE_CHECKING:  # provided by ArtifactVersion

        @property
        def id(self) -> int: ...

    @property
    def is_link(self) -> bool:
        """True for a registry version (it links a source version)."""
        return self._data.source_version_id is not None

    @property
    def source(self) -> ArtifactVersion | None:
        """The version a registry version links (None for any other version)."""
        if self._data.source_version_id is None:
            return None
        found = self._store.backend.version_by_id(self._data.source_version_id)
        return self._wrap(found)

    def link(
        self, target_path: str, aliases: Sequence[str] | None = None, *, reason: str | None = None
    ) -> ArtifactVersion:
        """Link this version into the registry collection ``target_path``
        (``registry/<collection>``): the registry version linking it (the existing one if
        its content is linked there already), with ``aliases`` moved to it (``reason`` kept
        in their history). The active run, if any, is recorded as the linker."""
        run = active.current()
        run_id = run.id if run is not None and run.store is self._store else None
        data = self._store.backend.link(
            self.id,
            collection_of(target_path),
            aliases=aliases_list(aliases),
            reason=reason,
            run_id=run_id,
        )
        return self._wrap(data)

    def unlink(self) -> None:
        """Remove a registry version (a soft delete, with its aliases); its source stays."""
        if not self.is_link:
            raise InvalidInput(
                f"{self._data.project}/{self._data.name}:v{self._data.number} is not a registry "
                "version; unlink registry versions (e.g. 'registry/model:v0')"
            )
        self._store.backend.delete_version(self._data, delete_aliases=True)

    def _wrap(self, data: VersionData) -> ArtifactVersion:
        return type(self)(self._store, data)  # type: ignore[call-arg,return-value]


class RunRegistry:
    """The registry half of `Run`: W&B's model helpers."""

    _store: Store
    id: str
    project: str

    if TYPE_CHECKING:  # provided by Run

        def _require_running(self, action: str) -> None: ...

        def log_artifact(self, *args: Any, **kwargs: Any) -> ArtifactVersion: ...

        def use_artifact(self, ref: str | ArtifactVersion) -> ArtifactVersion: ...

    def link_artifact(
        self,
        artifact: ArtifactVersion | Artifact | str,
        target_path: str,
        aliases: Sequence[str] | None = None,
        *,
        reason: str | None = None,
    ) -> ArtifactVersion:
        """Link a logged version (or an `Artifact` once logged: the version it became, or
        a ref such as ``"fraud-rf:v3"``, in this run's project unless it names another)
        into the registry, recording this run as the linker."""
        self._require_running("link an artifact")
        version: ArtifactVersion
        if isinstance(artifact, Artifact):
            version = artifact.logged_version("link the version it becomes")
        elif isinstance(artifact, str):
            version = self._store.artifact(artifact, self.project)
        elif isinstance(artifact, Linkable):  # every ArtifactVersion
            version = artifact
        else:
            raise InvalidInput(
                f"link_artifact links a logged version, an Artifact or a ref such as "
                f"'name:v3', not {type(artifact).__name__}"
            )
        data = self._store.backend.link(
            version.id,
            collection_of(target_path),
            aliases=aliases_list(aliases),
            reason=reason,
            run_id=self.id,
        )
        return type(version)(self._store, data)

    def log_model(
        self,
        path: str | os.PathLike[str] | Artifact,
        name: str | None = None,
        aliases: Sequence[str] | None = None,
        **options: Any,
    ) -> ArtifactVersion:
        """`log_artifact` with type ``model``."""
        return self.log_artifact(path, name, "model", aliases_list(aliases), **options)

    def use_model(self, name: str, root: str | os.PathLike[str] | None = None) -> Path:
        """Use a model version (``registry/fraud-detector:production`` or any ref) and
        download it: the path of its local copy."""
        return self.use_artifact(name).download(root)

    def link_model(
        self,
        path: str | os.PathLike[str] | Artifact,
        registered_model_name: str,
        name: str | None = None,
        aliases: Sequence[str] | None = None,
    ) -> ArtifactVersion:
        """Log a model and link it into ``registry/<registered_model_name>``; the registry
        version."""
        version = self.log_model(path, name)
        return self.link_artifact(version, f"{REGISTRY}/{registered_model_name}", aliases)


class StoreRegistry:
    """The registry half of `Store`: protected aliases and webhooks."""

    backend: Backend

    if TYPE_CHECKING:  # provided by Store

        def _default_project(self) -> str | None: ...

    def protect_alias(self, name: str, alias: str) -> bool:
        """Protect an alias of an artifact or collection (``registry/fraud-detector``): it
        then moves only with ``force=True``. False if it was protected already."""
        return self.backend.protect_alias(
            parse_ref(name), self._default_project(), check_alias(alias), protect=True
        )

    def unprotect_alias(self, name: str, alias: str) -> bool:
        return self.backend.protect_alias(
            parse_ref(name), self._default_project(), check_alias(alias), protect=False
        )

    def protected_aliases(self, name: str) -> list[str]:
        return self.backend.protected_aliases(parse_ref(name), self._default_project())

    def add_webhook(self, url: str, events: Sequence[str], secret: str) -> Webhook:
        """Send a signed JSON POST to ``url`` for each of ``events`` (``version.logged``,
        ``version.linked``, ``alias.moved``, ``version.deleted``). The body is signed with
        HMAC-SHA256 keyed by ``secret`` (header ``X-Forebear-Signature: sha256=<hex>``)."""
        return self.backend.add_webhook(check_url(url), check_events(events), check_secret(secret))

    def webhooks(self) -> list[Webhook]:
        """The webhooks (their secrets are never shown)."""
        return self.backend.webhooks()

    def remove_webhook(self, webhook_id: int) -> Webhook:
        return self.backend.remove_webhook(webhook_id)

    def webhook_deliveries(self, webhook_id: int | None = None, limit: int = 50) -> list[Delivery]:
        """The delivery log, newest first: each event's attempts, last answer, and whether
        it was delivered."""
        return self.backend.deliveries(webhook_id, limit)

    def deliver_webhooks(self, due_only: bool = False) -> list[Delivery]:
        """Send every queued delivery now (whatever its backoff, unless ``due_only``); the
        deliveries attempted, as they stand after the attempt."""
        return self.backend.deliver_webhooks(due_only=due_only)


def check_url(url: object) -> str:
    from urllib.parse import urlsplit

    if not isinstance(url, str) or any(ch.isspace() for ch in url):
        raise InvalidInput(f"a webhook URL is text without spaces, not {url!r}")
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        usable = usable and (parts.port or 0) >= 0  # a port that is not a number raises
    except ValueError:  # also brackets that do not close
        usable = False
    if not usable:
        raise InvalidInput(
            f"a webhook URL is http:// or https:// and a host (e.g. https://ci.example/hook), "
            f"not {url!r}"
        )
    return url


def check_events(events: object) -> list[str]:
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, (list, tuple, set)) or not events:
        raise InvalidInput(f"name the events to send, some of: {', '.join(EVENTS)}")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInput(
            f"unknown webhook event {unknown[0]!r}; the events are {', '.join(EVENTS)}"
        )
    return sorted(set(events))


def check_secret(secret: object) -> str:
    if not isinstance(secret, str) or not secret:
        raise InvalidInput("a webhook needs a secret to sign its events with (a non-empty string)")
    return secret


def check_moment(at: object) -> dt.datetime:
    if not isinstance(at, dt.datetime) or at.tzinfo is None:
        raise InvalidInput(
            f"at= must be an aware datetime (e.g. datetime(2026, 11, 1, tzinfo=UTC)), not {at!r}"
        )
    return at
