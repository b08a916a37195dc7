"""Read-only access to the activity log."""

from flask.views import MethodView

from taskapp.extensions import db
from taskapp.logs.models import ActivityLog
from taskapp.logs.queries import get_visible_entry, listed_entries, ordered
from taskapp.logs.schemas import (
    ActivityLogPageSchema,
    ActivityLogQueryArgsSchema,
    ActivityLogSchema,
)
from taskapp.web.api import ID_IN_PATH, Blueprint
from taskapp.web.paging import Keyset, cursor_paginate, paginate
from taskapp.web.permissions import current_user

blp = Blueprint(
    "activity_logs", __name__, url_prefix="/api/activity-logs", description="Audit trail"
)


@blp.route("/")
class ActivityLogs(MethodView):
    @blp.auth_required(scope="logs:read")
    @blp.arguments(ActivityLogQueryArgsSchema, location="query")
    @blp.response(200, ActivityLogPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List the activity log entries the caller may see"""
        query = listed_entries(current_user, args)
        if "cursor" in args:
            keyset = Keyset(ActivityLog, args["ordering"])
            return cursor_paginate(query, keyset, args["cursor"], args["page_size"])
        return paginate(ordered(query, args), args["page"], args["page_size"])


@blp.route(f"/<{ID_IN_PATH}:entry_id>/")
class ActivityLogById(MethodView):
    @blp.auth_required(scope="logs:read")
    @blp.response(200, ActivityLogSchema)
    @blp.not_found("No such entry, or not visible")
    def get(self, entry_id):
        """One activity log entry"""
        return get_visible_entry(db.session, current_user, entry_id)
