"""The overdue sweep: ``due_date < today AND status IN (PENDING, IN_PROGRESS)`` becomes
OVERDUE, with one MARKED_OVERDUE entry per task, in one transaction, set-based.

No task is loaded into Python: memory stays flat however many tasks turn overdue.

PostgreSQL runs it as one statement: a CTE locks the due rows (``FOR UPDATE``, which
re-checks rows a concurrent transaction changed, so a task completed meanwhile is
skipped), a data-modifying CTE updates them, and the INSERT writes their entries from
the UPDATE's RETURNING. The UPDATE finds its rows by primary key (``id = ANY(the locked
ids)``); a plain join on the CTE made PostgreSQL hash the whole table. Two sweeps at
once: the second waits on the locks, re-checks, and finds nothing left.

SQLite has no data-modifying CTEs, but a write transaction holds the whole database, so
INSERT ... SELECT then UPDATE with the same predicate see the same rows.

Each entry carries the task snapshot (``audit.snapshot_sql``) as the sweep left the task,
computed in the same statement (PostgreSQL: from the UPDATE's RETURNING; SQLite: from the
row plus the values the UPDATE sets), so a webhook relayed late never shows a later
state of the task.
"""

from datetime import date

from sqlalchemy import Integer, and_, any_, cast, func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from taskapp.audit import SNAPSHOT_FIELDS, act_as, insert_status_changes
from taskapp.logs.models import Action
from taskapp.models import Source, UTCDateTime, utcnow
from taskapp.tasks.models import Status, Task

SWEPT_STATUSES = (Status.PENDING, Status.IN_PROGRESS)


def mark_overdue(session: Session, today: date) -> int:
    """The sweep as the system actor: what beat and ``flask tasks mark-overdue`` run.
    The caller commits."""
    act_as(session, None, Source.SYSTEM)
    return sweep(session, today)


def sweep(session: Session, today: date) -> int:
    """Mark overdue tasks and log them; returns how many. The caller commits."""
    table = Task.__table__
    due = and_(table.c.due_date < today, table.c.status.in_(SWEPT_STATUSES))
    marked_at = utcnow()
    mark = {"status": Status.OVERDUE, "version": table.c.version + 1, "updated_at": marked_at}
    snapshot_columns = [table.c[name] for name in SNAPSHOT_FIELDS]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        locked = (
            table.select()
            .with_only_columns(table.c.id, table.c.status)
            .where(due)
            .with_for_update()
            .cte("due")
        )
        locked_ids = cast(select(func.array_agg(locked.c.id)).scalar_subquery(), ARRAY(Integer))
        marked = (
            update(table)
            .where(table.c.id == locked.c.id, table.c.id == any_(locked_ids))
            .values(mark)
            .returning(*snapshot_columns, locked.c.status.label("old_status"))
            .cte("marked")
        )
        logged = (
            insert_status_changes(marked, SWEPT_STATUSES, Status.OVERDUE, Action.MARKED_OVERDUE)
            .returning(literal(1))
            .cte("logged")
        )
        return connection.execute(select(func.count()).select_from(logged)).scalar_one()
    rows = (
        table.select()
        .with_only_columns(*snapshot_columns, table.c.status.label("old_status"))
        .where(due)
        .subquery("due")
    )
    # The entries are written before the UPDATE: their snapshots say what it will set.
    logged = connection.execute(
        insert_status_changes(
            rows,
            SWEPT_STATUSES,
            Status.OVERDUE,
            Action.MARKED_OVERDUE,
            status=literal_column(f"'{Status.OVERDUE.value}'"),
            updated_at=literal(marked_at, UTCDateTime),
        )
    ).rowcount
    marked = connection.execute(update(table).where(due).values(mark)).rowcount
    if logged != marked:
        raise RuntimeError(f"overdue sweep logged {logged} tasks but marked {marked}")
    return marked
