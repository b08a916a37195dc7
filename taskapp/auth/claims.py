"""What the claims of a JWT this app minted look like, checked before anything reads
them: a token signed with our key but holding odd claims (a list for ``role``, a NUL in
``sid``, a string ``ver``, an ``exp`` past year 9999...) is simply not valid, and never
reaches the database or a comparison with a wild value."""

import math
import re

from taskapp.models import Role

ROLES = tuple(role.value for role in Role)
TYPES = ("access", "refresh")
"""Tuples, not sets: a claim may be a list or an object, which a set cannot hash."""
TOKEN_ID = re.compile(r"[\x21-\x7e]{1,64}")
"""``jti`` and ``sid``: printable ASCII, as long as their columns hold (64)."""
MAX_TIMESTAMP = 253_402_300_799
"""9999-12-31T23:59:59Z: the last instant a datetime (and so a revocation) can hold."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_token_id(value) -> bool:
    return isinstance(value, str) and TOKEN_ID.fullmatch(value) is not None


def _is_timestamp(value) -> bool:
    return _is_number(value) and 0 <= value <= MAX_TIMESTAMP


def well_formed(payload: dict) -> bool:
    """True if every claim the app relies on has the type and range it mints. ``sid`` may
    be absent (tokens minted before sessions existed); ``sub`` is checked by the caller
    (it becomes the user id)."""
    return (
        payload.get("type") in TYPES
        and payload.get("role") in ROLES
        and _is_int(payload.get("ver"))
        and _is_token_id(payload.get("jti"))
        and ("sid" not in payload or _is_token_id(payload["sid"]))
        and _is_timestamp(payload.get("exp"))
        and all(_is_timestamp(payload[name]) for name in ("iat", "nbf") if name in payload)
        and (isinstance(payload.get("fresh", False), bool) or _is_number(payload["fresh"]))
    )
