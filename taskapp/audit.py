"""The audit trail: one ActivityLog entry for every write that changes a task.

Entries are written by an ``after_flush`` session listener, inside the flush that writes
the change, so a change and its entry commit or roll back together; a task created
through the API is written with its entry in one statement by :func:`insert_created`.
Views never call this module; they only say who is acting, once, through :func:`act_as`:

- an authenticated request: the JWT callback in ``auth/tokens.py`` (source ``api``);
- a CLI command: ``cli.py`` (source ``cli``);
- the overdue and reminder sweeps: :func:`insert_entries` is called by ``overdue.py`` and
  ``reminders.py`` for their set-based UPDATEs, which fire no per-row ORM events (actor
  null, source ``system``); :func:`snapshot_sql` gives their entries the task snapshot.

Whoever must act once entries are committed (the webhook nudge, the stream's wake-up)
registers with :func:`after_entries_commit`.

The log is append-only: the ORM refuses to update or delete an entry, and on
PostgreSQL a trigger (see the migrations) refuses raw SQL as well.
"""

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache

from sqlalchemy import (
    JSON,
    Date,
    Insert,
    Integer,
    Select,
    bindparam,
    case,
    event,
    func,
    insert,
    inspect,
    literal,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Row
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.functions import FunctionElement

from taskapp.logs.models import Action, ActivityLog
from taskapp.models import Source, UTCDateTime, insert_values, utcnow
from taskapp.tasks.models import (
    SNAPSHOT,
    TRACKED,
    Priority,
    PriorityRank,
    Status,
    Task,
    task_fields,
)

log = logging.getLogger(__name__)
ACTOR_KEY = "taskapp.audit_actor"
WROTE_KEY = "taskapp.audit_wrote_entries"
TRACKED_FIELDS = task_fields(TRACKED)
"""Model attribute -> name used in ``changes`` (the API's field names)."""
SNAPSHOT_FIELDS = tuple(task_fields(SNAPSHOT))
"""The task's columns kept on its entry (``task_snapshot``), so that a webhook announces
the task as this change left it, even once the task changed again or was deleted."""


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete an activity log entry."""


def act_as(session: Session, actor_id: int | None, source: Source) -> None:
    """Record who is behind the writes this session will flush."""
    session.info[ACTOR_KEY] = (actor_id, Source(source))


def to_json(value):
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_json(model, name: str, value):
    """``to_json`` undone for ``model``'s column ``name``, by the column's type."""
    column = model.__table__.columns.get(name)
    if value is None or column is None:
        return value
    kind = column.type
    if isinstance(kind, UTCDateTime):  # any ISO 8601 form (SQL-written snapshots): naive is UTC
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    if isinstance(kind, PriorityRank):
        return Priority(value)
    if isinstance(kind, SAEnum) and kind.enum_class is not None:
        return kind.enum_class(value)
    return value


def change(old, new) -> dict:
    return {"from": to_json(old), "to": to_json(new)}


def _tracked(task: Task) -> dict:
    return {attr: getattr(task, attr) for attr in TRACKED_FIELDS}


def _snapshot(columns: dict, *, deleted: bool) -> dict:
    """The changes of a task created or deleted whole, from its ``columns`` by attribute
    (:func:`_tracked`'s, or an INSERT's values)."""
    values = {name: columns[attr] for attr, name in TRACKED_FIELDS.items()}
    if deleted:
        return {name: change(value, None) for name, value in values.items()}
    return {name: change(None, value) for name, value in values.items() if value is not None}


def task_snapshot(task: Task) -> dict:
    return {name: to_json(getattr(task, name)) for name in SNAPSHOT_FIELDS}


def _diff(task: Task) -> dict:
    state = inspect(task)
    changes = {}
    for attr, name in TRACKED_FIELDS.items():
        history = state.attrs[attr].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old != new:
            changes[name] = change(old, new)
    return changes


def _write_fields(session: Session, action: Action, changes: dict) -> dict:
    """What an entry says of the write, not of the task: the action, its changes, who."""
    actor_id, source = session.info.get(ACTOR_KEY, (None, Source.SYSTEM))
    return {
        "action": action,
        "changes": changes,
        "actor_id": actor_id,
        "source": source,
        "created_at": utcnow(),
    }


def _entry(session: Session, task: Task | Row, action: Action, changes: dict) -> dict:
    reassigned = changes.get("assigned_to") if action != Action.DELETED else None
    return {
        **_write_fields(session, action, changes),
        "task_id": task.id,
        "task_title": task.title,
        "assignee_id": task.assigned_to_id,
        "task_snapshot": task_snapshot(task),
        "previous_assignee_id": reassigned["from"] if reassigned else None,
    }


def _entries_for_flush(session: Session) -> list[dict]:
    entries = []
    for obj in session.new:
        if isinstance(obj, Task):
            created = _snapshot(_tracked(obj), deleted=False)
            entries.append(_entry(session, obj, Action.CREATED, created))
    for obj in session.dirty:
        if isinstance(obj, Task):
            changes = _diff(obj)
            if changes:
                action = Action.STATUS_CHANGED if "status" in changes else Action.UPDATED
                entries.append(_entry(session, obj, action, changes))
    for obj in session.deleted:
        if isinstance(obj, Task):
            deleted = _snapshot(_tracked(obj), deleted=True)
            entries.append(_entry(session, obj, Action.DELETED, deleted))
    return entries


def _write_entries(session: Session, _flush_context) -> None:
    entries = _entries_for_flush(session)
    if entries:
        session.connection().execute(insert(ActivityLog.__table__), entries)
        session.info[WROTE_KEY] = True


def insert_created(session: Session, task: Task, own_id: tuple[str, ...] = ()) -> Row:
    """Insert the new, transient ``task`` and its CREATED entry; returns the task's row as
    the database wrote it. ``task`` is not attached to ``session``: the caller answers
    from the row. The entry is the listener's, less the flush: on PostgreSQL the task
    and its entry are one statement (a data-modifying CTE, one round trip where the
    flush takes two), its snapshot computed in SQL as the sweeps' are; SQLite, which
    has no data-modifying CTE, runs the INSERT and then the entry's.

    ``own_id`` names columns that hold the task's own id (a recurring task is the first
    of its series). They are written with the task, before its entry's snapshot is
    taken, so the entry (and the webhook that announces it) shows them: on PostgreSQL
    the id is drawn from the table's sequence first; on SQLite, which numbers the row
    as it inserts it, they are set right after the INSERT."""
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if own_id and postgresql:
        task.id = connection.execute(_NEXT_TASK_ID).scalar_one()
        for name in own_id:
            setattr(task, name, task.id)
    values = insert_values(task)
    changes = _snapshot(values, deleted=False)
    if postgresql:
        write = _write_fields(session, Action.CREATED, changes)
        params = {**values, **{f"entry_{name}": value for name, value in write.items()}}
        statement = _created_with_entry(tuple(write), "id" in values)
        row = connection.execute(statement, params).one()
    else:
        row = connection.execute(_inserted_task("id" in values), values).one()
        row = _with_own_id(connection, row, own_id)
        entry = _entry(session, row, Action.CREATED, changes)
        connection.execute(insert(ActivityLog.__table__), entry)
    session.info[WROTE_KEY] = True
    return row


_NEXT_TASK_ID = select(func.nextval(func.pg_get_serial_sequence(Task.__tablename__, "id")))


def _with_own_id(connection, row: Row, own_id: tuple[str, ...]) -> Row:
    """SQLite: the new task's row with ``own_id``'s columns set to the id its INSERT gave
    it, part of its creation (``updated_at`` kept as inserted)."""
    if not own_id:
        return row
    table = Task.__table__
    values = {name: table.c.id for name in own_id} | {"updated_at": table.c.updated_at}
    statement = update(table).where(table.c.id == row.id).values(values).returning(*table.c)
    return connection.execute(statement).one()


@cache
def _inserted_task(with_id: bool = False):
    """The task's INSERT, every column bound (see :func:`insert_values`), the id only
    ``with_id`` (else the database numbers the row)."""
    table = Task.__table__
    unsupported = [c.key for c in table.c if c.server_default is not None or _sql_default(c)]
    if unsupported:  # insert_values cannot fill them: they would be written as NULL
        raise RuntimeError(f"insert_created cannot write the defaults of {unsupported}")
    values = {column.key: bindparam(column.key, type_=column.type) for column in table.c}
    if not with_id:
        del values["id"]
    return insert(table).values(values).returning(*table.c)


@cache
def _created_with_entry(bound_names: tuple[str, ...], with_id: bool = False) -> Select:
    """The new task and its CREATED entry in one statement (PostgreSQL), built once:
    the task's columns are bound by name (the id only ``with_id``), the entry's
    ``bound_names`` (those of :func:`_write_fields`) as ``entry_<name>``; its task id,
    title, assignee and snapshot come from the inserted row."""
    new_task = _inserted_task(with_id).cte("new_task")
    log = ActivityLog.__table__
    bound = [bindparam(f"entry_{name}", type_=log.c[name].type) for name in bound_names]
    row = new_task.c
    entry = select(row.id, row.title, row.assigned_to_id, snapshot_sql(row), *bound)
    columns = ["task_id", "task_title", "assignee_id", "task_snapshot", *bound_names]
    written = insert(log).from_select(columns, entry).cte("entry")
    return select(new_task).add_cte(written)


def _sql_default(column) -> bool:
    default = column.default
    return default is not None and not (default.is_scalar or default.is_callable)


_committed_callbacks: list[Callable[[], None]] = []


def after_entries_commit(callback: Callable[[], None]) -> None:
    """Call ``callback()`` after every commit of a session that wrote entries through
    this module (the listener or :func:`insert_created`). Set-based writes (the sweeps)
    do not call it: the relay's and the stream's polls find them."""
    if callback not in _committed_callbacks:
        _committed_callbacks.append(callback)


def _entries_committed(session: Session) -> None:
    if session.info.pop(WROTE_KEY, False):
        for callback in _committed_callbacks:
            try:
                callback()
            except Exception:  # the change is committed: a hint lost must not fail it
                log.exception("after-commit callback %r failed", callback)


def _forget_entries(session: Session) -> None:
    """After a rollback: no entries to announce."""
    session.info.pop(WROTE_KEY, None)


class JsonObject(FunctionElement):
    """``json_object(k1, v1, ...)`` on SQLite, ``json_build_object(...)`` on PostgreSQL."""

    type = JSON()
    name = "json_object"
    inherit_cache = True


@compiles(JsonObject)
def _json_object_sqlite(element, compiler, **kw):
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(JsonObject, "postgresql")
def _json_object_postgresql(element, compiler, **kw):
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


def snapshot_sql(row, **overrides) -> JsonObject:
    """:func:`task_snapshot` computed in SQL from ``row`` (columns named as the task's),
    for the sweeps that change tasks set-based: the task as the sweep leaves it, written
    on the entry in the sweep's own statement. ``overrides`` are SQL values for columns
    the statement changes after reading ``row``. Datetimes come out in the database's
    own text form (the relay parses any ISO 8601 form, naive meaning UTC)."""
    ranks = {priority.rank: priority.value for priority in Priority}
    values = {name: overrides.get(name, row[name]) for name in SNAPSHOT_FIELDS}
    if "priority" not in overrides:
        values["priority"] = case(ranks, value=type_coerce(row["priority"], Integer))
    pairs = []
    for name, value in values.items():
        pairs += [literal_column(f"'{name}'"), value]
    return JsonObject(*pairs)


def insert_entries(rows, action: Action, changes, created_at, snapshot) -> Insert:
    """INSERT ... SELECT of one entry per row of ``rows`` (a task's columns, by name),
    as the system actor, built entirely in SQL so that no task is loaded into Python;
    ``changes`` and ``snapshot`` are SQL expressions over ``rows``."""
    table = ActivityLog.__table__
    entries = select(
        rows.c.id,
        rows.c.title,
        literal(action.value),
        changes,
        literal(None).label("actor_id"),
        literal(Source.SYSTEM.value),
        rows.c.assigned_to_id,
        literal(created_at, UTCDateTime),
        snapshot,
    )
    columns = ["task_id", "task_title", "action", "changes", "actor_id", "source"]
    columns += ["assignee_id", "created_at", "task_snapshot"]
    return insert(table).from_select(columns, entries)


def insert_status_changes(
    rows, old_statuses, new_status: Status, action: Action, **snapshot_overrides
) -> Insert:
    """:func:`insert_entries` for a status change: ``rows`` also has ``old_status``, and
    ``changes`` comes from :func:`change`, the same serialiser the listener uses, as one
    JSON literal per possible old status."""
    changes_type = ActivityLog.__table__.c.changes.type
    changes = case(
        {
            old.value: literal({"status": change(old, new_status)}, changes_type)
            for old in old_statuses
        },
        value=rows.c.old_status,
    )
    snapshot = snapshot_sql(rows.c, **snapshot_overrides)
    return insert_entries(rows, action, changes, utcnow(), snapshot)


def _refuse_log_change(_mapper, _connection, _target) -> None:
    raise AppendOnlyError("activity log entries cannot be changed or deleted")


def _refuse_bulk_log_change(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        mapper.class_ is ActivityLog for mapper in state.all_mappers
    ):
        raise AppendOnlyError("activity log entries cannot be changed or deleted")


def init_audit() -> None:
    """Install the listeners once per process (they are global to SQLAlchemy)."""
    if event.contains(Session, "after_flush", _write_entries):
        return
    event.listen(Session, "after_flush", _write_entries)
    event.listen(Session, "after_commit", _entries_committed)
    event.listen(Session, "after_rollback", _forget_entries)
    event.listen(Session, "do_orm_execute", _refuse_bulk_log_change)
    event.listen(ActivityLog, "before_update", _refuse_log_change)
    event.listen(ActivityLog, "before_delete", _refuse_log_change)
