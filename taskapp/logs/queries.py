"""The activity log's queries: the listing (visible entries, filtered from parsed query
args, ordered) and the lookup of one entry. The routes build none themselves."""

from sqlalchemy import Select
from sqlalchemy.orm import Session, joinedload

from taskapp.errors import NotFound
from taskapp.logs.models import ActivityLog
from taskapp.ordering import order_by_keys
from taskapp.users.models import User
from taskapp.visibility import visible_entries

WITH_ACTOR = joinedload(ActivityLog.actor)


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


def listed_entries(user: User, args: dict) -> Select:
    """The entries ``user`` may see, filtered by ``args``, with their actors; unordered
    (a cursor orders by its keyset, a page by :func:`ordered`)."""
    return apply_filters(visible_entries(user), args).options(WITH_ACTOR)


def ordered(query: Select, args: dict) -> Select:
    return order_by_keys(query, ActivityLog, args["ordering"])


def get_visible_entry(session: Session, user: User, entry_id: int) -> ActivityLog:
    """The entry if ``user`` may see it; NotFound otherwise, the same as a missing id."""
    query = visible_entries(user).where(ActivityLog.id == entry_id).options(WITH_ACTOR)
    entry = session.execute(query).scalar_one_or_none()
    if entry is None:
        raise NotFound("ActivityLog")
    return entry
