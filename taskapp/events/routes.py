"""Live changes over HTTP: the sync feed, the event stream and its tickets."""

import time

from flask import abort, current_app
from flask.views import MethodView
from flask_jwt_extended import current_user

from taskapp.events import feed, tokens
from taskapp.events.schemas import ChangesArgsSchema, ChangesSchema
from taskapp.extensions import db
from taskapp.tasks.schemas import TaskSchema
from taskapp.web.api import Blueprint
from taskapp.web.dumps import compile_dump, json_response

blp = Blueprint("events", __name__, url_prefix="/api", description="Live changes")
DUMP_TASK = compile_dump(TaskSchema())
BAD_SINCE = "Invalid sync token: pass the `next` of a previous answer, or nothing."
EXPIRED_SINCE = "This sync token is older than the retained history: sync again without `since`."
DAY = 86400


def retention_seconds() -> float:
    return current_app.config["CHANGES_RETENTION_DAYS"] * DAY


def signing_key() -> str:
    return current_app.config["JWT_SECRET_KEY"]


def _feed_token(since: str) -> tokens.Token | None:
    if not since:
        return None
    try:
        return tokens.load(signing_key(), tokens.FEED_SALT, since, time.time(), retention_seconds())
    except tokens.ExpiredToken:
        abort(410, EXPIRED_SINCE)
    except tokens.BadToken:
        abort(400, BAD_SINCE)


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
            "next": tokens.dump(signing_key(), tokens.FEED_SALT, page.next),
            "more": page.more,
        }
        return json_response(body)
