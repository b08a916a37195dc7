"""Revoked token ids (logout, refresh rotation), kept in the database rather than Redis
so that revocation holds when Redis is down."""

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapp.models import RevokedToken


def revoke(session: Session, *payloads: dict) -> bool:
    """Record the tokens' ids as revoked; False if one was revoked already (a refresh
    token replayed concurrently loses this race at the primary key), and then nothing
    is recorded."""
    for payload in payloads:
        expires_at = datetime.fromtimestamp(payload["exp"], UTC)
        session.add(RevokedToken(jti=payload["jti"], expires_at=expires_at))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def purge_expired(session: Session, now: datetime) -> int:
    """Drop revocations of tokens that have expired anyway; returns how many."""
    return session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now)).rowcount
