"""Visibility, filters and ordering for task listings, built from parsed query args."""

from sqlalchemy import Select, func, or_, select

from taskapp.models import Role, Task, TaskCounter, User
from taskapp.ordering import order_by_keys

COMPARISONS = {
    "due_date": ("due_date", "__eq__"),
    "due_date__gte": ("due_date", "__ge__"),
    "due_date__lte": ("due_date", "__le__"),
    "due_date__gt": ("due_date", "__gt__"),
    "due_date__lt": ("due_date", "__lt__"),
    "created_at__gte": ("created_at", "__ge__"),
    "created_at__lte": ("created_at", "__le__"),
    "assigned_to": ("assigned_to_id", "__eq__"),
}


FILTERS = {*COMPARISONS, "status", "priority", "due_date__isnull", "search"}
"""Every query argument that narrows a listing (see apply_filters)."""
COUNTER_FILTERS = {"status", "priority", "assigned_to"}
"""Filters that task_counter can answer a count for."""


def visible_tasks(user: User) -> Select:
    """ADMIN sees every task; INTERN only those assigned to them."""
    query = select(Task)
    if user.role != Role.ADMIN:
        query = query.where(Task.assigned_to_id == user.id)
    return query


def apply_filters(query: Select, args: dict) -> Select:
    for name, (attribute, operator) in COMPARISONS.items():
        if name in args:
            query = query.where(getattr(getattr(Task, attribute), operator)(args[name]))
    if "status" in args:
        query = query.where(Task.status.in_(args["status"]))
    if "priority" in args:
        query = query.where(Task.priority.in_(args["priority"]))
    if "due_date__isnull" in args:
        column = Task.due_date
        query = query.where(column.is_(None) if args["due_date__isnull"] else column.isnot(None))
    if args.get("search"):
        pattern = "%" + _escape_like(args["search"]) + "%"
        query = query.where(
            or_(
                Task.title.ilike(pattern, escape="\\"), Task.description.ilike(pattern, escape="\\")
            )
        )
    return query


def counter_count(user: User, args: dict) -> Select | None:
    """The listing's ``count`` from task_counter, when every filter in ``args`` is one it
    keys on; else None (the caller counts the rows). Exact: the counters move in the
    same transaction as the tasks."""
    filters = {name for name in FILTERS if name in args}
    if not args.get("search"):
        filters.discard("search")
    if filters - COUNTER_FILTERS:
        return None
    query = select(func.coalesce(func.sum(TaskCounter.n), 0))
    if user.role != Role.ADMIN:
        query = query.where(TaskCounter.assigned_to_id == user.id)
    if "assigned_to" in args:
        query = query.where(TaskCounter.assigned_to_id == args["assigned_to"])
    if "status" in args:
        query = query.where(TaskCounter.status.in_(args["status"]))
    if "priority" in args:
        query = query.where(TaskCounter.priority.in_(args["priority"]))
    return query


def apply_ordering(query: Select, keys: list[tuple[str, bool]]) -> Select:
    return order_by_keys(query, Task, keys, nullable=("due_date",))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
