"""Secret calendar feed URLs and the iCalendar feed they serve.

Calendar apps cannot send a bearer header, so the credential is a secret in the URL:
256 random bits, stored only as its SHA-256 (a slow hash adds nothing to a secret that
cannot be guessed). One feed per user: rotating replaces the row, which kills the old
URL. The row keeps the owner's ``token_version``: a role, password or activation change
bumps it and the feed stops answering, like every other credential of theirs.

The feed (RFC 5545, built with the ``icalendar`` package) has one VTODO per task the
owner may see that has a due date. :func:`feed_state` authenticates the secret and
computes the feed's ETag in one query, so a calendar app polling an unchanged feed
costs one query and gets a 304. :func:`feed_chunks` streams the body component by
component from a server-side cursor, so memory stays flat however many tasks.

Serialising a VTODO with ``icalendar`` costs a few hundred microseconds, too slow to
render 10,000 tasks in a second. Each task's VTODO depends only on its row, and any
change to the row bumps its ``version``, so rendered VTODOs are kept in a bounded
in-process LRU keyed by (id, version, updated_at, UID domain): a feed re-renders only the tasks
that changed since it was last served (see ``bench/calendar_feed.py``).
"""

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator

from icalendar import Calendar, Todo, vDate, vDatetime, vInt, vRecur, vText
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from taskapp.models import CalendarFeed, Priority, Role, Status, Task, User, utcnow
from taskapp.visibility import visible_tasks

SECRET_BYTES = 32
BATCH = 1000
CACHE_SIZE = 100_000
"""Rendered VTODOs kept per process (a few hundred bytes each)."""
STATUS = {
    Status.PENDING: "NEEDS-ACTION",
    Status.OVERDUE: "NEEDS-ACTION",
    Status.IN_PROGRESS: "IN-PROCESS",
    Status.COMPLETED: "COMPLETED",
}
PRIORITY = {Priority.HIGH: 1, Priority.MEDIUM: 5, Priority.LOW: 9}
COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.due_date,
    Task.recurrence,
    Task.occurrence,
    Task.created_at,
    Task.updated_at,
    Task.completed_at,
    Task.version,
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def rotate(session: Session, user: User) -> str:
    """A new feed secret for ``user``; their previous feed URL stops working. The
    caller commits."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user.id))
    session.add(
        CalendarFeed(
            user_id=user.id,
            secret_hash=hash_secret(secret),
            token_version=user.token_version,
            created_at=utcnow(),
        )
    )
    return secret


def feed_state(session: Session, secret: str) -> tuple[User, str] | None:
    """The feed's owner and the ETag of their feed, in one query; None if the secret
    is unknown, rotated, or its owner deactivated or changed role or password.

    The ETag digests the number of visible tasks with a due date, their greatest
    ``updated_at`` and the sum of their ids and versions: any write moves
    ``updated_at`` forward, and a deletion or a task leaving the owner's view changes
    the count."""
    visible = and_(
        Task.due_date.isnot(None),
        or_(User.role == Role.ADMIN, Task.assigned_to_id == User.id),
    )
    aggregate = [
        select(function).where(visible).correlate(User).scalar_subquery()
        for function in (
            func.count(Task.id),
            func.max(Task.updated_at),
            func.coalesce(func.sum(Task.id + Task.version), 0),
        )
    ]
    row = session.execute(
        select(User, *aggregate)
        .join(CalendarFeed, CalendarFeed.user_id == User.id)
        .where(
            CalendarFeed.secret_hash == hash_secret(secret),
            CalendarFeed.token_version == User.token_version,
            User.is_active,
        )
    ).first()
    if row is None:
        return None
    user, count, latest, checksum = row
    digest = hashlib.sha256(f"{user.id}:{count}:{latest}:{checksum}".encode()).hexdigest()
    return user, digest[:32]


def feed_chunks(session: Session, user: User, uid_domain: str) -> Iterator[bytes]:
    """The feed's body, piece by piece: the calendar's header, VTODOs in batches of
    :data:`BATCH`, the footer."""
    calendar = Calendar()
    calendar.add("prodid", "-//taskapp//task feed//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"taskapp: {user.username}")
    head, _, tail = calendar.to_ical().rpartition(b"END:VCALENDAR")
    yield head
    query = (
        visible_tasks(user)
        .with_only_columns(*COLUMNS)
        .where(Task.due_date.isnot(None))
        .order_by(Task.id)
        .execution_options(yield_per=BATCH)
    )
    for rows in session.execute(query).partitions():
        yield b"".join(_RENDERED.get(row, uid_domain) for row in rows)
    yield b"END:VCALENDAR" + tail


def vtodo(task, uid_domain: str) -> Todo:
    """One task as a VTODO (``task`` has the attributes of :data:`COLUMNS`). The
    property values are icalendar's own types (UTC datetimes, DATE for DUE), set
    directly: ``Component.add`` would infer the same types several times slower."""
    todo = Todo()
    todo["UID"] = vText(f"task-{task.id}@{uid_domain}")
    todo["DTSTAMP"] = vDatetime(task.updated_at)
    todo["LAST-MODIFIED"] = vDatetime(task.updated_at)
    todo["CREATED"] = vDatetime(task.created_at)
    todo["SUMMARY"] = vText(task.title)
    todo["DESCRIPTION"] = vText(task.description)
    todo["STATUS"] = vText(STATUS[task.status])
    todo["PRIORITY"] = vInt(PRIORITY[task.priority])
    todo["DUE"] = vDate(task.due_date)
    if task.completed_at is not None:
        todo["COMPLETED"] = vDatetime(task.completed_at)
    if task.recurrence:
        todo["DTSTART"] = vDate(task.due_date)
        todo["RRULE"] = _remaining_rule(task.recurrence, task.occurrence)
    return todo


class RenderedVtodos:
    """A bounded LRU of serialised VTODOs keyed by (id, version, updated_at, UID
    domain): ``updated_at`` too, so that a writer that moved only the timestamp, or
    another database behind the same process (tests), can never be served stale."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, task, uid_domain: str) -> bytes:
        key = (task.id, task.version, task.updated_at, uid_domain)
        with self.lock:
            rendered = self.entries.get(key)
            if rendered is not None:
                self.entries.move_to_end(key)
                return rendered
        rendered = vtodo(task, uid_domain).to_ical()
        with self.lock:
            self.entries[key] = rendered
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return rendered

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


_RENDERED = RenderedVtodos(CACHE_SIZE)


def _remaining_rule(rule: str, occurrence: int | None) -> vRecur:
    """The rule as seen from this occurrence: COUNT less the occurrences before it, and
    UNTIL as a date like DUE (RFC 5545 wants the same value type as DTSTART)."""
    recur = vRecur.from_ical(rule)
    if "COUNT" in recur and occurrence:
        recur["COUNT"] = [max(1, recur["COUNT"][0] - occurrence + 1)]
    if "UNTIL" in recur and hasattr(recur["UNTIL"][0], "date"):
        recur["UNTIL"] = [recur["UNTIL"][0].date()]
    return recur
