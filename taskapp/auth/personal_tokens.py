"""Personal access tokens: what they are, how they are stored and checked, who may
hold which scope. Functions of the session; nothing here commits.

A token is ``tap_`` + 43 characters of ``secrets.token_urlsafe(32)`` (256 random bits).
Only HMAC-SHA256(key, token) is stored: a fast keyed hash is right for a secret of that
entropy (a slow password hash would only make every request slow), and without the key a
leaked table cannot even be checked against guesses. The hash is unique and indexed, so
checking a token is one indexed lookup, joined to its owner in the same query.
"""

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Connection, delete, or_, select, update
from sqlalchemy.orm import Session, contains_eager

from taskapp.auth.models import PersonalAccessToken, TokenAction, TokenEvent
from taskapp.errors import InvalidField, NotFound, PermissionDenied
from taskapp.models import Role, Source, utcnow
from taskapp.users.models import User

PREFIX = "tap_"
SCOPES = (
    "tasks:read",
    "tasks:write",
    "logs:read",
    "webhooks:read",
    "webhooks:write",
    "users:read",
    "users:write",
)
ADMIN_ONLY_SCOPES = frozenset({"users:read", "users:write"})
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""``last_used_at`` is written at most this often per token."""


def scopes_for_role(role: Role) -> frozenset[str]:
    """Every scope a user of ``role`` may hold (and a JWT session of theirs has)."""
    if role == Role.ADMIN:
        return frozenset(SCOPES)
    return frozenset(SCOPES) - ADMIN_ONLY_SCOPES


def digest(key: bytes, token: str) -> bytes:
    return hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


@dataclass
class NewToken:
    row: PersonalAccessToken
    token: str
    """The secret, known only now."""

    def __getattr__(self, name: str):
        return getattr(self.row, name)


def create(
    session: Session,
    key: bytes,
    owner: User,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    *,
    actor_id: int | None,
    source: Source,
) -> NewToken:
    """Make a token for ``owner``; scopes beyond the owner's role: PermissionDenied."""
    beyond = set(scopes) - scopes_for_role(owner.role)
    if beyond:
        names = ", ".join(sorted(beyond))
        raise PermissionDenied(f"Tokens of {owner.role.value} users cannot hold: {names}.")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidField("expires_at", "Must be in the future.")
    token = PREFIX + secrets.token_urlsafe(32)
    row = PersonalAccessToken(
        user_id=owner.id,
        name=name,
        scopes=" ".join(scope for scope in SCOPES if scope in scopes),
        token_hash=digest(key, token),
        owner_token_version=owner.token_version,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    _record(session, row, TokenAction.CREATED, actor_id, source)
    return NewToken(row, token)


def revoke(session: Session, token: PersonalAccessToken, *, actor_id: int | None, source: Source):
    """Delete the token (it stops working at once) and record who did it."""
    _record(session, token, TokenAction.REVOKED, actor_id, source)
    session.delete(token)
    session.flush()


def _record(session, token, action, actor_id, source) -> None:
    session.add(
        TokenEvent(
            token_id=token.id,
            token_name=token.name,
            action=action,
            owner_id=token.user_id,
            actor_id=actor_id,
            source=source,
        )
    )


def live_tokens():
    """Tokens that still work or merely expired: those ended by a change of their
    owner (role, password, activation) are never shown again."""
    return (
        select(PersonalAccessToken)
        .join(PersonalAccessToken.owner)
        .where(PersonalAccessToken.owner_token_version == User.token_version)
        .options(contains_eager(PersonalAccessToken.owner))
        .order_by(PersonalAccessToken.id.desc())
    )


def get_manageable(session: Session, caller: User, token_id: int) -> PersonalAccessToken:
    """A token ``caller`` may revoke: their own, or anyone's for an ADMIN."""
    query = live_tokens().where(PersonalAccessToken.id == token_id)
    if caller.role != Role.ADMIN:
        query = query.where(PersonalAccessToken.user_id == caller.id)
    token = session.execute(query).scalar_one_or_none()
    if token is None:
        raise NotFound("token")
    return token


@dataclass(frozen=True, slots=True)
class CheckedToken:
    """A good token as the request needs it (read with one Core SELECT, no ORM object)."""

    id: int
    scope_list: list[str]
    last_used_at: datetime | None


def authenticate(
    reader: Session | Connection,
    key: bytes,
    token: str,
    now: datetime,
    user_columns: Sequence[Column],
) -> tuple[CheckedToken, tuple] | None:
    """The token and its owner's ``user_columns`` values if the token is good, else
    None: one query, by the token's unique hash, joined to its owner. Core rather than
    ORM rows, as the JWT check reads its user: no identity-map work on every request."""
    hashed = digest(key, token)
    pat, owner = PersonalAccessToken.__table__.c, User.__table__.c
    query = (
        select(
            pat.id,
            pat.scopes,
            pat.last_used_at,
            pat.token_hash,
            pat.owner_token_version,
            pat.expires_at,
            owner.is_active,
            owner.token_version,
            *user_columns,
        )
        .join_from(PersonalAccessToken.__table__, User.__table__, owner.id == pat.user_id)
        .where(pat.token_hash == hashed)
    )
    row = reader.execute(query).first()
    if row is None:
        return None
    token_id, scopes, last_used_at, stored_hash, version, expires_at = row[:6]
    active, owner_version = row[6:8]
    if not hmac.compare_digest(stored_hash, hashed):
        return None
    if not active or version != owner_version:
        return None
    if expires_at is not None and expires_at <= now:
        return None
    return CheckedToken(token_id, scopes.split(), last_used_at), tuple(row[8:])


def needs_touch(token: CheckedToken, now: datetime) -> bool:
    last = token.last_used_at
    return last is None or now - last >= LAST_USED_RESOLUTION


def touch(connection, token_id: int, now: datetime) -> None:
    """Stamp ``last_used_at`` unless another request did within the resolution."""
    connection.execute(
        update(PersonalAccessToken)
        .where(
            PersonalAccessToken.id == token_id,
            or_(
                PersonalAccessToken.last_used_at.is_(None),
                PersonalAccessToken.last_used_at < now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
    )


def purge_dead(session: Session, now: datetime) -> int:
    """Delete tokens that can never work again: expired, or ended by a change of their
    owner. Returns how many."""
    stale_owner = (
        select(User.id)
        .where(User.id == PersonalAccessToken.user_id)
        .where(User.token_version != PersonalAccessToken.owner_token_version)
        .exists()
    )
    expired = PersonalAccessToken.expires_at < now
    statement = delete(PersonalAccessToken).where(or_(expired, stale_owner))
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount
