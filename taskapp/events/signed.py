"""Opaque, tamper-evident positions handed to clients: the sync feed's ``next`` token
and the event stream's event ids.

A token is a position in the log (log.py), the time it was issued, and for the feed's
first pass the last task id sent; signed with itsdangerous (the same signer the listing
cursors use) under a key given by the caller and a salt per kind, so a token edited by
hand, or an event id offered as a sync token, is refused. A token issued longer ago than
the retention is refused as expired: the client starts again from scratch.
"""

from dataclasses import dataclass

from itsdangerous import BadData, URLSafeSerializer

from taskapp.events.log import Position

FEED_SALT = "taskapp.changes"
EVENT_SALT = "taskapp.events"
MAX_TOKEN_LENGTH = 200


class BadToken(ValueError):
    """Not a token we issued (forged, edited, truncated, or of another kind)."""


class ExpiredToken(ValueError):
    """A genuine token issued before the retained history."""


@dataclass(frozen=True, slots=True)
class Token:
    position: Position
    issued: int
    """Unix seconds."""
    after_task: int | None = None
    """Feed only: during the first pass (the full current set), the last task id sent."""


def dump(key: str, salt: str, token: Token) -> str:
    payload = [token.position.seq, token.position.id, token.issued]
    if token.after_task is not None:
        payload.append(token.after_task)
    return URLSafeSerializer(key, salt=salt).dumps(payload)


def load(key: str, salt: str, text: str, now: float, retention_seconds: float) -> Token:
    """The token ``text`` stands for; BadToken or ExpiredToken."""
    if not text or len(text) > MAX_TOKEN_LENGTH:
        raise BadToken(text)
    try:
        payload = URLSafeSerializer(key, salt=salt).loads(text)
    except (BadData, UnicodeError) as error:
        raise BadToken(text) from error
    if not _well_formed(payload):
        raise BadToken(text)
    seq, entry_id, issued, *rest = payload
    if issued < now - retention_seconds:
        raise ExpiredToken(text)
    return Token(Position(seq, entry_id), issued, rest[0] if rest else None)


def _well_formed(payload) -> bool:
    return (
        isinstance(payload, list)
        and len(payload) in (3, 4)
        and all(isinstance(value, int) and not isinstance(value, bool) for value in payload)
        and all(value >= 0 for value in payload)
    )
