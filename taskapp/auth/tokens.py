"""JWT issuing and the flask-jwt-extended callbacks that verify tokens, and the check of
personal access tokens.

A JWT is accepted only if its claims have the types and ranges this app mints them with
(:func:`well_formed`), its user exists, is active, still has the token version the
token was minted with (role, password or activation changes bump it), its ``jti`` is not
revoked and its session (``sid``, shared by every token of one login, whatever refresh
rotation minted it) has not ended. All of that is one SQL query per request, against the
database rather than Redis, so revocation holds when Redis is down. A personal access
token is accepted only if its hash is stored, it has not expired, and its owner is
active and still has the token version the token was made with: one query too.
"""

import math
import re
import secrets
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import flask_smorest
from flask import current_app, g, request
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy import bindparam, exists, select

from taskapp.auth import personal_tokens, revocations
from taskapp.auth.models import RevokedSession, RevokedToken
from taskapp.db import reads
from taskapp.extensions import db
from taskapp.models import Role, utcnow
from taskapp.users.models import User
from taskapp.web.api import MAX_ID, UNAUTHENTICATED_HEADERS
from taskapp.web.messages import (
    BAD_AUTHORIZATION_HEADER,
    INVALID_REFRESH,
    INVALID_TOKEN,
    MALFORMED_HEADER,
    NO_CREDENTIALS,
    TOKEN_NOT_VALID,
)
from taskapp.web.permissions import PERSONAL, TokenLoaders, register_token_loaders


def issue_tokens(user: User, sid: str | None = None) -> dict[str, str]:
    """A new pair; ``sid`` continues a login (refresh), None starts one (login)."""
    claims = _claims(user, sid or new_sid())
    return {
        "access": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh": create_refresh_token(identity=str(user.id), additional_claims=claims),
    }


def issue_access(user: User, sid: str | None) -> dict[str, str]:
    """An access token of the login ``sid`` (refresh without rotation)."""
    claims = _claims(user, sid)
    return {"access": create_access_token(identity=str(user.id), additional_claims=claims)}


def _claims(user: User, sid: str | None) -> dict:
    claims = {"role": user.role.value, "ver": user.token_version}
    return claims if sid is None else {**claims, "sid": sid}


@dataclass(frozen=True, slots=True)
class AuthUser:
    """The caller as the token check reads them: what views, permissions and the answer
    of ``/api/auth/me/`` need, read with one Core SELECT (no ORM ``User`` is built on
    every request; a view that changes the caller's row loads it)."""

    id: int
    username: str
    email: str
    role: Role
    is_active: bool
    date_joined: datetime
    token_version: int


AUTH_COLUMNS = [getattr(User.__table__.c, field.name) for field in fields(AuthUser)]
TOKEN_STATE = (
    select(
        *AUTH_COLUMNS,
        RevokedToken.jti,
        RevokedToken.revoked_at,
        exists().where(RevokedSession.sid == bindparam("sid")),
    )
    .select_from(User)
    .outerjoin(RevokedToken, RevokedToken.jti == bindparam("jti"))
    .where(User.id == bindparam("user_id"))
)
"""The token check, built once (its compiled form is cached with it): the user's row,
when the token was revoked (if it was), whether its session ended (``sid`` null: never)."""


# What the claims of a JWT this app minted look like, checked before anything reads
# them: a token signed with our key but holding odd claims (a list for ``role``, a NUL
# in ``sid``, a string ``ver``, an ``exp`` past year 9999...) is simply not valid, and
# never reaches the database or a comparison with a wild value.
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


def user_id_of(payload: dict) -> int | None:
    """The ``sub`` claim as a user id, or None if it cannot be one (a token signed with
    our key but minted by hand must not reach the database with a wild value)."""
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub.isascii() or not sub.isdigit():
        return None
    user_id = int(sub)
    return user_id if 1 <= user_id <= MAX_ID else None


def new_sid() -> str:
    return secrets.token_hex(16)


def session_id_of(payload: dict) -> str | None:
    """The ``sid`` claim (checked by :func:`well_formed`); None for tokens minted
    before sessions existed."""
    return payload.get("sid")


@dataclass(frozen=True, slots=True)
class TokenState:
    """What the one token query found: the token's user if everything but the token's
    own revocation holds (user active, token version, session live), and when the token
    was revoked (None if it was not; ``datetime.min`` for rows older than the column)."""

    user: AuthUser | None
    revoked_at: datetime | None


REFUSED = TokenState(None, None)
LONG_AGO = datetime.min.replace(tzinfo=UTC)


def _token_state(payload: dict) -> TokenState:
    user_id = user_id_of(payload)
    if user_id is None or not well_formed(payload):
        return REFUSED
    params = {"user_id": user_id, "jti": payload["jti"], "sid": session_id_of(payload)}
    row = reads(db).execute(TOKEN_STATE, params).first()
    if row is None:
        return REFUSED
    *values, revoked_jti, revoked_at, has_ended = row
    user = AuthUser(*values)
    if has_ended or not user.is_active or user.token_version != payload["ver"]:
        return REFUSED
    if revoked_jti is not None:
        return TokenState(user, revoked_at or LONG_AGO)
    return TokenState(user, None)


def load_token_user(payload: dict) -> AuthUser | None:
    """The token's user if the token is still good, else None (one SELECT)."""
    state = _token_state(payload)
    return state.user if state.revoked_at is None else None


