"""Revoked token ids (refresh rotation) and ended sessions (logout, a replayed refresh
token), kept in the database rather than Redis so that revocation holds when Redis is
down."""

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapp.auth.models import RevokedSession, RevokedToken


def revoke(session: Session, now: datetime, *payloads: dict) -> bool:
    """Record the tokens' ids as revoked at ``now``; False if one was revoked already (a
    refresh token used concurrently loses this race at the primary key), and then
    nothing is recorded."""
    for payload in payloads:
        expires_at = datetime.fromtimestamp(payload["exp"], UTC)
        session.add(RevokedToken(jti=payload["jti"], expires_at=expires_at, revoked_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def end_session(session: Session, sid: str, expires_at: datetime) -> None:
    """Revoke every token carrying ``sid``; ending an ended session changes nothing
    (and two concurrent logouts do not collide)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RevokedSession).values(sid=sid, expires_at=expires_at)
    session.execute(statement.on_conflict_do_nothing(index_elements=["sid"]))


def purge_expired(session: Session, now: datetime) -> int:
    """Drop revocations of tokens and sessions that have expired anyway; returns how
    many."""
    tokens = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    sessions = session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))
    return tokens.rowcount + sessions.rowcount
