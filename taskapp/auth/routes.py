"""Login, token refresh with rotation, logout with revocation, and the caller's profile."""

from flask import Response, abort, current_app, request, stream_with_context, url_for
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt

from taskapp import calendar_feed
from taskapp.auth import tokens
from taskapp.auth.schemas import CalendarFeedSchema, LoginSchema, RefreshSchema, TokenPairSchema
from taskapp.extensions import db, limiter
from taskapp.users.schemas import UserSchema
from taskapp.users.service import authenticate
from taskapp.web.api import Blueprint
from taskapp.web.messages import BAD_CREDENTIALS, INVALID_REFRESH

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="JWT authentication")


def _login_rate_key() -> str:
    """Failed logins are counted per username and client address."""
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else None
    return f"login:{str(username or '').lower()}:{request.remote_addr}"


def _login_failed(response) -> bool:
    return response.status_code == 401


@blp.route("/login/")
class Login(MethodView):
    decorators = [
        limiter.limit(
            lambda: current_app.config["LOGIN_RATE_LIMIT"],
            key_func=_login_rate_key,
            deduct_when=_login_failed,
        )
    ]

    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, schema="Error", description="Bad credentials or inactive user")
    @blp.alt_response(429, schema="Error", description="Too many failed logins; see Retry-After")
    def post(self, credentials):
        """Exchange a username and password for an access and a refresh token"""
        user = authenticate(db.session, credentials["username"], credentials["password"])
        if user is None:
            abort(401, BAD_CREDENTIALS)
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
        pair = tokens.issue_tokens(user)
        db.session.commit()
        return pair


@blp.route("/logout/")
class Logout(MethodView):
    @blp.auth_required()
    @blp.arguments(RefreshSchema)
    @blp.response(204)
    def post(self, body):
        """Revoke the caller's access token and the given refresh token"""
        refresh_payload, owner = tokens.decode_refresh_token(body["refresh"])
        if owner.id != current_user.id:
            abort(401, INVALID_REFRESH)
        tokens.revoke(get_jwt(), refresh_payload)
        db.session.commit()


@blp.route("/me/")
class Me(MethodView):
    @blp.auth_required()
    @blp.response(200, UserSchema)
    def get(self):
        """The authenticated user"""
        return current_user


FEED_NOT_FOUND = "No such calendar feed (rotated, or its owner's credentials changed)."
CALENDAR_RESPONSE = {
    "description": "iCalendar (RFC 5545): one VTODO per visible task with a due date",
    "content": {"text/calendar": {"schema": {"type": "string"}}},
    "headers": {"ETag": {"schema": {"type": "string"}}},
}


@blp.route("/calendar-feed/")
class CalendarFeedUrl(MethodView):
    @blp.auth_required()
    @blp.response(201, CalendarFeedSchema)
    def post(self):
        """Get a new secret calendar feed URL; the previous one stops working"""
        secret = calendar_feed.rotate(db.session, current_user)
        db.session.commit()
        return {"url": url_for("auth.CalendarFeedBody", secret=secret, _external=True)}


@blp.route("/calendar-feed/<secret>.ics")
class CalendarFeedBody(MethodView):
    @blp.doc(responses={"200": CALENDAR_RESPONSE})
    @blp.alt_response(304, description="Unchanged since the ETag sent in If-None-Match")
    @blp.not_found(FEED_NOT_FOUND)
    def get(self, secret):
        """The caller's tasks as an iCalendar feed (the secret URL is the credential)"""
        state = calendar_feed.feed_state(db.session, secret)
        if state is None:
            abort(404, FEED_NOT_FOUND)
        user, etag = state
        headers = {"ETag": f'"{etag}"', "Cache-Control": "private, no-cache"}
        if request.if_none_match.contains(etag):
            return Response(status=304, headers=headers)
        chunks = calendar_feed.feed_chunks(db.session, user, request.host.split(":")[0])
        return Response(
            stream_with_context(chunks),
            mimetype="text/calendar",
            headers=headers,
        )
