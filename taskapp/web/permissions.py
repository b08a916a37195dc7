"""Who is calling and what they may do: a JWT access token or a personal access token
(``tap_...``), the caller's role, and the scopes an operation needs.

A personal access token is checked by the loader that ``auth/tokens.py`` registers with
:func:`personal_token_loader` (the web layer knows no resource package). Once it is
checked, the request looks to every view exactly as a JWT request does:
``flask_jwt_extended.current_user`` is the owner and ``get_jwt()`` holds claims with the
owner's ``role`` plus ``type: "personal"`` and the token's ``scopes``.

Roles and scopes: a JWT session has every scope its role allows; a personal access
token has the scopes it was created with (never more than its owner's role allows).
"""

from functools import wraps

from flask import abort, current_app, g, request
from flask_jwt_extended import get_current_user, get_jwt, verify_jwt_in_request

from taskapp.models import Role
from taskapp.personal_tokens import PREFIX, scopes_for_role
from taskapp.web.access import note_user
from taskapp.web.messages import PERMISSION_DENIED
from taskapp.web.ratelimit import check_personal_token

PERSONAL = "personal"
LOADER_KEY = "taskapp.personal_token_loader"


def personal_token_loader(app, callback) -> None:
    """Register ``callback(token) -> (user, claims)``; it aborts 401 for a bad token."""
    app.extensions[LOADER_KEY] = callback


def current_role() -> str:
    return get_jwt()["role"]


def is_personal_token() -> bool:
    return get_jwt().get("type") == PERSONAL


def current_scopes() -> frozenset[str]:
    claims = get_jwt()
    if claims.get("type") == PERSONAL:
        return frozenset(claims["scopes"])
    return scopes_for_role(Role(claims["role"]))


def forbid_personal_token() -> None:
    """403 for a personal access token (token management, logout, passwords)."""
    if is_personal_token():
        abort(403, PERMISSION_DENIED)


def _bearer_personal_token() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer" and credentials.startswith(PREFIX):
        return credentials
    return None


def authenticate() -> None:
    """Verify the bearer token, JWT or personal; 401 unless it is valid and live, 429
    when a personal token is over its rate limit."""
    token = _bearer_personal_token()
    if token is None:
        verify_jwt_in_request()
        note_user(get_current_user().id)
        return
    user, claims = current_app.extensions[LOADER_KEY](token)
    note_user(user.id)
    check_personal_token(claims["pat"])
    # The names flask-jwt-extended's get_jwt() and current_user read (pinned version).
    g._jwt_extended_jwt = claims
    g._jwt_extended_jwt_header = {}
    g._jwt_extended_jwt_user = {"loaded_user": user}
    g._jwt_extended_jwt_location = "headers"


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
