"""Login, token refresh with rotation, logout with revocation, and the caller's profile."""

import logging

from flask import abort, current_app, request
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt

from taskapp.auth import tokens
from taskapp.auth.schemas import LoginSchema, RefreshSchema, TokenPairSchema
from taskapp.extensions import db, limiter
from taskapp.users.schemas import UserSchema
from taskapp.users.service import authenticate
from taskapp.web.api import Blueprint
from taskapp.web.bodies import cached_json
from taskapp.web.messages import BAD_CREDENTIALS, INVALID_REFRESH

log = logging.getLogger(__name__)
blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="JWT authentication")


def _login_username_key() -> str:
    """Failed logins are counted per username (case-insensitive) and client address.
    The limits sit inside the argument parsing: a body that cannot be parsed (see
    ``web.bodies``) or validated is refused before the limiter looks at it."""
    body = cached_json()
    username = body.get("username") if isinstance(body, dict) else None
    return f"login:{str(username or '').lower()}:{request.remote_addr}"


def _login_address_key() -> str:
    """...and per client address, whatever the username (a spray of usernames)."""
    return f"login-address:{request.remote_addr}"


def _refund_login_limits() -> None:
    """Give back the hits a successful login took: only failures count. The hit itself
    was taken before the password check, atomically (test and count are one INCR), so
    concurrent wrong passwords cannot all pass the test before any is counted."""
    for taken in limiter.current_limits:
        try:
            limiter.limiter.hit(taken.limit, *taken.request_args, cost=-1)
        except Exception:  # a storage failure must not fail a good login
            log.warning("could not give back a login limit hit", exc_info=True)


@blp.route("/login/")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, schema="Error", description="Bad credentials or inactive user")
    @blp.alt_response(429, schema="Error", description="Too many failed logins; see Retry-After")
    @limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_username_key)
    @limiter.limit(
        lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"], key_func=_login_address_key
    )
    def post(self, credentials):
        """Exchange a username and password for an access and a refresh token"""
        user = authenticate(db.session, credentials["username"], credentials["password"])
        if user is None:
            abort(401, BAD_CREDENTIALS)
        _refund_login_limits()
        db.session.commit()
        return tokens.issue_tokens(user)


@blp.route("/refresh/")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, schema="Error", description="Refresh token revoked or expired")
    def post(self, body):
        """Trade a refresh token for a new pair; the old refresh token stops working"""
        payload, user = tokens.decode_refresh_token(body["refresh"])
        tokens.revoke(payload)
        pair = tokens.issue_tokens(user, sid=tokens.session_id_of(payload))
        db.session.commit()
        return pair


@blp.route("/logout/")
class Logout(MethodView):
    @blp.auth_required()
    @blp.arguments(RefreshSchema)
    @blp.response(204)
    def post(self, body):
        """End the session: every access and refresh token of this login stops working"""
        refresh_payload, owner = tokens.decode_refresh_token(body["refresh"])
        if owner.id != current_user.id:
            abort(401, INVALID_REFRESH)
        tokens.revoke(get_jwt(), refresh_payload)
        tokens.end_session(get_jwt())
        tokens.end_session(refresh_payload)
        db.session.commit()


@blp.route("/me/")
class Me(MethodView):
    @blp.auth_required()
    @blp.response(200, UserSchema)
    def get(self):
        """The authenticated user"""
        return current_user
