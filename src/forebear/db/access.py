"""Who may use a forebear server: users, their tokens (kept only as hashes), their roles by
project, and receipts of the bytes each user sent. Every change records its audit event in
the same transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import AuthenticationError, InvalidInput, NotFound
from ..records import ROLES, Principal, TokenInfo, UserInfo
from . import audit, bulk, writers
from .schema import (
    ArtifactRow,
    ChunkMemberRow,
    EntryRow,
    GrantRow,
    ProjectRow,
    TokenRow,
    UploadRow,
    UserRow,
    VersionRow,
    utcnow,
)

TOKEN_PREFIX = "fbt_"
_HOLD_BATCH = 50_000  # digests per statement changing holds


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _user(session: Session, name: str) -> UserRow:
    found = session.execute(select(UserRow).where(UserRow.name == name)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no user {name!r} (see 'forebear user ls')")
    return found


def add_user(session: Session, actor: str, name: str, *, admin: bool) -> None:
    if session.execute(select(UserRow.id).where(UserRow.name == name)).first() is not None:
        raise InvalidInput(f"user {name!r} exists already (see 'forebear user ls')")
    session.add(UserRow(name=name, admin=admin))
    audit.record(session, actor, "user-add", f"user {name}", details={"admin": admin})


def users(session: Session) -> list[UserInfo]:
    grants: dict[int, dict[str, str]] = {}
    for row in session.execute(select(GrantRow)).scalars():
        grants.setdefault(row.user_id, {})[row.project] = row.role
    return [
        UserInfo(
            u.name, u.admin, u.created_at, u.disabled_at, dict(sorted(grants.get(u.id, {}).items()))
        )
        for u in session.execute(select(UserRow).order_by(UserRow.name)).scalars()
    ]


def disable_user(session: Session, actor: str, name: str) -> bool:
    user = _user(session, name)
    if user.disabled_at is not None:
        return False
    user.disabled_at = utcnow()
    audit.record(session, actor, "user-disable", f"user {name}")
    return True


def grant(session: Session, actor: str, name: str, project: str, role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    user = _user(session, name)
    row = session.get(GrantRow, (user.id, project))
    if row is None:
        session.add(GrantRow(user_id=user.id, project=project, role=role))
    else:
        row.role = role
    audit.record(
        session, actor, "grant", f"user {name}", details={"project": project, "role": role}
    )


def revoke(session: Session, actor: str, name: str, project: str) -> bool:
    user = _user(session, name)
    row = session.get(GrantRow, (user.id, project))
    if row is not None:
        session.delete(row)
        audit.record(session, actor, "revoke", f"user {name}", details={"project": project})
    return row is not None


def create_token(
    session: Session, actor: str, name: str, token_name: str, expires_at: dt.datetime | None
) -> str:
    """A new token for the user; the only time it exists outside the user's hands."""
    user = _user(session, name)
    live = session.execute(
        select(TokenRow.id).where(
            TokenRow.user_id == user.id, TokenRow.name == token_name, TokenRow.revoked_at.is_(None)
        )
    ).first()
    if live is not None:
        raise InvalidInput(
            f"user {name!r} has a token named {token_name!r} already; revoke it first or "
            "choose another name"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        TokenRow(user_id=user.id, name=token_name, hash=token_hash(secret), expires_at=expires_at)
    )
    details = {"token": token_name, "expires_at": expires_at.isoformat() if expires_at else None}
    audit.record(session, actor, "token-create", f"user {name}", details=details)
    return secret


def tokens(session: Session, name: str) -> list[TokenInfo]:
    user = _user(session, name)
    rows = session.execute(
        select(TokenRow).where(TokenRow.user_id == user.id).order_by(TokenRow.id)
    ).scalars()
    return [TokenInfo(name, t.name, t.created_at, t.expires_at, t.revoked_at) for t in rows]


def revoke_token(session: Session, actor: str, name: str, token_name: str) -> bool:
    user = _user(session, name)
    rows = session.execute(
        select(TokenRow).where(
            TokenRow.user_id == user.id, TokenRow.name == token_name, TokenRow.revoked_at.is_(None)
        )
    ).scalars()
    found = False
    for row in rows:
        row.revoked_at = utcnow()
        found = True
    if found:
        audit.record(session, actor, "token-revoke", f"user {name}", details={"token": token_name})
    return found


def authenticate(session: Session, secret: str) -> Principal:
    """The user a token belongs to, with their roles; `AuthenticationError` for a token
    that is unknown, expired, revoked, or whose user is disabled (one message for all, so
    a guesser learns nothing)."""
    refused = AuthenticationError(
        "the server refused the token (unknown, expired or revoked); ask an admin for a new "
        "one ('forebear token create USER --name NAME') and set FOREBEAR_TOKEN or run "
        "'forebear login URL'"
    )
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise refused
    found = session.execute(
        select(TokenRow, UserRow)
        .join(UserRow, UserRow.id == TokenRow.user_id)
        .where(TokenRow.hash == token_hash(secret))
    ).first()
    if found is None:
        raise refused
    token, user = found
    now = utcnow()
    if token.revoked_at is not None or user.disabled_at is not None:
        raise refused
    if token.expires_at is not None and token.expires_at <= now:
        raise refused
    roles = {
        g.project: g.role
        for g in session.execute(select(GrantRow).where(GrantRow.user_id == user.id)).scalars()
    }
    return Principal(user.id, user.name, user.admin, roles)


