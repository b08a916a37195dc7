"""Login, token refresh with rotation, logout with revocation, the caller's profile, and
personal access tokens (create, list, revoke, and their audit trail for ADMINs)."""

import logging

from flask import Response, abort, current_app, request, stream_with_context, url_for
from flask.views import MethodView
from sqlalchemy.exc import DBAPIError

from taskapp.auth import personal_tokens, tokens
from taskapp.auth.queries import listed_tokens, token_events
from taskapp.auth.schemas import (
    CalendarFeedArgsSchema,
    CalendarFeedSchema,
    LoginSchema,
    NewTokenSchema,
    RefreshedSchema,
    RefreshSchema,
    TokenCreateSchema,
    TokenEventPageSchema,
    TokenEventQueryArgsSchema,
    TokenPageSchema,
    TokenPairSchema,
    TokenQueryArgsSchema,
)
from taskapp.extensions import db, limiter
from taskapp.models import Role, Source
from taskapp.tasks import calendar_feed
from taskapp.users.passwords import PasswordHashing
from taskapp.users.schemas import UserSchema
from taskapp.users.service import authenticate
from taskapp.web.api import FORM, ID_IN_PATH, Blueprint
from taskapp.web.bodies import cached_json
from taskapp.web.messages import BAD_CREDENTIALS
from taskapp.web.paging import paginate
from taskapp.web.permissions import current_user, get_jwt

log = logging.getLogger(__name__)
blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/auth",
    description="JWT authentication and personal access tokens",
)
ADMIN = Role.ADMIN.value


def _login_username_key() -> str:
    """Failed logins are counted per username (case-insensitive) and client address.
    The limits sit inside the argument parsing: a body that cannot be parsed (see
    ``web.bodies``) or validated is refused before the limiter looks at it. A
    form-encoded login counts toward the same limit as a JSON one."""
    body = request.form if request.mimetype == FORM else cached_json()
    username = body.get("username") if hasattr(body, "get") else None
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
        try:
            user = authenticate(
                db.session,
                credentials["username"],
                credentials["password"],
                PasswordHashing.of(current_app),
            )
        except DBAPIError:  # the database failed, not the credentials: no failed login
            _refund_login_limits()
            raise
        if user is None:
            abort(401, BAD_CREDENTIALS)
        _refund_login_limits()
        db.session.commit()
        return tokens.issue_tokens(user)


@blp.route("/refresh/")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, RefreshedSchema)
    @blp.alt_response(401, schema="Error", description="Refresh token revoked or expired")
    def post(self, body):
        """Trade a refresh token for a new pair (or, without rotation, a new access token)

        With rotation (the default) the refresh token used stops working; used again
        within JWT_REFRESH_REUSE_GRACE_SECONDS it answers another pair of the same
        session, later it ends the session. With JWT_ROTATE_REFRESH_TOKENS=false the
        answer is `{"access"}` only and the refresh token works until it expires."""
        payload, user, used = tokens.decode_refresh_token(body["refresh"])
        sid = tokens.session_id_of(payload)
        if not tokens.rotates():
            return tokens.issue_access(user, sid)
        if not used:
            tokens.revoke(payload)
        pair = tokens.issue_tokens(user, sid=sid)
        db.session.commit()
        return pair


@blp.route("/logout/")
class Logout(MethodView):
    @blp.auth_required(personal_tokens=False)
    @blp.arguments(RefreshSchema)
    @blp.response(204)
    def post(self, body):
        """End the session: every access and refresh token of this login stops working"""
        refresh_payload, owner, used = tokens.decode_refresh_token(body["refresh"])
        if owner.id != current_user.id:
            tokens.refresh_not_valid()
        tokens.revoke(get_jwt(), *([] if used else [refresh_payload]))
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


@blp.route("/tokens/")
class Tokens(MethodView):
    @blp.auth_required(personal_tokens=False)
    @blp.arguments(TokenQueryArgsSchema, location="query")
    @blp.response(200, TokenPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List personal access tokens: the caller's, or (an ADMIN) one user's or all"""
        return paginate(listed_tokens(current_user, args), args["page"], args["page_size"])

    @blp.auth_required(personal_tokens=False)
    @blp.arguments(TokenCreateSchema)
    @blp.response(201, NewTokenSchema)
    @blp.alt_response(403, schema="Error", description="users:* scopes asked by an INTERN")
    def post(self, data):
        """Create a personal access token; its secret is shown in this answer only"""
        new = personal_tokens.create(
            db.session,
            tokens.token_hash_key(),
            current_user,
            data["name"],
            data["scopes"],
            data.get("expires_at"),
            actor_id=current_user.id,
            source=Source.API,
        )
        db.session.commit()
        return new


@blp.route(f"/tokens/<{ID_IN_PATH}:token_id>/")
class TokenById(MethodView):
    @blp.auth_required(personal_tokens=False)
    @blp.response(204)
    @blp.not_found("No such token, or not the caller's")
    def delete(self, token_id):
        """Revoke a personal access token (an ADMIN may revoke anyone's); it stops at once"""
        token = personal_tokens.get_manageable(db.session, current_user, token_id)
        personal_tokens.revoke(db.session, token, actor_id=current_user.id, source=Source.API)
        db.session.commit()


@blp.route("/token-events/")
class TokenEvents(MethodView):
    @blp.auth_required(ADMIN, personal_tokens=False)
    @blp.arguments(TokenEventQueryArgsSchema, location="query")
    @blp.response(200, TokenEventPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """Audit trail of personal access tokens: who created or revoked which, when"""
        return paginate(token_events(args), args["page"], args["page_size"])


FEED_NOT_FOUND = "No such calendar feed (rotated, or its owner's credentials changed)."
CALENDAR_RESPONSE = {
    "description": "iCalendar (RFC 5545): one VTODO (or, with `as=events`, one all-day "
    "VEVENT) per visible task with a due date",
    "content": {"text/calendar": {"schema": {"type": "string"}}},
    "headers": {"ETag": {"schema": {"type": "string"}}},
}


@blp.route("/calendar-feed/")
class CalendarFeedUrl(MethodView):
    @blp.auth_required(personal_tokens=False)
    @blp.response(200, CalendarFeedSchema)
    def post(self):
        """Get a new secret calendar feed URL; the previous one stops working"""
        secret = calendar_feed.rotate(db.session, current_user)
        db.session.commit()
        return {"url": url_for("auth.CalendarFeedBody", secret=secret, _external=True)}


@blp.route("/calendar-feed/<secret>.ics")
class CalendarFeedBody(MethodView):
    @blp.arguments(CalendarFeedArgsSchema, location="query", as_kwargs=True)
    @blp.doc(responses={"200": CALENDAR_RESPONSE})
    @blp.alt_response(304, description="Unchanged since the ETag sent in If-None-Match")
    @blp.not_found(FEED_NOT_FOUND)
    def get(self, secret, form):
        """The caller's tasks as an iCalendar feed (the secret URL is the credential)"""
        domain = current_app.config["CALENDAR_UID_DOMAIN"]
        state = calendar_feed.feed_state(db.session, secret, form, domain)
        if state is None:
            abort(404, FEED_NOT_FOUND)
        user, etag = state
        headers = {"ETag": f'"{etag}"', "Cache-Control": "private, no-cache"}
        if request.if_none_match.contains(etag):
            return Response(status=304, headers=headers)
        chunks = calendar_feed.feed_chunks(db.session, user, domain, form)
        return Response(
            stream_with_context(chunks),
            mimetype="text/calendar",
            headers=headers,
        )
