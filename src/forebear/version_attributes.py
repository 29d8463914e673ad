"""W&B's names on a version that scripts read and forebear has no other word for: its
page (``url``), its ``entity``, the version a registry link points to (``source_*``) and
the artifact it belongs to (``collection``: an `ArtifactCollection`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast

from .pages import on_server, version_page

if TYPE_CHECKING:
    from .store import Store
    from .views import ArtifactVersion


class VersionAttributes:
    """W&B's remaining artifact attributes on `ArtifactVersion`."""

    _store: Store

    if TYPE_CHECKING:  # provided by ArtifactVersion

        @property
        def project(self) -> str: ...

        @property
        def name(self) -> str: ...

        @property
        def version(self) -> str: ...

        @property
        def source(self) -> ArtifactVersion | None: ...

    entity = None  # W&B's entity names nothing more here: a store is one team's
    source_entity = None

    @property
    def updated_at(self) -> dt.datetime:
        """W&B's: when the version last changed, as its audit trail tells: edited, an
        alias set on it or taken from it, deleted or restored; `created_at` until then."""
        version = cast("ArtifactVersion", self)
        events = self._store.audit(version.qualified_ref)
        changes = [event.at for event in events if event.action != "log"]  # logging made it
        return max([version.created_at, *changes])

    def is_draft(self) -> bool:
        """W&B's: a version is committed, never a draft (an `Artifact` is, until logged)."""
        return False

    @property
    def url(self) -> str | None:
        """The version's page in the web UI of the forebear server the store is reached
        through; None for a store reached directly (``forebear ui`` shows it at
        ``/artifacts/<project>/<name>/<version>``)."""
        return on_server(self._store.db_url, version_page(self.project, self.name, self.version))

    @property
    def source_artifact(self) -> ArtifactVersion:
        """The version as it was logged: for a registry link, the version it links
        (W&B's source artifact); for any other version, the version itself."""
        return self.source or cast("ArtifactVersion", self)

    @property
    def source_name(self) -> str:
        """``name:v3`` of `source_artifact` (a registry link names the version it links)."""
        return self.source_artifact.ref

    @property
    def source_version(self) -> str:
        return self.source_artifact.version

    @property
    def source_project(self) -> str:
        return self.source_artifact.project

    @property
    def source_qualified_name(self) -> str:
        return self.source_artifact.qualified_ref

    @property
    def collection(self) -> ArtifactCollection:
        """The artifact this version belongs to (W&B's collection; a registry link's is
        its registry collection)."""
        return ArtifactCollection(self._store, cast("ArtifactVersion", self))

    @property
    def source_collection(self) -> ArtifactCollection:
        """The artifact `source_artifact` belongs to."""
        return self.source_artifact.collection


class ArtifactCollection:
    """W&B's ``ArtifactCollection``: one artifact (``project/name``) and its versions,
    made from one of them (its latest, as `Api` makes it), whose description it shows."""

    def __init__(self, store: Store, version: ArtifactVersion) -> None:
        self.store = store
        self.project = version.project
        self.name = version.name
        self.type = version.type
        self.description = version.description

    def versions(self) -> list[ArtifactVersion]:
        """Every version, oldest first."""
        return self.store.versions(self.name, self.project)

    artifacts = versions

    @property
    def aliases(self) -> list[str]:
        """Every alias some version carries, by name."""
        return sorted({alias for version in self.versions() for alias in version.aliases})

    def is_sequence(self) -> bool:
        """Always: every forebear artifact is a sequence of versions (W&B's portfolios are
        registry links, `link_artifact`)."""
        return True

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.project}/{self.name} {self.type}>"
