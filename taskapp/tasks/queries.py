"""Visibility, filters and ordering for task listings, built from parsed query args."""

import operator
from functools import lru_cache

from sqlalchemy import ColumnElement, Select, case, func, not_, or_, select

from taskapp.ordering import order_by_keys
from taskapp.tasks.models import (
    Priority,
    Status,
    Task,
    TaskChange,
    TaskCounter,
    TaskSearch,
    TaskSearchTitle,
)
from taskapp.tasks.service import as_rows
from taskapp.users.models import User
from taskapp.visibility import limit_to_owner, visible_tasks

COMPARISONS = {
    "due_date": (Task.due_date, operator.eq),
    "due_date__gte": (Task.due_date, operator.ge),
    "due_date__lte": (Task.due_date, operator.le),
    "due_date__gt": (Task.due_date, operator.gt),
    "due_date__lt": (Task.due_date, operator.lt),
    "created_at__gte": (Task.created_at, operator.ge),
    "created_at__lte": (Task.created_at, operator.le),
    "assigned_to": (Task.assigned_to_id, operator.eq),
    "series": (Task.series_id, operator.eq),
}
NULL_TESTS = {"due_date__isnull": Task.due_date, "recurrence__isnull": Task.recurrence}


FILTERS = {
    *COMPARISONS,
    "status",
    "priority",
    "due_date__isnull",
    "recurrence__isnull",
    "search",
}
"""Every query argument that narrows a listing (see apply_filters)."""
NULLABLE_KEYS = ("due_date",)
"""Ordering fields that may be null (nulls last ascending, first descending)."""
COUNTER_FILTERS = {"status", "priority", "assigned_to", "due_date__isnull"}
"""Filters that task_counter can answer a count for."""
CREATION_FILTERS = {"created_at__gte", "created_at__lte"}
"""Filters on when a task was created, which never changes and is never NULL: their count
may be taken from the other side (see creation_count)."""


def apply_filters(query: Select, args: dict, user: User) -> Select:
    return query.where(*conditions(args, user))


def conditions(args: dict, user: User) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the filters in ``args``, one per filter given."""
    found = [
        compare(column, args[name])
        for name, (column, compare) in COMPARISONS.items()
        if name in args
    ]
    if "status" in args:
        found.append(Task.status.in_(args["status"]))
    if "priority" in args:
        found.append(Task.priority.in_(args["priority"]))
    for name, column in NULL_TESTS.items():
        if name in args:
            found.append(column.is_(None) if args[name] else column.isnot(None))
    if args.get("search"):
        found.append(Task.id.in_(_matching(args["search"], user)))
    return found


def _matching(search: str, user: User) -> Select:
    """Ids of the tasks ``user`` may see whose title or description contains ``search``
    (ILIKE), read from the side table the trigram indexes are on (TaskSearch)."""
    matches = select(TaskSearch.task_id).where(or_(*_text_matches(search)))
    return limit_to_owner(matches, user, TaskSearch.assigned_to_id)


def search_count(search: str, user: User) -> Select:
    """How many tasks ``user`` may see match ``search``, when it is the only filter: the
    title matches, counted in the narrow lowered copy of the titles (TaskSearchTitle,
    matched with LIKE against the lowered pattern, which is what ILIKE does), plus the
    tasks whose description matches and whose title does not (TaskSearch). The two parts
    never overlap and together are :func:`_matching`'s rows."""
    in_title, in_description = _text_matches(search)
    titled = select(func.count()).where(
        TaskSearchTitle.lowered.like(func.lower(_contains(search)), escape="\\")
    )
    described = select(func.count()).where(in_description, not_(in_title))
    titled = limit_to_owner(titled, user, TaskSearchTitle.assigned_to_id)
    described = limit_to_owner(described, user, TaskSearch.assigned_to_id)
    return select(titled.scalar_subquery() + described.scalar_subquery())


