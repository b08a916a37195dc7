"""Secret calendar feed URLs and the iCalendar feed they serve.

Calendar apps cannot send a bearer header, so the credential is a secret in the URL:
256 random bits, stored only as its SHA-256 (a slow hash adds nothing to a secret that
cannot be guessed). One feed per user: rotating replaces the row, which kills the old
URL. The row keeps the owner's ``token_version``: a role, password or activation change
bumps it and the feed stops answering, like every other credential of theirs.

The feed (RFC 5545, built with the ``icalendar`` package) has one VTODO per task the
owner may see that has a due date, or, as :data:`EVENTS` (``?as=events``), one all-day
VEVENT on its due date: Google Calendar and Apple Calendar show only events.
:func:`feed_state` authenticates the secret and computes the feed's ETag in one query,
so a calendar app polling an unchanged feed costs one query and gets a 304.
:func:`feed_chunks` streams the body component by component from a server-side cursor,
so memory stays flat however many tasks.

Each VTODO is written line by line from icalendar's property value types (which do
the RFC 5545 escaping and formatting) and icalendar's ``Contentline`` (which folds long
lines), without building ``Todo`` components: the component tree and its ``to_ical``
cost a few hundred microseconds per task, too slow for 10,000 tasks in a second (see
``bench/calendar_feed.py``). Nothing is cached between requests.
"""

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

from icalendar import Calendar, Parameters, vDate, vDatetime, vInt, vRecur, vText
from icalendar.parser import Contentline
from sqlalchemy import Connection, and_, delete, func, select
from sqlalchemy.orm import Session

from taskapp.models import utcnow
from taskapp.tasks.models import CalendarFeed, Priority, Status, Task
from taskapp.users.models import User
from taskapp.visibility import seen_by, visible_tasks

SECRET_BYTES = 32
BATCH = 1000
FOLD_AT = 75
"""icalendar's ``Contentline`` folds a line once it reaches 75 octets (RFC 5545 3.1)."""
STATUS = {
    Status.PENDING: "NEEDS-ACTION",
    Status.OVERDUE: "NEEDS-ACTION",
    Status.IN_PROGRESS: "IN-PROCESS",
    Status.COMPLETED: "COMPLETED",
}
PRIORITY = {Priority.HIGH: 1, Priority.MEDIUM: 5, Priority.LOW: 9}
DATE_PARAMETER = b";" + Parameters({"VALUE": "DATE"}).to_ical()
"""DUE and DTSTART are dates, not the default DATE-TIME, so they say so (RFC 5545 3.2.20)."""
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
    Task.remind_at,
)
TODOS = "todos"
EVENTS = "events"
FORMS = (TODOS, EVENTS)
"""The two shapes of the feed: VTODOs (the default) or all-day VEVENTs."""
END_OF_DAY = time(23, 59, 59)


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


