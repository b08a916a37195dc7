"""What a stream was opened with, and whether it still holds.

A stream is opened with a credential (a JWT, a personal access token, or a ticket that
one of those asked for) and must end soon after that credential does: logout (its
session ended), deactivation, a role or password change (the user's token version moved
on), a personal token revoked or expired, or the JWT's own expiry. The stream server
checks every open stream's credential in a few set-based queries every couple of
seconds (:func:`ended`), not one query per stream.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from taskapp.auth.models import PersonalAccessToken, RevokedSession, RevokedToken
from taskapp.models import Role
from taskapp.users.models import User


@dataclass(frozen=True, slots=True)
class Credential:
    user_id: int
    role: Role
    token_version: int
    sid: str | None = None
    """The JWT's login session (logout ends it)."""
    jti: str | None = None
    """The JWT itself (revoked on refresh rotation)."""
    pat_id: int | None = None
    expires_at: datetime | None = None
    """The JWT's expiry (a personal token's is read from its row)."""


def ended(session: Session, credentials: list[Credential], now: datetime) -> set[Credential]:
    """The credentials among ``credentials`` that no longer hold."""
    if not credentials:
        return set()
    users = dict(
        session.execute(
            select(User.id, User.token_version).where(
                User.id.in_({c.user_id for c in credentials}), User.is_active
            )
        ).all()
    )
    sids = {c.sid for c in credentials if c.sid}
    ended_sessions = set(
        session.execute(select(RevokedSession.sid).where(RevokedSession.sid.in_(sids))).scalars()
        if sids
        else ()
    )
    jtis = {c.jti for c in credentials if c.jti}
    revoked = set(
        session.execute(select(RevokedToken.jti).where(RevokedToken.jti.in_(jtis))).scalars()
        if jtis
        else ()
    )
    pat_ids = {c.pat_id for c in credentials if c.pat_id}
    pats = (
        {
            row.id: row
            for row in session.execute(
                select(
                    PersonalAccessToken.id,
                    PersonalAccessToken.owner_token_version,
                    PersonalAccessToken.expires_at,
                ).where(PersonalAccessToken.id.in_(pat_ids))
            )
        }
        if pat_ids
        else {}
    )
    return {c for c in credentials if not _holds(c, users, ended_sessions, revoked, pats, now)}


def _holds(c: Credential, users, ended_sessions, revoked, pats, now) -> bool:
    if users.get(c.user_id) != c.token_version:
        return False  # deactivated, deleted, or role/password changed
    if c.expires_at is not None and c.expires_at <= now:
        return False
    if c.sid in ended_sessions or c.jti in revoked:
        return False
    if c.pat_id is not None:
        pat = pats.get(c.pat_id)
        if pat is None or pat.owner_token_version != c.token_version:
            return False
        if pat.expires_at is not None and pat.expires_at <= now:
            return False
    return True
