"""W&B's names on a version that scripts read and forebear has no other word for: its
page (``url``) and its ``entity``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pages import on_server, version_page

if TYPE_CHECKING:
    from .store import Store


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

    entity = None  # W&B's entity names nothing more here: a store is one team's

    @property
    def url(self) -> str | None:
        """The version's page in the web UI of the forebear server the store is reached
        through; None for a store reached directly (``forebear ui`` shows it at
        ``/artifacts/<project>/<name>/<version>``)."""
        return on_server(self._store.db_url, version_page(self.project, self.name, self.version))
