"""Who may see what, written once: an ADMIN sees every task and every log entry; an
INTERN the tasks assigned to them and the entries of tasks that were assigned to them
when the entry was written. Listings, lookups (and the events sent to a user's webhooks)
start from these queries."""

from sqlalchemy import Select, select

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
