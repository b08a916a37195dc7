"""Who may see what, written once: an ADMIN sees every task and every log entry; an
INTERN the tasks assigned to them and the entries of tasks that were assigned to them
when the entry was written. Listings, lookups (and the events sent to a user's webhooks)
start from these queries.

Live changes (the sync feed and the event stream) hear what webhooks hear, plus one
thing: the user a task was reassigned away from hears that it left them."""

from sqlalchemy import Select, or_, select

from taskapp.models import ActivityLog, Role, Task, User, Webhook


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
    if role == Role.ADMIN or entry.assignee_id == user_id:
        return HEARS
    if entry.previous_assignee_id == user_id:
        return LOSES
    return None
