"""Access control in a local backend: the users, tokens and grants a forebear server checks,
and acting for one of them (their name in the audit trail, only their projects when a
ref leaves its project out)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from .. import references
from .. import settings as config
from ..db import access as db_access
from ..db import projects as db_projects
from ..db import purges as db_purges
from ..db import versions as db_versions
from ..db.engine import Engine, read_session, write_session
from ..paths import check_name
from ..records import Principal, TokenInfo, UserInfo, VersionData
from . import uploads

if TYPE_CHECKING:
    from .backend import LocalBackend

# who the current request acts for, when a server serves it (else the backend's own actor)
_ACTING: ContextVar[str | None] = ContextVar("forebear_acting_for", default=None)


class LocalAccess:
    """The access-control half of `LocalBackend` (which provides the engine)."""

    engine: Engine
    default_actor: str

    @property
    def actor(self) -> str:
        """Who the audit trail names: a server request's user, else ``user@host``."""
        return _ACTING.get() or self.default_actor

    @actor.setter
    def actor(self, value: str) -> None:
        self.default_actor = value

    @contextlib.contextmanager
    def acting_for(self, principal: Principal) -> Iterator[None]:
        """Inside: changes are recorded as ``principal``'s, a ref without a project
        resolves among the projects they may read only, and references are never read."""
        actor = _ACTING.set(principal.name)
        visible = db_projects.VISIBLE.set(None if principal.admin else principal.projects())
        serving = references.ON_A_SERVER.set(True)
        try:
            yield
        finally:
            references.ON_A_SERVER.reset(serving)
            db_projects.VISIBLE.reset(visible)
            _ACTING.reset(actor)

    # -- administration ------------------------------------------------------------------

    def add_user(self, name: str, *, admin: bool = False) -> None:
        check_name(name, "user")
        with write_session(self.engine) as session:
            db_access.add_user(session, self.actor, name, admin=admin)

    def users(self) -> list[UserInfo]:
        with read_session(self.engine) as session:
            return db_access.users(session)

    def disable_user(self, name: str) -> bool:
        with write_session(self.engine) as session:
            return db_access.disable_user(session, self.actor, name)

    def grant(self, user: str, project: str, role: str) -> None:
        check_name(project, "project")
        with write_session(self.engine) as session:
            db_access.grant(session, self.actor, user, project, role)

    def revoke(self, user: str, project: str) -> bool:
        with write_session(self.engine) as session:
            return db_access.revoke(session, self.actor, user, project)

    def create_token(self, user: str, name: str, expires_at: dt.datetime | None = None) -> str:
        check_name(name, "token")
        with write_session(self.engine) as session:
            return db_access.create_token(session, self.actor, user, name, expires_at)

    def tokens(self, user: str) -> list[TokenInfo]:
        with read_session(self.engine) as session:
            return db_access.tokens(session, user)

    def revoke_token(self, user: str, name: str) -> bool:
        with write_session(self.engine) as session:
            return db_access.revoke_token(session, self.actor, user, name)

    # -- what a server asks --------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The user a token belongs to; `AuthenticationError` otherwise."""
        with read_session(self.engine) as session:
            return db_access.authenticate(session, token)

    def readable_among(self, digests: Iterable[str], projects: frozenset[str] | None) -> set[str]:
        """Which of ``digests`` hold bytes of a version (in one of ``projects``)."""
        with read_session(self.engine) as session:
            return db_access.readable_among(session, digests, projects)

    def purged_in(self, project: str, name: str, digest: str) -> list[str]:
        """The purged bytes of the live version of ``project/name`` with this content (a
        log of the same content again must not store them back)."""
        with read_session(self.engine) as session:
            known = db_versions.live_version_id(session, project, name, digest)
            if known is None:
                return []
            return sorted({r.digest for r in db_purges.redactions(session, known)})

    def ping(self) -> None:
        """Reach the catalog once (a server's readiness check)."""
        with read_session(self.engine) as session:
            db_access.ping(session)

    def commit_uploaded(self, **details: Any) -> VersionData:
        """Commit a version a client uploaded to a server (`uploads.commit_uploaded`)."""
        return uploads.commit_uploaded(cast("LocalBackend", self), **details)

    def record_uploads(self, user_id: int, digests: Iterable[str]) -> None:
        """Receipts for bytes the user sent and the server checked, each holding its bytes
        off gc for a lease period, or until the commit naming them."""
        with write_session(self.engine) as session:
            db_access.record_uploads(session, user_id, digests, config.lease_duration())

    def renew_uploads(self, user_id: int, digests: Iterable[str]) -> None:
        """Hold the bytes the user sent before, found there again, for a lease period."""
        with write_session(self.engine) as session:
            db_access.renew_uploads(session, user_id, digests, config.lease_duration())

    def release_uploads(self, user_id: int, digests: Iterable[str]) -> None:
        """End the user's hold on bytes a committed version now names."""
        with write_session(self.engine) as session:
            db_access.release_uploads(session, user_id, digests)

    def uploaded_among(self, user_id: int, digests: Iterable[str]) -> set[str]:
        with read_session(self.engine) as session:
            return db_access.uploaded_among(session, user_id, digests)
