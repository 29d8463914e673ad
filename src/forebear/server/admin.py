"""What only a server admin may ask of a forebear server: users, roles and tokens, and
the store's format (a mixin of `GuardedBackend`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..local import LocalBackend
    from ..records import TokenInfo, UserInfo


class AdminCalls:
    """Each call checks the caller is a server admin, then asks the server's backend."""

    inner: LocalBackend
    need_admin: Callable[[str], None]

    # -- who may use the server: an admin's ---------------------------------------------

    def add_user(self, name: str, *, admin: bool = False) -> None:
        self.need_admin("adding users")
        self.inner.add_user(name, admin=admin)

    def users(self) -> list[UserInfo]:
        self.need_admin("listing users")
        return self.inner.users()

    def disable_user(self, name: str) -> bool:
        self.need_admin("disabling users")
        return self.inner.disable_user(name)

    def grant(self, user: str, project: str, role: str) -> None:
        self.need_admin("granting roles")
        self.inner.grant(user, project, role)

    def revoke(self, user: str, project: str) -> bool:
        self.need_admin("revoking roles")
        return self.inner.revoke(user, project)

    def create_token(self, user: str, name: str, expires_at: dt.datetime | None = None) -> str:
        self.need_admin("creating tokens")
        return self.inner.create_token(user, name, expires_at)

    def tokens(self, user: str) -> list[TokenInfo]:
        self.need_admin("listing tokens")
        return self.inner.tokens(user)

    def revoke_token(self, user: str, name: str) -> bool:
        self.need_admin("revoking tokens")
        return self.inner.revoke_token(user, name)

    # -- the store's format --------------------------------------------------------------

    def upgrade(self) -> tuple[int, int]:
        self.need_admin("upgrade")
        return self.inner.upgrade()

    def rebuild_index(self) -> tuple[int, int]:
        self.need_admin("rebuild_index")
        return self.inner.rebuild_index()
