"""Revoked tokens and logins, personal access tokens and their audit events."""

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskapp.models import (
    SQLITE_AUTOINCREMENT,
    Base,
    Source,
    UTCDateTime,
    enum_column,
    utcnow,
)
from taskapp.users.models import User


class RevokedToken(Base):
    """JWT ids that must no longer be accepted (logout, refresh rotation).

    Kept in the database, not Redis, so that revocation holds when Redis is down.
    Rows past ``expires_at`` are useless and purged by the periodic job.
    """

    __tablename__ = "revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it was revoked (NULL for rows older than the column): a refresh token used
    again within JWT_REFRESH_REUSE_GRACE_SECONDS of it still answers."""


class RevokedSession(Base):
    """Logins that have ended (logout, a replayed refresh token). Every token of a login
    carries its ``sid``, whatever rotation minted it, so one row ends them all. Rows
    past ``expires_at`` (no token of the session can still be alive) are purged."""

    __tablename__ = "revoked_session"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PersonalAccessToken(Base):
    """A long-lived token for scripts (``tap_...``), owned by a user and limited to scopes.

    Only a keyed hash of the token is stored (see :mod:`taskapp.auth.personal_tokens`);
    the unique index on it is the one lookup a request makes. ``owner_token_version`` is
    the owner's ``token_version`` when the token was made: a role, password or activation
    change bumps the owner's version and so ends the token, as it ends their JWTs.
    """

    __tablename__ = "personal_access_token"
    __table_args__ = SQLITE_AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(200))
    """Space-separated scope names."""
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    owner_token_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship(lazy="raise")

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class TokenAction(enum.StrEnum):
    CREATED = "CREATED"
    REVOKED = "REVOKED"


class TokenEvent(Base):
    """Who created or revoked which personal access token, and when (read by ADMINs).
    ``token_id`` is deliberately not a foreign key: events outlive their token."""

    __tablename__ = "token_event"
    __table_args__ = (Index("ix_token_event_created", "created_at", "id"), SQLITE_AUTOINCREMENT)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(Integer)
    token_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[TokenAction] = mapped_column(enum_column(TokenAction, length=10))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    """None when the CLI acted."""
    source: Mapped[Source] = mapped_column(enum_column(Source, length=10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
