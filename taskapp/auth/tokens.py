"""JWT issuing and the flask-jwt-extended callbacks that verify tokens, and the check of
personal access tokens.

A JWT is accepted only if its user exists, is active, still has the token version the
token was minted with (role, password or activation changes bump it), its ``jti`` is not
revoked and its session (``sid``, shared by every token of one login, whatever refresh
rotation minted it) has not ended. All of that is one SQL query per request, against the
database rather than Redis, so revocation holds when Redis is down. A personal access
token is accepted only if its hash is stored, it has not expired, and its owner is
active and still has the token version the token was made with: one query too.
"""

import secrets
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import flask_smorest
from flask import current_app, g, request
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import exists, false, select

from taskapp.auth import personal_tokens, revocations
from taskapp.extensions import db
from taskapp.models import RevokedSession, RevokedToken, Role, User, utcnow
from taskapp.web.api import MAX_ID, UNAUTHENTICATED_HEADERS
from taskapp.web.messages import (
    BAD_AUTHORIZATION_HEADER,
    INVALID_REFRESH,
    INVALID_TOKEN,
    MALFORMED_HEADER,
    NO_CREDENTIALS,
    TOKEN_NOT_VALID,
)
from taskapp.web.permissions import PERSONAL, PersonalTokens, personal_token_loader


def issue_tokens(user: User, sid: str | None = None) -> dict[str, str]:
    """A new pair; ``sid`` continues a login (refresh), None starts one (login)."""
    claims = {"role": user.role.value, "ver": user.token_version, "sid": sid or new_sid()}
    identity = str(user.id)
    return {
        "access": create_access_token(identity=identity, additional_claims=claims),
        "refresh": create_refresh_token(identity=identity, additional_claims=claims),
    }


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
    """The ``sid`` claim; None for tokens minted before sessions existed."""
    sid = payload.get("sid")
    return sid if isinstance(sid, str) and 0 < len(sid) <= 64 else None


def _token_state(payload: dict) -> tuple[AuthUser | None, bool]:
    """The token's user if the token is still good (else None), and whether the token
    itself was revoked while its session is still live (a replayed refresh token)."""
    user_id = user_id_of(payload)
    jti = payload.get("jti")
    if user_id is None or not isinstance(jti, str):
        return None, False
    token_revoked = exists().where(RevokedToken.jti == jti)
    sid = session_id_of(payload)
    session_ended = exists().where(RevokedSession.sid == sid) if sid else false()
    query = select(*AUTH_COLUMNS, token_revoked, session_ended).where(User.id == user_id)
    row = db.session.connection().execute(query).first()
    if row is None:
        return None, False
    *values, is_revoked, has_ended = row
    user = AuthUser(*values)
    if has_ended or not user.is_active or user.token_version != payload.get("ver"):
        return None, False
    if is_revoked:
        return None, True
    return user, False


def load_token_user(payload: dict) -> AuthUser | None:
    """The token's user if the token is still good, else None (one SELECT)."""
    return _token_state(payload)[0]


def refresh_not_valid():
    """401 for a refresh token that cannot be used, in SimpleJWT's words and code."""
    flask_smorest.abort(401, message=INVALID_REFRESH, code=TOKEN_NOT_VALID)


def decode_refresh_token(token: str) -> tuple[dict, User]:
    """Decode a refresh token from a request body; 401 unless it is valid and live. A
    refresh token used a second time ends its whole session: whoever holds the newer
    pair (the thief or the owner) is logged out too."""
    try:
        payload = decode_token(token)
    except PyJWTError:
        refresh_not_valid()
    if payload.get("type") != "refresh":
        refresh_not_valid()
    user, replayed = _token_state(payload)
    if replayed:
        end_session_and_refuse(payload)
    if user is None:
        refresh_not_valid()
    return payload, user


def revoke(*payloads: dict) -> None:
    """Revoke the tokens; a refresh token revoked meanwhile (replayed concurrently)
    ends its session and answers 401."""
    if not revocations.revoke(db.session, *payloads):
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
    found = personal_tokens.authenticate(db.session, token_hash_key(), token, now, AUTH_COLUMNS)
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
    personal_token_loader(
        app,
        PersonalTokens(
            personal_tokens.PREFIX, load_personal_token, personal_tokens.scopes_for_role
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
