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

Each VTODO is written line by line from icalendar's property value types (which do
the RFC 5545 escaping and formatting) and icalendar's ``Contentline`` (which folds long
lines), without building ``Todo`` components: the component tree and its ``to_ical``
cost a few hundred microseconds per task, too slow for 10,000 tasks in a second (see
``bench/calendar_feed.py``). Nothing is cached between requests.
"""

import hashlib
import secrets
from collections.abc import Iterator

from icalendar import Calendar, Parameters, vDate, vDatetime, vInt, vRecur, vText
from icalendar.parser import Contentline
from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from taskapp.models import CalendarFeed, Priority, Status, Task, User, utcnow
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
    uid_suffix = vText(f"@{uid_domain}").to_ical()
    for rows in session.execute(query).partitions():
        yield b"".join(vtodo(row, uid_suffix) for row in rows)
    yield b"END:VCALENDAR" + tail


def vtodo(task, uid_suffix: bytes) -> bytes:
    """One task (a row of :data:`COLUMNS`) as a serialised VTODO.

    Every value is encoded by icalendar's property types (``vText`` escapes TEXT,
    ``vDatetime``/``vDate`` format instants and dates, ``vRecur`` the rule), and every
    line that can reach 75 octets goes through :func:`content_line`, which folds it
    with icalendar's ``Contentline``. Only the ``Component`` tree is skipped: building
    a ``Todo`` and its ``to_ical`` cost ~150-300 µs per task, this 25-40 µs.

    The UID is ``task-<id>@<domain>``: the domain's escaped form (``uid_suffix``) is
    computed once per feed, and ``task-<digits>`` has nothing to escape."""
    updated = vDatetime(task.updated_at).to_ical()
    due = vDate(task.due_date).to_ical()
    lines = [
        BEGIN_VTODO,
        content_line(b"UID", b"task-%d%s" % (task.id, uid_suffix)),
        content_line(b"SUMMARY", vText(task.title).to_ical()),
        content_line(b"DESCRIPTION", vText(task.description).to_ical()),
        STATUS_LINES[task.status],
        PRIORITY_LINES[task.priority],
        DATES % (updated, updated, vDatetime(task.created_at).to_ical(), due),
    ]
    if task.completed_at is not None:
        lines.append(COMPLETED % vDatetime(task.completed_at).to_ical())
    if task.recurrence:
        rule = _remaining_rule(task.recurrence, task.occurrence).to_ical()
        lines.append(DTSTART % due)
        lines.append(content_line(b"RRULE", rule))
    lines.append(END_VTODO)
    return b"".join(lines)


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
# Lines whose values have a fixed width (16-octet instants, 8-octet dates): they never
# reach 75 octets, so they need no fold check.
DATES = b"DTSTAMP:%s\r\nLAST-MODIFIED:%s\r\nCREATED:%s\r\nDUE" + DATE_PARAMETER + b":%s\r\n"
COMPLETED = b"COMPLETED:%s\r\n"
DTSTART = b"DTSTART" + DATE_PARAMETER + b":%s\r\n"
STATUS_LINES = {
    status: content_line(b"STATUS", vText(value).to_ical()) for status, value in STATUS.items()
}
PRIORITY_LINES = {
    priority: content_line(b"PRIORITY", vInt(value).to_ical())
    for priority, value in PRIORITY.items()
}


def _remaining_rule(rule: str, occurrence: int | None) -> vRecur:
    """The rule as seen from this occurrence: COUNT less the occurrences before it, and
    UNTIL as a date like DUE (RFC 5545 wants the same value type as DTSTART)."""
    recur = vRecur.from_ical(rule)
    if "COUNT" in recur and occurrence:
        recur["COUNT"] = [max(1, recur["COUNT"][0] - occurrence + 1)]
    if "UNTIL" in recur and hasattr(recur["UNTIL"][0], "date"):
        recur["UNTIL"] = [recur["UNTIL"][0].date()]
    return recur
