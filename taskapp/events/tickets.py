"""Stream tickets: how a browser's EventSource (which cannot send an Authorization
header) opens the event stream without a long-lived credential in its URL.

A ticket is ``tkt_`` + 32 random bytes (urlsafe), asked for with a real credential
(``POST /api/events/ticket/``), valid for a minute, good for one stream: redeeming
deletes it (``DELETE ... RETURNING``, so two requests racing with one ticket cannot both
win). Only its SHA-256 is stored (the ticket has 256 random bits: a fast hash suffices).
It carries the credential that asked for it, so the stream it opens ends with that
credential.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from taskapp.events.credentials import Credential
from taskapp.events.models import StreamTicket
from taskapp.models import Role

PREFIX = "tkt_"


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()


def issue(session: Session, credential: Credential, now: datetime, lifetime: float):
    """A new ticket for ``credential`` and when it expires. The caller commits."""
    ticket = PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=lifetime)
    session.add(
        StreamTicket(
            ticket_hash=_hash(ticket),
            user_id=credential.user_id,
            token_version=credential.token_version,
            sid=credential.sid,
            pat_id=credential.pat_id,
            credential_expires_at=credential.expires_at,
            expires_at=expires_at,
        )
    )
    return ticket, expires_at


def redeem(session: Session, ticket: str, now: datetime, role_of) -> Credential | None:
    """The credential behind ``ticket`` if it is good, else None; it can never be used
    again either way. ``role_of(user_id)`` gives the user's role. The caller commits."""
    if not ticket.startswith(PREFIX) or len(ticket) > 100:
        return None
    row = session.execute(
        delete(StreamTicket)
        .where(StreamTicket.ticket_hash == _hash(ticket))
        .returning(
            StreamTicket.user_id,
            StreamTicket.token_version,
            StreamTicket.sid,
            StreamTicket.pat_id,
            StreamTicket.credential_expires_at,
            StreamTicket.expires_at,
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    role = role_of(row.user_id)
    if role is None:
        return None
    return Credential(
        user_id=row.user_id,
        role=Role(role),
        token_version=row.token_version,
        sid=row.sid,
        pat_id=row.pat_id,
        expires_at=row.credential_expires_at,
    )


def purge(session: Session, now: datetime) -> int:
    """Drop tickets nobody redeemed in time."""
    return session.execute(delete(StreamTicket).where(StreamTicket.expires_at <= now)).rowcount
