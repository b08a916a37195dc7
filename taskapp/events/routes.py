"""Live changes over HTTP: the sync feed, the event stream and its tickets."""

import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import flask_smorest
from flask import Flask, Response, abort, current_app, has_app_context, request
from flask.views import MethodView
from sqlalchemy import select

from taskapp import audit
from taskapp.events import credentials, feed, notify, signed, stream, tickets
from taskapp.events.credentials import Credential
from taskapp.events.schemas import (
    ChangesArgsSchema,
    ChangesSchema,
    StreamArgsSchema,
    TicketSchema,
)
from taskapp.extensions import db
from taskapp.tasks.schemas import TaskSchema
from taskapp.users.models import User
from taskapp.web.api import Blueprint
from taskapp.web.dumps import compile_dump, json_response
from taskapp.web.messages import PERMISSION_DENIED
from taskapp.web.permissions import (
    PERSONAL,
    authenticate,
    current_scopes,
    current_user,
    get_jwt,
)

blp = Blueprint("events", __name__, url_prefix="/api", description="Live changes")
DUMP_TASK = compile_dump(TaskSchema())
BAD_SINCE = "Invalid sync token: pass the `next` of a previous answer, or nothing."
EXPIRED_SINCE = "This sync token is older than the retained history: sync again without `since`."
DAY = 86400


def retention_seconds() -> float:
    return current_app.config["CHANGES_RETENTION_DAYS"] * DAY


def signing_key() -> str:
    return current_app.config["JWT_SECRET_KEY"]


def _feed_token(since: str) -> signed.Token | None:
    if not since:
        return None
    try:
        return signed.load(signing_key(), signed.FEED_SALT, since, time.time(), retention_seconds())
    except signed.ExpiredToken:
        abort(410, EXPIRED_SINCE)
    except signed.BadToken:
        flask_smorest.abort(400, messages={"query": {"since": [BAD_SINCE]}})


@blp.route("/tasks/changes/")
class TaskChanges(MethodView):
    @blp.auth_required(scope="tasks:read")
    @blp.arguments(ChangesArgsSchema, location="query")
    @blp.response(200, ChangesSchema)
    @blp.alt_response(410, schema="Error", description="Token past the retained history")
    def get(self, args):
        """The caller's tasks changed or removed since a sync token (all of them without)"""
        token = _feed_token(args["since"])
        page = feed.page(db.session, current_user, token, args["page_size"], int(time.time()))
        body = {
            "changed": [DUMP_TASK(row) for row in page.changed],
            "removed": page.removed,
            "next": signed.dump(signing_key(), signed.FEED_SALT, page.next),
            "more": page.more,
        }
        return json_response(body)


# --- the event stream ------------------------------------------------------------------

SCOPE = "tasks:read"
BAD_TICKET = "Invalid or expired ticket: ask POST /api/events/ticket/ for a new one."
HUB_KEY = "taskapp.events_hub"
WAKER_KEY = "taskapp.events_waker"
_hub_lock = threading.Lock()
STREAM_DOC = {
    "description": (
        "Server-Sent Events, one per activity-log entry the caller hears of (see the "
        "project's docs/live.md): `event:` the webhook event name (or `task.removed`, "
        "`reset`), `data:` the webhook message, `id:` opaque. Resume with the "
        "Last-Event-ID header or `last_event_id`. Auth: a bearer token (a personal "
        "access token needs `tasks:read`), or `ticket`."
    ),
    "x-required-scope": SCOPE,
    "security": [{"bearerAuth": []}, {}],
}


def install_listeners() -> None:
    """Wake the stream hubs after commits that wrote activity-log entries (the factory
    calls this once per process; see notify.py)."""
    audit.after_entries_commit(_after_task_commit)


def _after_task_commit() -> None:
    if has_app_context():
        _waker(current_app).poke()


def _waker(app: Flask) -> notify.Waker:
    """The app's waker, made on first use (setdefault: one per app)."""
    waker = app.extensions.get(WAKER_KEY)
    if waker is None:
        waker = app.extensions.setdefault(WAKER_KEY, notify.Waker(app.config.get("REDIS_URL")))
    return waker


