"""Read-only access to the activity log."""

from flask import abort
from flask.views import MethodView
from flask_jwt_extended import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from taskapp.api import ID_IN_PATH, Blueprint
from taskapp.extensions import db
from taskapp.logs.schemas import (
    ActivityLogPageSchema,
    ActivityLogQueryArgsSchema,
    ActivityLogSchema,
)
from taskapp.models import ActivityLog, Role, User
from taskapp.ordering import order_by_keys
from taskapp.pagination import paginate

blp = Blueprint(
    "activity_logs", __name__, url_prefix="/api/activity-logs", description="Audit trail"
)
WITH_ACTOR = joinedload(ActivityLog.actor)


def visible_entries(user: User) -> Select:
    """ADMIN sees every entry; INTERN those of tasks assigned to them when written."""
    query = select(ActivityLog)
    if user.role != Role.ADMIN:
        query = query.where(ActivityLog.assignee_id == user.id)
    return query


def _filtered(query: Select, args: dict) -> Select:
    if "task" in args:
        query = query.where(ActivityLog.task_id == args["task"])
    if "action" in args:
        query = query.where(ActivityLog.action.in_(args["action"]))
    if "actor" in args:
        query = query.where(ActivityLog.actor_id == args["actor"])
    if "created_at__gte" in args:
        query = query.where(ActivityLog.created_at >= args["created_at__gte"])
    if "created_at__lte" in args:
        query = query.where(ActivityLog.created_at <= args["created_at__lte"])
    return query


@blp.route("/")
class ActivityLogs(MethodView):
    @blp.auth_required()
    @blp.arguments(ActivityLogQueryArgsSchema, location="query")
    @blp.response(200, ActivityLogPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List the activity log entries the caller may see"""
        query = order_by_keys(
            _filtered(visible_entries(current_user), args), ActivityLog, args["ordering"]
        )
        return paginate(query, args["page"], args["page_size"], options=[WITH_ACTOR])


@blp.route(f"/<{ID_IN_PATH}:entry_id>/")
class ActivityLogById(MethodView):
    @blp.auth_required()
    @blp.response(200, ActivityLogSchema)
    @blp.alt_response(404, schema="Error", description="No such entry, or not visible")
    def get(self, entry_id):
        """One activity log entry"""
        query = visible_entries(current_user).where(ActivityLog.id == entry_id).options(WITH_ACTOR)
        entry = db.session.execute(query).scalar_one_or_none()
        if entry is None:
            abort(404, "No ActivityLog matches the given query.")
        return entry