def refresh_not_valid():
    """401 for a refresh token that cannot be used, in SimpleJWT's words and code."""
    flask_smorest.abort(401, message=INVALID_REFRESH, code=TOKEN_NOT_VALID)


def rotates() -> bool:
    """JWT_ROTATE_REFRESH_TOKENS: refresh answers a new pair and the refresh token used
    is revoked (the default); off, refresh answers an access token only and the refresh
    token stays good until it expires or its session ends (SimpleJWT's defaults)."""
    return current_app.config["JWT_ROTATE_REFRESH_TOKENS"]


def _reuse_grace() -> timedelta:
    return timedelta(seconds=current_app.config["JWT_REFRESH_REUSE_GRACE_SECONDS"])


def decode_refresh_token(token: str) -> tuple[dict, User, bool]:
    """Decode a refresh token from a request body; 401 unless it is valid and live.
    Returns its claims, its user, and whether it was used (rotated away) already: within
    JWT_REFRESH_REUSE_GRACE_SECONDS of that first use it still answers (racing tabs,
    retried requests); later, a second use means it leaked, and ends its whole session
    (whoever holds the newer pair, the thief or the owner, is logged out too)."""
    try:
        payload = decode_token(token)
    except (PyJWTError, JWTExtendedException):  # the latter: a claim it needs is missing
        refresh_not_valid()
    if payload.get("type") != "refresh":
        refresh_not_valid()
    state = _token_state(payload)
    if state.user is None:
        refresh_not_valid()
    used = state.revoked_at is not None
    if used and utcnow() - state.revoked_at > _reuse_grace():
        end_session_and_refuse(payload)
    return payload, state.user, used


def revoke(*payloads: dict) -> None:
    """Revoke the tokens; a refresh token revoked meanwhile (used concurrently) ends its
    session and answers 401, unless a reuse grace is set: then the concurrent use is,
    by definition, within it, and nothing more is recorded."""
    revoked = revocations.revoke(db.session, utcnow(), *payloads)
    if not revoked and _reuse_grace() <= timedelta(0):
        end_session_and_refuse(payloads[-1])


def end_session(payload: dict) -> None:
    """End the login ``payload`` belongs to: all its access and refresh tokens."""
    sid = session_id_of(payload)
    if sid is not None:
        lifetime = current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
        revocations.end_session(db.session, sid, datetime.now(UTC) + lifetime)


def end_session_and_refuse(payload: dict):
    db.session.rollback()
    end_session(payload)
    db.session.commit()
    refresh_not_valid()


def load_personal_token(token: str) -> tuple[AuthUser, dict]:
    """The owner of a personal access token and the claims the request runs with; 401
    unless the token is good. One Core SELECT, as the JWT check makes, and the owner is
    the same :class:`AuthUser` a JWT request gets. ``last_used_at`` is stamped at most
    once a minute, in its own short transaction (so that a read-only request's rollback
    cannot lose it): one extra statement per token per minute, none on the others."""
    now = utcnow()
    found = personal_tokens.authenticate(reads(db), token_hash_key(), token, now, AUTH_COLUMNS)
    if found is None:
        flask_smorest.abort(401, message=INVALID_TOKEN, code=TOKEN_NOT_VALID)
    pat, values = found
    user = AuthUser(*values)
    if personal_tokens.needs_touch(pat, now):
        db.session.commit()  # end the read first: never hold two pooled connections at once
        with db.engine.begin() as connection:
            personal_tokens.touch(connection, pat.id, now)
    claims = {
        "type": PERSONAL,
        "sub": str(user.id),
        "role": user.role.value,
        "pat": pat.id,
        "scopes": pat.scope_list,
    }
    return user, claims


def token_hash_key() -> bytes:
    return current_app.config["TOKEN_HASH_KEY"].encode()


def _unauthorized(message: str, code: str | None = None):
    body = {"detail": message} if code is None else {"detail": message, "code": code}
    return body, 401, UNAUTHENTICATED_HEADERS


def init_jwt(app, jwt: JWTManager) -> None:
    register_token_loaders(
        app,
        TokenLoaders(
            personal_prefix=personal_tokens.PREFIX,
            load_personal=load_personal_token,
            load_jwt_user=load_token_user,
            scopes_for_role=personal_tokens.scopes_for_role,
        ),
    )

    @jwt.token_in_blocklist_loader
    def _token_is_dead(_header: dict, payload: dict) -> bool:
        user = load_token_user(payload)
        g.taskapp_user = user
        return user is None

    @jwt.user_lookup_loader
    def _current_user(_header: dict, _payload: dict) -> User | None:
        return g.get("taskapp_user")

    @jwt.unauthorized_loader
    def _missing(_reason: str):
        if request.headers.get("Authorization"):
            return _unauthorized(MALFORMED_HEADER, BAD_AUTHORIZATION_HEADER)
        return _unauthorized(NO_CREDENTIALS)

    def _invalid(*_details):
        return _unauthorized(INVALID_TOKEN, TOKEN_NOT_VALID)

    for register in (
        jwt.invalid_token_loader,
        jwt.expired_token_loader,
        jwt.revoked_token_loader,
        jwt.user_lookup_error_loader,
        jwt.needs_fresh_token_loader,
    ):
        register(_invalid)