def feed_state(
    session: Session, secret: str, form: str = TODOS, uid_domain: str = ""
) -> tuple[User, str] | None:
    """The feed's owner and the ETag of their feed, in one query; None if the secret
    is unknown, rotated, or its owner deactivated or changed role or password.

    The ETag digests the number of visible tasks with a due date, their greatest
    ``updated_at`` and the sum of their ids and versions: any write moves
    ``updated_at`` forward, and a deletion or a task leaving the owner's view changes
    the count. The form (VTODOs or VEVENTs) and the UIDs' domain are in it too: the
    two forms of one feed never share an ETag."""
    visible = and_(
        Task.due_date.isnot(None),
        seen_by(User, Task.assigned_to_id),
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
    state = f"{user.id}:{count}:{latest}:{checksum}:{form}:{uid_domain}"
    digest = hashlib.sha256(state.encode()).hexdigest()
    return user, digest[:32]


def feed_chunks(
    session: Session, user: User, uid_domain: str, form: str = TODOS
) -> Iterator[bytes]:
    """The feed's body, piece by piece: the calendar's header, VTODOs (or VEVENTs, for
    :data:`EVENTS`) in batches of :data:`BATCH`, the footer. ``uid_domain`` is the
    configured ``CALENDAR_UID_DOMAIN``, never the request's host: one task has one UID
    whatever name the feed was fetched by."""
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
    uid_suffix = vText(f"@{uid_domain}").to_ical()
    component = vevent if form == EVENTS else vtodo
    with _transaction(session) as conn:
        for rows in conn.execute(query).partitions():
            yield b"".join(component(row, uid_suffix) for row in rows)
    yield b"END:VCALENDAR" + tail


@contextmanager
def _transaction(session: Session) -> Iterator[Connection]:
    """A connection of its own, in a transaction at the database's default isolation.

    A server-side cursor lives only inside a transaction, and a GET's session reads in
    autocommit (see ``taskapp.db``), so the stream cannot use the session's connection."""
    with session.get_bind().connect() as conn:
        isolation = conn.dialect.default_isolation_level
        conn = conn.execution_options(isolation_level=isolation)
        with conn.begin():
            yield conn


def vtodo(task, uid_suffix: bytes) -> bytes:
    """One task (a row of :data:`COLUMNS`) as a serialised VTODO.

    Every value is encoded by icalendar's property types (``vText`` escapes TEXT,
    ``vDatetime``/``vDate`` format instants and dates, ``vRecur`` the rule), and every
    line that can reach 75 octets goes through :func:`content_line`, which folds it
    with icalendar's ``Contentline``. Only the ``Component`` tree is skipped: building
    a ``Todo`` and its ``to_ical`` cost ~150-300 µs per task, this 25-40 µs.

    A one-off task (or a completed occurrence) has a ``DUE`` date and no ``DTSTART``.
    An open occurrence of a series carries the rule, which needs a ``DTSTART`` (RFC
    5545 3.8.2.4) that ``DUE`` must follow, of the same value type (3.8.2.3): both are
    floating times on the due day, 00:00:00 and 23:59:59, so the rule expands on the
    due dates and every app shows the due day. A completed occurrence has no rule: the
    next occurrence is its own task, with the rule."""
    updated = vDatetime(task.updated_at).to_ical()
    lines = [
        BEGIN_VTODO,
        content_line(b"UID", b"task-%d%s" % (task.id, uid_suffix)),
        content_line(b"SUMMARY", vText(task.title).to_ical()),
        content_line(b"DESCRIPTION", vText(task.description).to_ical()),
        STATUS_LINES[task.status],
        PRIORITY_LINES[task.priority],
        DATES % (updated, updated, vDatetime(task.created_at).to_ical()),
    ]
    if task.completed_at is not None:
        lines.append(COMPLETED % vDatetime(task.completed_at).to_ical())
    if _repeats(task):
        start = datetime.combine(task.due_date, time())
        end = datetime.combine(task.due_date, END_OF_DAY)
        lines.append(FLOATING_SPAN % (vDatetime(start).to_ical(), vDatetime(end).to_ical()))
        lines.append(content_line(b"RRULE", _remaining_rule(task, start).to_ical()))
    else:
        lines.append(DUE % vDate(task.due_date).to_ical())
    if task.remind_at is not None and task.status != Status.COMPLETED:
        lines.append(_valarm(task))
    lines.append(END_VTODO)
    return b"".join(lines)


def vevent(task, uid_suffix: bytes) -> bytes:
    """One task as an all-day VEVENT on its due date (``DTEND`` the next day, as RFC
    5545 writes a one-day event), transparent to free/busy. An open occurrence of a
    series carries the rule from its due date, like its VTODO; a reminder is a VALARM
    as in the VTODO. Events have no completion: a completed task stays on its day."""
    updated = vDatetime(task.updated_at).to_ical()
    lines = [
        BEGIN_VEVENT,
        content_line(b"UID", b"task-%d%s" % (task.id, uid_suffix)),
        content_line(b"SUMMARY", vText(task.title).to_ical()),
        content_line(b"DESCRIPTION", vText(task.description).to_ical()),
        PRIORITY_LINES[task.priority],
        DATES % (updated, updated, vDatetime(task.created_at).to_ical()),
        EVENT_DAY
        % (vDate(task.due_date).to_ical(), vDate(task.due_date + timedelta(days=1)).to_ical()),
    ]
    if _repeats(task):
        lines.append(content_line(b"RRULE", _remaining_rule(task, task.due_date).to_ical()))
    if task.remind_at is not None and task.status != Status.COMPLETED:
        lines.append(_valarm(task))
    lines.append(END_VEVENT)
    return b"".join(lines)


def _repeats(task) -> bool:
    """A task carries its series' rule while it is open: once completed, the next
    occurrence (its own task) carries it, so no future date is shown twice."""
    return bool(task.recurrence) and task.status != Status.COMPLETED


def _valarm(task) -> bytes:
    """The reminder as a display alarm at ``remind_at`` (an absolute UTC trigger: the
    next occurrence of a series gets its own ``remind_at``, hence its own alarm)."""
    return VALARM % (
        content_line(b"DESCRIPTION", vText(task.title).to_ical()),
        vDatetime(task.remind_at).to_ical(),
    )


def content_line(name: bytes, value: bytes) -> bytes:
    """``NAME[;PARAMETERS]:VALUE`` and its CRLF, folded by icalendar's ``Contentline``
    when it is :data:`FOLD_AT` octets or longer. A shorter line is one icalendar
    would return unchanged, so it skips the character-by-character fold (most lines
    of a feed)."""
    line = name + b":" + value
    if len(line) >= FOLD_AT:
        line = Contentline(line.decode()).to_ical()
    return line + b"\r\n"


BEGIN_VTODO = b"BEGIN:VTODO\r\n"
END_VTODO = b"END:VTODO\r\n"
BEGIN_VEVENT = b"BEGIN:VEVENT\r\n"
END_VEVENT = b"END:VEVENT\r\n"
# Lines whose values have a fixed width (16-octet instants, 8-octet dates): they never
# reach 75 octets, so they need no fold check.
DATES = b"DTSTAMP:%s\r\nLAST-MODIFIED:%s\r\nCREATED:%s\r\n"
DUE = b"DUE" + DATE_PARAMETER + b":%s\r\n"
FLOATING_SPAN = b"DTSTART:%s\r\nDUE:%s\r\n"
COMPLETED = b"COMPLETED:%s\r\n"
EVENT_DAY = (
    b"DTSTART" + DATE_PARAMETER + b":%s\r\nDTEND" + DATE_PARAMETER + b":%s\r\n"
    b"TRANSP:TRANSPARENT\r\n"
)
VALARM = b"BEGIN:VALARM\r\nACTION:DISPLAY\r\n%sTRIGGER;VALUE=DATE-TIME:%s\r\nEND:VALARM\r\n"
STATUS_LINES = {
    status: content_line(b"STATUS", vText(value).to_ical()) for status, value in STATUS.items()
}
PRIORITY_LINES = {
    priority: content_line(b"PRIORITY", vInt(value).to_ical())
    for priority, value in PRIORITY.items()
}


def _remaining_rule(task, start: date | datetime) -> vRecur:
    """The rule as seen from this occurrence: COUNT less the occurrences before it, and
    UNTIL of DTSTART's value type (RFC 5545 3.3.10): a date for a DATE start, that
    day's end as a floating time for a floating one (UNTIL is inclusive)."""
    recur = vRecur.from_ical(task.recurrence)
    if "COUNT" in recur and task.occurrence:
        recur["COUNT"] = [max(1, recur["COUNT"][0] - task.occurrence + 1)]
    if "UNTIL" in recur:
        until = recur["UNTIL"][0]
        day = until.date() if isinstance(until, datetime) else until
        recur["UNTIL"] = [datetime.combine(day, END_OF_DAY) if isinstance(start, datetime) else day]
    return recur
