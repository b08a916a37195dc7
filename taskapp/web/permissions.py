"""Who is calling and what they may do: a JWT access token or a personal access token
(``tap_...``), the caller's role, and the scopes an operation needs.

A personal access token is checked by the loader that ``auth/tokens.py`` registers with
:func:`register_token_loaders` (the web layer knows no resource package). Once it is
checked, the request looks to every view exactly as a JWT request does: this module's
``current_user`` is the owner and its ``get_jwt()`` holds claims with the owner's
``role`` plus ``type: "personal"`` and the token's ``scopes``. Views import those two
names from here, never from flask-jwt-extended: this is the one adapter over its public
API. Once verified, the caller and the claims are kept in ``g.taskapp_caller`` (our own
name), for either kind of token: the views read ``current_user`` a dozen times a request,
and each read is then one lookup.

A JWT's ``Authorization`` header that flask-jwt-extended accepted once is remembered with
its claims (:mod:`taskapp.web.verified_tokens`): the same header again skips the decoding,
never the token check's query, which the auth feature hands over as ``load_jwt_user``.

The audit actor is set here, in :func:`authenticate`, once the caller is known.

The role that decides is the one stored in the database (``current_user.role``, read by
the token check's one query), never a token's ``role`` claim.

Roles and scopes: a JWT session has every scope its role allows; a personal access
token has the scopes it was created with (never more than its owner's role allows).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

import flask_jwt_extended
from flask import abort, current_app, g, request
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import RevokedTokenError
from werkzeug.local import LocalProxy

from taskapp.audit import act_as
from taskapp.db import read_only_request
from taskapp.extensions import db
from taskapp.models import Role, Source
from taskapp.web import verified_tokens
from taskapp.web.access import note_user
from taskapp.web.messages import PERMISSION_DENIED
from taskapp.web.ratelimit import check_personal_token

PERSONAL = "personal"
LOADERS_KEY = "taskapp.token_loaders"


@dataclass(frozen=True)
class TokenLoaders:
    """What the auth feature tells the web layer about checking a caller's token."""

    personal_prefix: str
    load_personal: Callable[[str], tuple]
    """``load_personal(token) -> (user, claims)``; aborts 401 for a bad token."""
    load_jwt_user: Callable[[dict], object | None]
    """The user of a JWT's verified claims if the token is still good, else None: the
    check flask-jwt-extended's blocklist loader makes."""
    scopes_for_role: Callable[[Role], frozenset[str]]


def register_token_loaders(app, loaders: TokenLoaders) -> None:
    """Register how tokens are recognised, loaded and scoped; after ``JWTManager.init_app``
    (the memo of verified tokens reads its leeway)."""
    app.extensions[LOADERS_KEY] = loaders
    verified_tokens.install(app)


def get_jwt() -> dict:
    """The claims the request runs with (a JWT's, or a personal token's)."""
    caller = g.get("taskapp_caller")
    return caller[1] if caller is not None else flask_jwt_extended.get_jwt()


def _current_user():
    caller = g.get("taskapp_caller")
    return caller[0] if caller is not None else flask_jwt_extended.get_current_user()


current_user = LocalProxy(_current_user)
"""The authenticated caller (a JWT's user, or a personal token's owner)."""


def current_role() -> str:
    return current_user.role.value


def is_personal_token() -> bool:
    return get_jwt().get("type") == PERSONAL


def current_scopes() -> frozenset[str]:
    claims = get_jwt()
    if claims.get("type") == PERSONAL:
        return frozenset(claims["scopes"])
    return current_app.extensions[LOADERS_KEY].scopes_for_role(current_user.role)


def forbid_personal_token() -> None:
    """403 for a personal access token (token management, logout, passwords)."""
    if is_personal_token():
        abort(403, PERMISSION_DENIED)


def _bearer_personal_token() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    prefix = current_app.extensions[LOADERS_KEY].personal_prefix
    if scheme == "Bearer" and credentials.startswith(prefix):
        return credentials
    return None


def authenticate() -> None:
    """Verify the bearer token, JWT or personal; 401 unless it is valid and live, 429
    when a personal token is over its rate limit. Then the caller is the audit actor
    of whatever this request writes (a read-only request writes no task: it names no
    actor, and so sets up no ORM session)."""
    token = _bearer_personal_token()
    if token is None:
        user, claims = _jwt_caller()
    else:
        user, claims = current_app.extensions[LOADERS_KEY].load_personal(token)
        note_user(user.id)
        check_personal_token(claims["pat"])
    g.taskapp_caller = (user, claims)
    note_user(user.id)
    if not read_only_request():
        act_as(db.session, user.id, Source.API)


def _jwt_caller() -> tuple:
    """The user and claims of a JWT request: for a header verified before, its claims and
    the token check; else flask-jwt-extended's whole verification, and a header it
    accepted is remembered. A dead token answers as flask-jwt-extended answers it."""
    header = request.headers.get("Authorization", "")
    verified = verified_tokens.of(current_app)
    claims = verified.claims(header)
    if claims is None:
        verify_jwt_in_request()
        claims = flask_jwt_extended.get_jwt()
        verified.remember(header, claims)
        return flask_jwt_extended.get_current_user(), claims
    user = current_app.extensions[LOADERS_KEY].load_jwt_user(claims)
    if user is None:
        verified.forget(header)
        raise RevokedTokenError({}, claims)
    return user, claims


def roles_required(*roles: str, scope: str | None = None, personal_tokens: bool = True):
    """Require a valid bearer token; with ``roles``, one of them; with ``scope``, that
    scope; without ``personal_tokens``, a JWT session (else 403)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            authenticate()
            if roles and current_role() not in roles:
                abort(403, PERMISSION_DENIED)
            if not personal_tokens:
                forbid_personal_token()
            if scope is not None and scope not in current_scopes():
                abort(403, PERMISSION_DENIED)
            return view(*args, **kwargs)

        return wrapper

    return decorator
