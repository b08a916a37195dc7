"""JWT issuing and the flask-jwt-extended callbacks that verify tokens.

A token is accepted only if its user exists, is active, still has the token version the
token was minted with (role, password or activation changes bump it) and its ``jti`` is
not revoked. All of that is one SQL query per request, against the database rather than
Redis, so revocation holds when Redis is down.
"""

from dataclasses import dataclass, fields
from datetime import datetime

from flask import abort, g, request
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import exists, select

from taskapp import audit, revocations
from taskapp.extensions import db
from taskapp.models import RevokedToken, Role, Source, User
from taskapp.web.api import UNAUTHENTICATED_HEADERS
from taskapp.web.messages import INVALID_REFRESH, INVALID_TOKEN, MALFORMED_HEADER, NO_CREDENTIALS


def issue_tokens(user: User) -> dict[str, str]:
    claims = {"role": user.role.value, "ver": user.token_version}
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


def load_token_user(payload: dict) -> AuthUser | None:
    """The token's user if the token is still good, else None (one SELECT)."""
    revoked = exists().where(RevokedToken.jti == payload["jti"])
    query = select(*AUTH_COLUMNS, revoked).where(User.id == int(payload["sub"]))
    row = db.session.connection().execute(query).first()
    if row is None:
        return None
    *values, is_revoked = row
    user = AuthUser(*values)
    if is_revoked or not user.is_active or user.token_version != payload.get("ver"):
        return None
    return user


def decode_refresh_token(token: str) -> tuple[dict, User]:
    """Decode a refresh token from a request body; 401 unless it is valid and live."""
    try:
        payload = decode_token(token)
    except PyJWTError:
        abort(401, INVALID_REFRESH)
    if payload.get("type") != "refresh":
        abort(401, INVALID_REFRESH)
    user = load_token_user(payload)
    if user is None:
        abort(401, INVALID_REFRESH)
    return payload, user


def revoke(*payloads: dict) -> None:
    """Revoke the tokens; 401 if one was revoked already (a replayed refresh token)."""
    if not revocations.revoke(db.session, *payloads):
        abort(401, INVALID_REFRESH)


def _unauthorized(message: str):
    return {"detail": message}, 401, UNAUTHENTICATED_HEADERS


def init_jwt(jwt: JWTManager) -> None:
    @jwt.token_in_blocklist_loader
    def _token_is_dead(_header: dict, payload: dict) -> bool:
        user = load_token_user(payload)
        g.taskapp_user = user
        if user is not None:
            audit.act_as(db.session, user.id, Source.API)
        return user is None

    @jwt.user_lookup_loader
    def _current_user(_header: dict, _payload: dict) -> User | None:
        return g.get("taskapp_user")

    @jwt.unauthorized_loader
    def _missing(_reason: str):
        if request.headers.get("Authorization"):
            return _unauthorized(MALFORMED_HEADER)
        return _unauthorized(NO_CREDENTIALS)

    def _invalid(*_details):
        return _unauthorized(INVALID_TOKEN)

    for register in (
        jwt.invalid_token_loader,
        jwt.expired_token_loader,
        jwt.revoked_token_loader,
        jwt.user_lookup_error_loader,
        jwt.needs_fresh_token_loader,
    ):
        register(_invalid)