def _hub(app: Flask) -> stream.Hub:
    hub = app.extensions.get(HUB_KEY)
    if hub is None:
        with _hub_lock:
            hub = app.extensions.get(HUB_KEY)
            if hub is None:
                hub = _start_hub(app)
    return hub


def _start_hub(app: Flask) -> stream.Hub:
    @contextmanager
    def open_session():
        with app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()

    key = app.config["JWT_SECRET_KEY"]

    def sign(position):
        return signed.dump(key, signed.EVENT_SALT, signed.Token(position, int(time.time())))

    hub = stream.Hub(
        open_session,
        app.extensions["render_task"],
        sign,
        poll_seconds=app.config["EVENTS_POLL_SECONDS"],
        check_seconds=app.config["EVENTS_CREDENTIAL_CHECK_SECONDS"],
    ).start()
    if app.config.get("REDIS_URL"):
        notify.listen_for_wakeups(app.config["REDIS_URL"], hub.wake)
    _waker(app).hub = hub
    app.extensions[HUB_KEY] = hub
    return hub


def _bearer_credential() -> Credential:
    authenticate()
    if SCOPE not in current_scopes():
        abort(403, PERMISSION_DENIED)
    claims = get_jwt()
    user = current_user
    if claims.get("type") == PERSONAL:
        return Credential(user.id, user.role, user.token_version, pat_id=claims["pat"])
    return Credential(
        user.id,
        user.role,
        user.token_version,
        sid=claims.get("sid"),
        jti=claims.get("jti"),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


def _ticket_credential(ticket: str) -> Credential:
    now = datetime.now(UTC)

    def role_of(user_id):
        return db.session.execute(select(User.role).where(User.id == user_id)).scalar()

    credential = tickets.redeem(db.session, ticket, now, role_of)
    db.session.commit()
    if credential is None or credentials.ended(db.session, [credential], now):
        abort(401, BAD_TICKET)
    return credential


def _resume(args) -> tuple[object, bool]:
    """The position to resume after, and whether the stream must start with ``reset``."""
    event_id = request.headers.get("Last-Event-ID") or args.get("last_event_id")
    if not event_id:
        return None, False
    try:
        token = signed.load(
            signing_key(), signed.EVENT_SALT, event_id, time.time(), retention_seconds()
        )
    except (signed.BadToken, signed.ExpiredToken):
        return None, True
    return token.position, False


@blp.route("/events/")
class EventStream(MethodView):
    @blp.arguments(StreamArgsSchema, location="query")
    @blp.response(200, content_type="text/event-stream", description="The stream (endless)")
    @blp.alt_response(401, schema="Error", description="Not authenticated, or a bad ticket")
    @blp.alt_response(403, schema="Error", description="A personal token without tasks:read")
    @blp.doc(**STREAM_DOC)
    def get(self, args):
        """The caller's task events as they happen (Server-Sent Events)"""
        if "ticket" in args:
            credential = _ticket_credential(args["ticket"])
        else:
            credential = _bearer_credential()
        start, reset = _resume(args)
        db.session.remove()  # hold no database connection for the stream's lifetime
        app = current_app._get_current_object()
        hub = _hub(app)
        body = stream.run(
            hub,
            stream.Subscription(credential),
            start,
            reset=reset,
            sign=hub.sign,
            heartbeat_seconds=app.config["EVENTS_HEARTBEAT_SECONDS"],
        )
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return Response(body, 200, headers, mimetype="text/event-stream")


@blp.route("/events/ticket/")
class EventTicket(MethodView):
    @blp.auth_required(scope=SCOPE)
    @blp.response(201, TicketSchema)
    def post(self):
        """A single-use ticket (60 s) to open the event stream from a browser"""
        now = datetime.now(UTC)
        lifetime = current_app.config["EVENTS_TICKET_SECONDS"]
        ticket, expires_at = tickets.issue(db.session, _bearer_credential(), now, lifetime)
        db.session.commit()
        return {"ticket": ticket, "expires_at": expires_at}
