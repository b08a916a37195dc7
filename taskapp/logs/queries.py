"""Filters for the activity log listing, built from parsed query args."""

from sqlalchemy import Select

from taskapp.models import ActivityLog


def apply_filters(query: Select, args: dict) -> Select:
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
