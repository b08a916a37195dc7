"""The task, with its status, its priority (stored as a rank) and its shape (the roles
its fields play, written once on its columns); the counters database triggers keep per
assignee; a user's calendar feed secret."""

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from taskapp.models import SQLITE_AUTOINCREMENT, Base, UTCDateTime, enum_column, utcnow
from taskapp.users.models import User


class Status(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    OVERDUE = "OVERDUE"


class Priority(enum.StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"

    @property
    def rank(self) -> int:
        return list(Priority).index(self) + 1


class PriorityRank(TypeDecorator):
    """Priority stored as its rank (1 LOW .. 3 HIGH), so ORDER BY priority is by rank
    and an index on the column serves that order."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else Priority(value).rank

    def process_result_value(self, value, dialect):
        return None if value is None else list(Priority)[value - 1]


OPEN_TASKS = "status IN ('PENDING', 'IN_PROGRESS')"
"""The predicate of the partial index of open tasks by priority and due date."""


def not_null(column: str) -> dict:
    """A partial index's predicate for a column most rows leave null, on both dialects."""
    predicate = text(f"{column} IS NOT NULL")
    return {"postgresql_where": predicate, "sqlite_where": predicate}


TRACKED = "tracked"
"""A task field whose changes the audit trail records (under its API name)."""
SNAPSHOT = "snapshot"
"""A task field kept on its log entry (``task_snapshot``): what a webhook announces."""
SERIES = "series"
"""A task field the next occurrence of a recurring task copies."""


def shape(*roles: str, api: str | None = None) -> dict:
    """The task's shape, written once, on its columns (``info``, which no DDL reads):
    the roles a field plays, and its API name where it differs from the attribute's.
    The audit trail, the webhook payload and the series derive their fields from it
    (:func:`task_fields`)."""
    return {"shape": frozenset(roles), "api": api}


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_assignee_status_due", "assigned_to_id", "status", "due_date", "id"),
        Index("ix_task_assignee_created", "assigned_to_id", "created_at", "id"),
        Index("ix_task_status_due", "status", "due_date", "id"),
        Index("ix_task_created", "created_at", "id"),
        # Most tasks leave these null: partial, a row outside writes no entry (0012).
        Index("ix_task_series", "series_id", "id", **not_null("series_id")),
        Index("ix_task_reminder_due", "reminded_at", "remind_at", **not_null("remind_at")),
        Index(
            "ix_task_reminder_mail",
            "reminder_mail_queued_at",
            **not_null("reminder_mail_queued_at"),
        ),
        # One per ADMIN ordering (migration 0007), each ending in id as the order does.
        # Search's trigram indexes are on TaskSearch, not here (migration 0012).
        Index("ix_task_title", "title", "id"),
        Index("ix_task_priority", "priority", "id"),
        Index(
            "ix_task_open_priority_due",
            "priority",
            "due_date",
            "id",
            postgresql_where=text(OPEN_TASKS),
            sqlite_where=text(OPEN_TASKS),
        ),
        Index("ix_task_due", "due_date", "id"),
        Index("ix_task_updated", "updated_at", "id"),
        Index("ix_task_status", "status", "id"),
        CheckConstraint("priority BETWEEN 1 AND 3", name="priority_rank"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=shape(SNAPSHOT))
    title: Mapped[str] = mapped_column(String(200), info=shape(TRACKED, SNAPSHOT, SERIES))
    description: Mapped[str] = mapped_column(
        Text, default="", info=shape(TRACKED, SNAPSHOT, SERIES)
    )
    status: Mapped[Status] = mapped_column(
        enum_column(Status), default=Status.PENDING, info=shape(TRACKED, SNAPSHOT)
    )
    priority: Mapped[Priority] = mapped_column(
        PriorityRank, default=Priority.MEDIUM, info=shape(TRACKED, SNAPSHOT, SERIES)
    )
    due_date: Mapped[date | None] = mapped_column(Date, info=shape(TRACKED, SNAPSHOT))
    assigned_to_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id"), info=shape(TRACKED, SNAPSHOT, SERIES, api="assigned_to")
    )
    created_by_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id"), info=shape(SNAPSHOT, SERIES, api="created_by")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=shape(SNAPSHOT))
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, info=shape(SNAPSHOT)
    )
    completed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=shape(TRACKED, SNAPSHOT)
    )
    version: Mapped[int] = mapped_column(Integer, default=1)

    recurrence: Mapped[str | None] = mapped_column(String(500), info=shape(TRACKED, SNAPSHOT))
    """An RFC 5545 RRULE (see :mod:`taskapp.tasks.recurrence`), or None for a one-off task."""
    series_id: Mapped[int | None] = mapped_column(Integer, info=shape(SNAPSHOT, api="series"))
    """The id shared by every occurrence of a recurring task (its first task's id).
    Not a foreign key: the series outlives a deleted first occurrence."""
    series_start: Mapped[date | None] = mapped_column(Date)
    """The rule's DTSTART: the due date of the series' first occurrence."""
    occurrence: Mapped[int | None] = mapped_column(Integer)
    """1 for the series' first occurrence, 2 for the next...: how COUNT is honoured."""
    next_occurrence_id: Mapped[int | None] = mapped_column(Integer)
    """Set when completing this task created the next occurrence, so re-opening and
    re-completing it never creates a second one (kept if that task is deleted)."""
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime, info=shape(TRACKED, SNAPSHOT))
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the reminder sweep announced ``remind_at``; None while it is armed."""
    reminder_mail_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set while a reminder e-mail is owed (see :mod:`taskapp.tasks.reminders`)."""

    assigned_to: Mapped[User] = relationship(foreign_keys=[assigned_to_id], lazy="raise")

    __mapper_args__ = {"version_id_col": version}

    @property
    def assigned_to_username(self) -> str:
        return self.assigned_to.username

    @property
    def etag(self) -> str:
        return task_etag(self.id, self.version)


