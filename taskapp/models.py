"""Database models: users, tasks, the activity log, revoked tokens.

Plain SQLAlchemy 2 (``Base`` lives here): importing this module loads nothing of Flask,
the web layer, Celery or the CLI. ``taskapp.extensions`` builds flask-sqlalchemy's ``db``
on this ``Base``.
"""

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC that always comes back timezone-aware.

    SQLite has no timezone type; without this, values read back from it are naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    ADMIN = "ADMIN"
    INTERN = "INTERN"


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


class Action(enum.StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    MARKED_OVERDUE = "MARKED_OVERDUE"
    DELETED = "DELETED"


class Source(enum.StrEnum):
    API = "api"
    CLI = "cli"
    SYSTEM = "system"


class PriorityRank(TypeDecorator):
    """Priority stored as its rank (1 LOW .. 3 HIGH), so ORDER BY priority is by rank
    and an index on the column serves that order."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else Priority(value).rank

    def process_result_value(self, value, dialect):
        return None if value is None else list(Priority)[value - 1]


def _enum_column(enum_cls: type[enum.Enum], length: int = 20) -> Enum:
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        create_constraint=True,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
        name=enum_cls.__name__.lower(),
    )


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[Role] = mapped_column(_enum_column(Role), default=Role.INTERN)
    is_active: Mapped[bool] = mapped_column(default=True)
    date_joined: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_hash: Mapped[str] = mapped_column(String(255))
    token_version: Mapped[int] = mapped_column(default=1)
    """Bumped whenever role, password or is_active change: tokens carrying an older
    version stop working at once."""

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}>"


Index("uq_user_account_username_lower", func.lower(User.username), unique=True)


class RevokedToken(Base):
    """JWT ids that must no longer be accepted (logout, refresh rotation).

    Kept in the database, not Redis, so that revocation holds when Redis is down.
    Rows past ``expires_at`` are useless and purged by the periodic job.
    """

    __tablename__ = "revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


OPEN_TASKS = "status IN ('PENDING', 'IN_PROGRESS')"
"""The predicate of the partial index of open tasks by priority and due date."""


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_assignee_status_due", "assigned_to_id", "status", "due_date", "id"),
        Index("ix_task_assignee_created", "assigned_to_id", "created_at", "id"),
        Index("ix_task_status_due", "status", "due_date", "id"),
        Index("ix_task_created", "created_at", "id"),
        # One per ADMIN ordering (migration 0007), each ending in id as the order does;
        # PostgreSQL also has pg_trgm GIN indexes on title and description for search.
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
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[Status] = mapped_column(_enum_column(Status), default=Status.PENDING)
    priority: Mapped[Priority] = mapped_column(PriorityRank, default=Priority.MEDIUM)
    due_date: Mapped[date | None] = mapped_column(Date)
    assigned_to_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    assigned_to: Mapped[User] = relationship(foreign_keys=[assigned_to_id], lazy="raise")

    __mapper_args__ = {"version_id_col": version}

    @property
    def assigned_to_username(self) -> str:
        return self.assigned_to.username

    @property
    def etag(self) -> str:
        return task_etag(self.id, self.version)


def task_etag(task_id: int, version: int) -> str:
    """A task's ETag (for If-Match and If-None-Match): its id and row version."""
    return f'"{task_id}-{version}"'


class TaskCounter(Base):
    """How many tasks each assignee has per status and priority. Written only by
    database triggers (migration 0002), in the transaction that changes the tasks;
    read to count large listings (see tasks/queries.py)."""

    __tablename__ = "task_counter"

    assigned_to_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        primary_key=True,
    )
    priority: Mapped[Priority] = mapped_column(PriorityRank, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class TaskChange(Base):
    """How many times the tasks assigned to each user have changed (created, edited,
    reassigned to or away from them, swept, deleted). Written only by database triggers
    (migration 0007) in the transaction of the change; only ever grows. A listing's ETag
    is built from it without running the listing (see tasks/queries.py change_stamp)."""

    __tablename__ = "task_change"

    assigned_to_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class ActivityLog(Base):
    """One entry per write that changed a task. Append-only: see :mod:`taskapp.audit`."""

    __tablename__ = "activity_log"
    __table_args__ = (
        Index("ix_activity_log_task_created", "task_id", "created_at"),
        Index("ix_activity_log_assignee_created", "assignee_id", "created_at"),
        Index("ix_activity_log_created", "created_at", "id"),
        Index("ix_activity_log_actor_created", "actor_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer)
    """Deliberately not a foreign key: entries outlive their task."""
    task_title: Mapped[str] = mapped_column(String(200))
    action: Mapped[Action] = mapped_column(_enum_column(Action))
    changes: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    source: Mapped[Source] = mapped_column(_enum_column(Source, length=10))
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    """The task's assignee once the change was made: who (besides admins) may read it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="raise")

    @property
    def actor_username(self) -> str | None:
        return self.actor.username if self.actor is not None else None
