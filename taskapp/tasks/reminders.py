"""The reminder sweep: ``remind_at <= now AND reminded_at IS NULL AND status !=
COMPLETED`` is announced once: marked sent (``reminded_at``) with one REMINDED entry
(actor null, source system), in one transaction, set-based like the overdue sweep.

PostgreSQL claims the due rows in one statement: a CTE locks them (``FOR UPDATE``
re-checks a row a concurrent transaction changed, so a task completed, re-armed or
already claimed meanwhile is skipped), the UPDATE marks them, and the INSERT writes the
entries from its RETURNING. Two sweeps at once: the second waits on the locks, re-checks
``reminded_at IS NULL`` and finds nothing. SQLite holds the whole database for a write
transaction: INSERT ... SELECT then UPDATE with the same predicate see the same rows (as
in the overdue sweep). Each entry carries the task's snapshot as the sweep left it,
computed in the same statement (``audit.snapshot_sql``), never read at relay time.

E-mail (when ``SMTP_URL`` is set) is owed, not sent, here: the sweep stamps
``reminder_mail_queued_at`` in the same transaction, so a reminder's mail survives a
broker that is down or a worker that dies. After the commit the job enqueues one mail
task per owed mail; :func:`claim_mail` makes sending it at-most-once per reminder, and
:func:`stale_mails` finds owed mails whose task was lost so the job can enqueue them
again.
"""

from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, any_, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from taskapp.audit import SNAPSHOT_FIELDS, change, insert_entries, snapshot_sql
from taskapp.logs.models import Action, ActivityLog
from taskapp.models import UTCDateTime
from taskapp.tasks.models import Status, Task
from taskapp.users.models import User


def due_predicate(now: datetime):
    table = Task.__table__
    return and_(
        table.c.remind_at <= now,
        table.c.reminded_at.is_(None),
        table.c.status != Status.COMPLETED,
    )


def sweep(session: Session, now: datetime, *, mail: bool) -> list[int]:
    """Announce every due reminder; returns the ids of the tasks reminded. With
    ``mail``, each also owes an e-mail. The caller commits."""
    table = Task.__table__
    mark = {"reminded_at": now, "updated_at": now}
    if mail:
        mark["reminder_mail_queued_at"] = now
    snapshot_columns = [table.c[name] for name in SNAPSHOT_FIELDS]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        locked = (
            table.select()
            .with_only_columns(table.c.id)
            .where(due_predicate(now))
            .with_for_update()
            .cte("due")
        )
        locked_ids = cast(select(func.array_agg(locked.c.id)).scalar_subquery(), ARRAY(Integer))
        marked = (
            update(table)
            .where(table.c.id == any_(locked_ids))
            .values(mark)
            .returning(*snapshot_columns)
            .cte("marked")
        )
        entries = _insert_entries(marked, now, snapshot_sql(marked.c))
        logged = entries.returning(ActivityLog.task_id).cte("logged")
        return list(connection.execute(select(logged.c.task_id)).scalars())
    # SQLite: the entries first (their snapshots say what the UPDATE will set), then the
    # UPDATE with the same predicate; the write transaction holds the whole database.
    rows = table.select().with_only_columns(*snapshot_columns).where(due_predicate(now))
    rows = rows.subquery("due")
    snapshot = snapshot_sql(rows.c, updated_at=literal(now, UTCDateTime))
    logged = connection.execute(
        _insert_entries(rows, now, snapshot).returning(ActivityLog.task_id)
    ).scalars()
    reminded = sorted(logged)
    marked = connection.execute(update(table).where(due_predicate(now)).values(mark)).rowcount
    if marked != len(reminded):
        raise RuntimeError(f"reminder sweep logged {len(reminded)} tasks but marked {marked}")
    return reminded


def _insert_entries(rows, now: datetime, snapshot):
    """One REMINDED entry per row, as the system actor."""
    changes = literal({"reminded_at": change(None, now)}, ActivityLog.__table__.c.changes.type)
    return insert_entries(rows, Action.REMINDED, changes, now, snapshot)


def claim_mail(session: Session, task_id: int) -> dict | None:
    """Take the e-mail owed for ``task_id``'s reminder: clears the mark and returns what
    the mail needs (None if nothing is owed, or the assignee has no e-mail). The
    caller sends, then commits; if sending fails it rolls back and the mail stays owed.
    The conditional UPDATE holds the row until then, so two mail tasks for one
    reminder send once: the second waits, re-checks, and finds nothing owed."""
    table = Task.__table__
    claimed = session.execute(
        update(table)
        .where(table.c.id == task_id, table.c.reminder_mail_queued_at.isnot(None))
        .values(reminder_mail_queued_at=None)
        .returning(
            table.c.id,
            table.c.title,
            table.c.description,
            table.c.due_date,
            table.c.remind_at,
            table.c.assigned_to_id,
        )
    ).first()
    if claimed is None:
        return None
    email = session.execute(
        select(User.email).where(User.id == claimed.assigned_to_id)
    ).scalar_one_or_none()
    if not email:
        return None
    return {**claimed._asdict(), "email": email}


def stale_mails(session: Session, now: datetime, older_than: timedelta, limit: int = 500):
    """Ids of reminders whose mail has been owed longer than ``older_than`` (its mail
    task was never delivered or gave up), stamped again so the next call skips them
    for another ``older_than``. The caller commits, then enqueues them."""
    table = Task.__table__
    stale = table.c.reminder_mail_queued_at < now - older_than
    ids = list(
        session.execute(select(table.c.id).where(stale).order_by(table.c.id).limit(limit)).scalars()
    )
    if ids:
        session.execute(
            update(table).where(table.c.id.in_(ids), stale).values(reminder_mail_queued_at=now)
        )
    return ids


def announce(
    session: Session, now: datetime, *, mail: bool, resend_after: timedelta
) -> tuple[list[int], list[int]]:
    """What beat and ``flask tasks remind`` run: the sweep, plus (with ``mail``) the
    owed mails whose task was lost. Returns (reminded task ids, ids to enqueue a mail
    task for, after the caller's commit)."""
    reminded = sweep(session, now, mail=mail)
    if not mail:
        return reminded, []
    return reminded, reminded + stale_mails(session, now, resend_after)