def task_fields(role: str) -> dict[str, str]:
    """The task's fields playing ``role`` (in column order): attribute -> API name."""
    return {
        column.key: column.info["api"] or column.key
        for column in Task.__table__.columns
        if role in column.info.get("shape", ())
    }


def task_etag(task_id: int, version: int) -> str:
    """A task's ETag (for If-Match and If-None-Match): its id and row version."""
    return f'"{task_id}-{version}"'


class CalendarFeed(Base):
    """A user's secret calendar feed URL, stored as a SHA-256 of its secret. One per
    user: rotating replaces the row. ``token_version`` is the owner's at creation, so
    the feed dies with a role, password or activation change, like their tokens."""

    __tablename__ = "calendar_feed"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskSearch(Base):
    """The text search reads: each task's title, description and assignee, copied by
    database triggers (migration 0012) when a task is created, one of them changes or the
    task is deleted (PostgreSQL: also emptied by a TRUNCATE of ``task``).
    Apart from ``task`` so that the trigram indexes (PostgreSQL) are written only when
    the text changes: a status change (the overdue sweep) is not a HOT update and would
    otherwise write an entry in them for every task it touches. The assignee is copied
    too, so that an INTERN's search is limited to their tasks inside this table."""

    __tablename__ = "task_search"
    __table_args__ = (Index("ix_task_search_assignee", "assigned_to_id"),)

    task_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    assigned_to_id: Mapped[int] = mapped_column(Integer)


class TaskSearchTitle(Base):
    """Each task's title, lowered, and its assignee, copied by database triggers
    (migration 0014) like TaskSearch's text. Read only to count a search: this narrow
    table stays in memory where TaskSearch's descriptions do not, and the lowered copy is
    matched with LIKE, the comparison ILIKE makes after lowering both sides."""

    __tablename__ = "task_search_title"
    __table_args__ = (Index("ix_task_search_title_assignee", "assigned_to_id"),)

    task_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lowered: Mapped[str] = mapped_column(Text)
    assigned_to_id: Mapped[int] = mapped_column(Integer)


class TaskCounter(Base):
    """How many tasks each assignee has per status, priority and whether they have a due
    date. Written only by database triggers (migrations 0002 and 0013), in the
    transaction that changes the tasks; read to count large listings (see
    tasks/queries.py)."""

    __tablename__ = "task_counter"

    assigned_to_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        primary_key=True,
    )
    priority: Mapped[Priority] = mapped_column(PriorityRank, primary_key=True)
    has_due_date: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class TaskChange(Base):
    """How many times the tasks assigned to each user have changed (created, edited,
    reassigned to or away from them, swept, deleted). Written only by database triggers
    (migration 0007) in the transaction of the change; only ever grows. A listing's ETag
    is built from it without running the listing (see tasks/queries.py change_stamp)."""

    __tablename__ = "task_change"

    assigned_to_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