def readable_among(
    session: Session, digests: Iterable[str], projects: frozenset[str] | None
) -> set[str]:
    """Which of ``digests`` belong to a version (of one of ``projects``, unless None): as a
    file, as its manifest, or as a chunk of one of its files."""
    wanted = set(digests)
    if not wanted or (projects is not None and not projects):
        return set()
    in_projects = (
        select(VersionRow.id)
        .join(ArtifactRow, ArtifactRow.id == VersionRow.artifact_id)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .where(VersionRow.purged_at.is_(None))
    )
    if projects is not None:
        in_projects = in_projects.where(ProjectRow.name.in_(sorted(projects)))
    found: set[str] = set()
    files = (
        select(EntryRow.digest)
        .where(EntryRow.digest.in_(bulk.string_list(session)))
        .where(EntryRow.version_id.in_(in_projects))
        .distinct()
    )
    manifests = (
        select(VersionRow.digest)
        .where(VersionRow.digest.in_(bulk.string_list(session)))
        .where(VersionRow.id.in_(in_projects))
    )
    for query in (files, manifests):
        found.update(r[0] for r in bulk.rows_for_strings(session, query, wanted))
    rest = wanted - found
    if rest:
        chunks = (
            select(ChunkMemberRow.chunk)
            .where(ChunkMemberRow.chunk.in_(bulk.string_list(session)))
            .where(
                ChunkMemberRow.file.in_(
                    select(EntryRow.digest).where(EntryRow.version_id.in_(in_projects))
                )
            )
            .distinct()
        )
        found.update(r[0] for r in bulk.rows_for_strings(session, chunks, rest))
    return found


def ping(session: Session) -> None:
    session.execute(select(1)).scalar_one()


def record_uploads(
    session: Session, user_id: int, digests: Iterable[str], hold: dt.timedelta
) -> None:
    """Receipts: the user sent these bytes and the server checked them (one statement per
    batch). Each holds its bytes off gc for ``hold`` from now (`held_by_uploads`); a
    receipt already there keeps its first time and takes the new hold. The user's other
    holds are renewed too, each once per half a hold at most: a long upload keeps what it
    sent first while it goes on, as a writer renews its lease."""
    now = writers.now(session)
    rows = [
        {"user_id": user_id, "digest": d, "created_at": now, "held_until": now + hold}
        for d in sorted(set(digests))
    ]
    receipts = UploadRow.__table__
    bulk.upsert_rows(session, receipts, rows, ("user_id", "digest"), change=("held_until",))  # type: ignore[arg-type]
    session.execute(
        update(UploadRow)
        .where(
            UploadRow.user_id == user_id,
            UploadRow.held_until > now,
            UploadRow.held_until < now + hold / 2,
        )
        .values(held_until=now + hold)
    )


def renew_uploads(
    session: Session, user_id: int, digests: Iterable[str], hold: dt.timedelta
) -> None:
    """The user's receipts among ``digests`` hold their bytes for ``hold`` from now: a
    client about to rely on bytes it sent before, found on the server, holds them off gc
    as if it sent them again."""
    _set_hold(session, user_id, digests, writers.now(session) + hold)


def release_uploads(session: Session, user_id: int, digests: Iterable[str]) -> None:
    """The commit naming these bytes ends the user's hold on them: from now on the
    version holds them, and gc takes them once it is purged."""
    _set_hold(session, user_id, digests, None)


def _set_hold(
    session: Session, user_id: int, digests: Iterable[str], until: dt.datetime | None
) -> None:
    wanted = sorted(set(digests))
    statement = (
        update(UploadRow)
        .where(
            UploadRow.user_id == user_id,
            UploadRow.held_until.is_not(None),
            UploadRow.digest.in_(bulk.string_list(session)),
        )
        .values(held_until=until)
    )
    for start in range(0, len(wanted), _HOLD_BATCH):
        session.execute(statement, bulk.ids_param(session, wanted[start : start + _HOLD_BATCH]))


def held_by_uploads(session: Session) -> set[str]:
    """The digests some user sent to a server that no commit has named yet, within their
    hold: a client's uploads are committed later, in one request, under no writer's lease,
    so gc keeps them as it keeps a live lease's objects."""
    query = select(UploadRow.digest).where(UploadRow.held_until > writers.now(session)).distinct()
    return {row[0] for row in session.execute(query)}


def uploaded_among(session: Session, user_id: int, digests: Iterable[str]) -> set[str]:
    wanted = set(digests)
    if not wanted:
        return set()
    query = select(UploadRow.digest).where(
        UploadRow.user_id == user_id, UploadRow.digest.in_(bulk.string_list(session))
    )
    return {r[0] for r in bulk.rows_for_strings(session, query, wanted)}