def _text_matches(search: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Whether TaskSearch's title, and its description, contain ``search`` (ILIKE)."""
    pattern = _contains(search)
    return (
        TaskSearch.title.ilike(pattern, escape="\\"),
        TaskSearch.description.ilike(pattern, escape="\\"),
    )


def active_filters(args: dict) -> set[str]:
    """The filters in ``args`` that narrow the listing (an empty ``search`` does not)."""
    filters = {name for name in FILTERS if name in args}
    if not args.get("search"):
        filters.discard("search")
    return filters


def counter_count(user: User, args: dict) -> Select | None:
    """The listing's ``count`` from task_counter, when every filter in ``args`` is one it
    keys on; else None (the caller counts the rows). Exact: the counters move in the
    same transaction as the tasks."""
    if active_filters(args) - COUNTER_FILTERS:
        return None
    query = select(func.coalesce(func.sum(TaskCounter.n), 0))
    query = limit_to_owner(query, user, TaskCounter.assigned_to_id)
    if "assigned_to" in args:
        query = query.where(TaskCounter.assigned_to_id == args["assigned_to"])
    if "status" in args:
        query = query.where(TaskCounter.status.in_(args["status"]))
    if "priority" in args:
        query = query.where(TaskCounter.priority.in_(args["priority"]))
    if "due_date__isnull" in args:
        query = query.where(TaskCounter.has_due_date == (not args["due_date__isnull"]))
    return query


def creation_count(user: User, args: dict, counted: Select) -> Select | None:
    """The count of a listing whose one filter is on the creation time, read from its
    smaller side: "created more than a month ago" matches nearly every task, and the
    few created since are an index range that many times shorter, so when the middle
    task (:func:`_middle_creation`) passes the filter, the count is the visible total
    (task_counter's) less the tasks that fail it. One statement, one snapshot; the side
    not taken is never run; ``counted`` is the direct count, the other side. None for
    any other filter."""
    filters = active_filters(args)
    if len(filters) != 1 or not filters <= CREATION_FILTERS:
        return None
    (name,) = filters
    (condition,) = conditions(args, user)
    compare = COMPARISONS[name][1]
    total = counter_count(user, {}).scalar_subquery()
    failing = visible_tasks(user).with_only_columns(func.count()).where(not_(condition))
    most_match = compare(_middle_creation(), args[name])
    return select(
        case(
            (most_match, total - failing.scalar_subquery()),
            else_=counted.scalar_subquery(),
        )
    )


def _middle_creation():
    """When the task with the middle id was created: about the median creation time of
    all tasks, since ids are handed out in creation order. Two ends and one step of the
    primary key; NULL when there are no tasks."""
    middle_id = select((func.min(Task.id) + func.max(Task.id)) // 2).scalar_subquery()
    first_after = select(Task.created_at).where(Task.id >= middle_id).order_by(Task.id).limit(1)
    return first_after.scalar_subquery()


@lru_cache(maxsize=4096)
def change_stamp(user: User) -> Select:
    """A number that grows with every change to a task ``user`` can list: an INTERN's own
    counter (bumped by changes to their tasks, reassignments to and away from them
    included), for an ADMIN the sum of every assignee's (each counter only grows, so
    the sum moves whenever any of them does; no single hot row for all writers)."""
    query = select(func.coalesce(func.sum(TaskChange.n), 0))
    return limit_to_owner(query, user, TaskChange.assigned_to_id)


def task_count(user: User, args: dict, filtered: Select) -> Select:
    """The listing's count: from task_counter where it can answer; for a search and no
    other filter, the matches in the side tables alone (search_count: they hold one row
    per task and its assignee, kept in the same transaction as ``task``, so no join to
    the tasks is needed); for a creation-time filter alone, from its smaller side
    (creation_count); else COUNT(*) over ``filtered`` (the task rows alone, before the
    join that fetches usernames)."""
    from_counters = counter_count(user, args)
    if from_counters is not None:
        return from_counters
    if active_filters(args) == {"search"}:
        return search_count(args["search"], user)
    counted = filtered.with_only_columns(func.count(), maintain_column_froms=True)
    by_creation = creation_count(user, args, counted)
    return counted if by_creation is None else by_creation


PAGE_ARGS = {"page", "page_size", "cursor"}


def listing(user: User, args: dict) -> tuple[Select, Select, Select]:
    """The statements of a task listing for ``user`` and the parsed query ``args``: the
    rows (unordered, for the keyset), the ordered rows and the count. Built once per
    caller and query (a listing polled again reuses its statements, so SQLAlchemy
    neither rebuilds them nor recomputes their cache keys)."""
    key = tuple(sorted((k, _frozen(v)) for k, v in args.items() if k not in PAGE_ARGS))
    return _listing(user, key)


@lru_cache(maxsize=1024)
def _listing(user: User, key: tuple) -> tuple[Select, Select, Select]:
    args = dict(key)
    filtered = apply_filters(visible_tasks(user), args, user)
    query = as_rows(filtered)
    ordered = apply_ordering(query, list(args["ordering"]))
    return query, ordered, task_count(user, args, filtered)


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list | tuple) else value


def apply_ordering(query: Select, keys: list[tuple[str, bool]]) -> Select:
    return order_by_keys(query, Task, keys, nullable=NULLABLE_KEYS)


def stats(session, user: User) -> dict:
    """Counts by status and by priority over the tasks ``user`` may see (every status
    and priority present, zeros included)."""
    visible = visible_tasks(user).subquery()
    query = select(visible.c.status, visible.c.priority, func.count()).group_by(
        visible.c.status, visible.c.priority
    )
    by_status = dict.fromkeys(Status, 0)
    by_priority = dict.fromkeys(Priority, 0)
    for status, priority, count in session.execute(query):
        by_status[Status(status)] += count
        by_priority[Priority(priority)] += count
    return {
        "total": sum(by_status.values()),
        "by_status": {key.value: value for key, value in by_status.items()},
        "by_priority": {key.value: value for key, value in by_priority.items()},
    }


def _contains(text: str) -> str:
    """A LIKE pattern matching any text that contains ``text`` (escaped with ``\\``)."""
    return "%" + _escape_like(text) + "%"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
