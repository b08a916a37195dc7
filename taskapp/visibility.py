"""Who may see what, written once: an ADMIN sees every task and every log entry; an
INTERN the tasks assigned to them and the entries of tasks that were assigned to them
when the entry was written. Listings, lookups, counts, change stamps, the calendar
feed and the events sent to a user's webhooks all go through this module: a query
starts from one of its ``visible_*`` selects, or is limited by :func:`limit_to_owner`,
:func:`seen_by` (in SQL, for a viewer that is a row of the query) or :func:`may_see`
(for a row already in hand)."""

from sqlalchemy import ColumnElement, Select, or_, select

from taskapp.models import ActivityLog, Role, Task, User, Webhook


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
