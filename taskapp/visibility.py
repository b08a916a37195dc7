"""Who may see what, written once: an ADMIN sees every task and every log entry; an
INTERN the tasks assigned to them and the entries of tasks that were assigned to them
when the entry was written. Listings, lookups, counts, change stamps, the calendar
feed and the events sent to a user's webhooks all go through this module: a query
starts from one of its ``visible_*`` selects, or is limited by :func:`limit_to_owner`,
:func:`seen_by` (in SQL, for a viewer that is a row of the query) or :func:`may_see`
(for a row already in hand).

Live changes (the sync feed and the event stream) hear what webhooks hear, plus one
thing: the user a task was reassigned away from hears that it left them
(:func:`entries_heard_by`, :func:`hearing`)."""

from sqlalchemy import ColumnElement, Select, or_, select

from taskapp.logs.models import ActivityLog
from taskapp.models import Role
from taskapp.tasks.models import Task
from taskapp.users.models import User
from taskapp.webhooks.models import Webhook


def may_see(role: Role, viewer_id: int, owner_id: int | None) -> bool:
    """May a viewer of ``role`` see a row owned (assigned) to ``owner_id``?"""
    return role == Role.ADMIN or owner_id == viewer_id


def seen_by(viewer, owner_column) -> ColumnElement[bool]:
    """The same rule in SQL, for a viewer that is a row of the query (``User`` or an
    alias of it), e.g. the owner of a calendar feed."""
    return or_(viewer.role == Role.ADMIN, owner_column == viewer.id)


def limit_to_owner(query: Select, user: User, owner_column) -> Select:
    if user.role == Role.ADMIN:
        return query
    return query.where(owner_column == user.id)


def visible_tasks(user: User) -> Select:
    return limit_to_owner(select(Task), user, Task.assigned_to_id)


def visible_entries(user: User) -> Select:
    return limit_to_owner(select(ActivityLog), user, ActivityLog.assignee_id)


def visible_webhooks(user: User) -> Select:
    """An ADMIN sees (and manages) every webhook; anyone else their own."""
    return limit_to_owner(select(Webhook), user, Webhook.owner_id).order_by(Webhook.id)


HEARS = "event"
LOSES = "removed"


def entries_heard_by(user: User) -> Select:
    """The entries ``user`` hears of live: an ADMIN every one; anyone else the entries
    they may read (:func:`visible_entries`) and those that took a task from them."""
    if user.role == Role.ADMIN:
        return select(ActivityLog)
    mine = or_(ActivityLog.assignee_id == user.id, ActivityLog.previous_assignee_id == user.id)
    return select(ActivityLog).where(mine)


def hearing(role: Role, user_id: int, entry) -> str | None:
    """How a user hears one entry (the rule of :func:`entries_heard_by`, for an entry
    already read): HEARS it, LOSES the task by it (reassigned away), or None."""
    if may_see(role, user_id, entry.assignee_id):
        return HEARS
    if entry.previous_assignee_id == user_id:
        return LOSES
    return None
