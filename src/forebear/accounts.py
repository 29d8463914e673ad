"""Who may use a store through a forebear server: users, their project roles and their API
tokens. On a store opened directly these act on its catalog (a server's admin does this on
the server's machine); through a server they need a server admin's token."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .errors import InvalidInput
from .records import ROLES, TokenInfo, UserInfo

if TYPE_CHECKING:
    from .backend import Backend


class StoreAccounts:
    """The accounts half of `Store`."""

    backend: Backend

    def add_user(self, name: str, *, admin: bool = False) -> None:
        """A new user, with no roles and no tokens; ``admin`` manages users, tokens and
        grants, and may do anything in any project."""
        self.backend.add_user(name, admin=admin)

    def users(self) -> list[UserInfo]:
        """Every user with their roles by project, by name."""
        return self.backend.users()

    def disable_user(self, name: str) -> bool:
        """Stop every token of a user at once (their history stays); False if disabled
        already."""
        return self.backend.disable_user(name)

    def grant(self, user: str, project: str, role: str) -> None:
        """Give ``user`` the ``role`` (reader, writer or maintainer) in ``project``, which
        need not exist yet; it replaces the role they had there."""
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        self.backend.grant(user, project, role)

    def revoke(self, user: str, project: str) -> bool:
        """Take ``user``'s role in ``project`` away; False if they had none."""
        return self.backend.revoke(user, project)

    def create_token(self, user: str, name: str, *, expires_in: dt.timedelta | None = None) -> str:
        """A new API token (``fbt_...``) for ``user``: returned this once, stored only as
        a hash; it stops working after ``expires_in`` when given."""
        expires_at = None
        if expires_in is not None:
            if expires_in <= dt.timedelta(0):
                raise InvalidInput("a token's lifetime must be positive")
            expires_at = dt.datetime.now(dt.timezone.utc) + expires_in
        return self.backend.create_token(user, name, expires_at)

    def tokens(self, user: str) -> list[TokenInfo]:
        """A user's tokens, oldest first: names and dates, never the tokens."""
        return self.backend.tokens(user)

    def revoke_token(self, user: str, name: str) -> bool:
        """Stop one of a user's tokens now (their others keep working); False if no live
        token has that name."""
        return self.backend.revoke_token(user, name)
