"""Database models: users, tasks, the activity log, revoked tokens and sessions, personal
access tokens and their audit events, idempotency keys.

Plain SQLAlchemy 2 (``Base`` lives here): importing this module loads nothing of Flask,
the web layer, Celery or the CLI. ``taskapp.extensions`` builds flask-sqlalchemy's ``db``
on this ``Base``.
"""

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    BindParameter,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from taskapp import origin

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


SQLITE_AUTOINCREMENT = {"sqlite_autoincrement": True}
"""On every table whose ids are exposed: SQLite then never hands out a deleted row's id
again (without it a new row gets ``max(id) + 1``). PostgreSQL sequences never do."""


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
    REMINDED = "REMINDED"


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
    __table_args__ = SQLITE_AUTOINCREMENT
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
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it was revoked (NULL for rows older than the column): a refresh token used
    again within JWT_REFRESH_REUSE_GRACE_SECONDS of it still answers."""


OPEN_TASKS = "status IN ('PENDING', 'IN_PROGRESS')"
"""The predicate of the partial index of open tasks by priority and due date."""


class RevokedSession(Base):
    """Logins that have ended (logout, a replayed refresh token). Every token of a login
    carries its ``sid``, whatever rotation minted it, so one row ends them all. Rows
    past ``expires_at`` (no token of the session can still be alive) are purged."""

    __tablename__ = "revoked_session"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


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
        Index("ix_task_series", "series_id", "id"),
        Index("ix_task_reminder_due", "reminded_at", "remind_at"),
        Index("ix_task_reminder_mail", "reminder_mail_queued_at"),
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
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=shape(SNAPSHOT))
    title: Mapped[str] = mapped_column(String(200), info=shape(TRACKED, SNAPSHOT, SERIES))
    description: Mapped[str] = mapped_column(
        Text, default="", info=shape(TRACKED, SNAPSHOT, SERIES)
    )
    status: Mapped[Status] = mapped_column(
        _enum_column(Status), default=Status.PENDING, info=shape(TRACKED, SNAPSHOT)
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
    """An RFC 5545 RRULE (see :mod:`taskapp.recurrence`), or None for a one-off task."""
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
    """Set while a reminder e-mail is owed (see :mod:`taskapp.reminders`)."""

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


def _origin_param(name: str, current) -> BindParameter:
    """A column default read when each statement runs (:mod:`taskapp.origin`). A bound
    parameter with a callable, not a Python default: SQLAlchemy leaves Python defaults
    unset inside a DML CTE (the PostgreSQL sweeps insert their entries in one), but it
    renders a SQL-expression default there and calls the parameter's callable at
    execution, for every statement, cached or not."""
    return bindparam(name, callable_=current, type_=String)


class ActivityLog(Base):
    """One entry per write that changed a task. Append-only: see :mod:`taskapp.audit`."""

    __tablename__ = "activity_log"
    __table_args__ = (
        Index("ix_activity_log_task_created", "task_id", "created_at"),
        Index("ix_activity_log_assignee_created", "assignee_id", "created_at"),
        Index("ix_activity_log_created", "created_at", "id"),
        Index("ix_activity_log_actor_created", "actor_id", "created_at"),
        Index("ix_activity_log_position", "xid", "id"),
        SQLITE_AUTOINCREMENT,
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
    task_snapshot: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    """The task's fields as the change left them (the last ones for a delete), written by
    the audit listener for the webhook payload; null for entries written set-based in
    SQL (the overdue sweep), whose payload is read from the task row by the relay."""
    request_id: Mapped[str | None] = mapped_column(
        String(128), default=_origin_param("origin_request_id", origin.request_id)
    )
    """The X-Request-ID of the request that wrote the entry (null for jobs and the CLI)."""
    job_id: Mapped[str | None] = mapped_column(
        String(64), default=_origin_param("origin_job_id", origin.job_id)
    )
    """The Celery task id of the job that wrote the entry (null for requests and the CLI)."""
    xid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    """PostgreSQL: the writing transaction's id (the column's default, migration 0008),
    which joins the entry to its CommitPosition; 0 on SQLite."""
    previous_assignee_id: Mapped[int | None] = mapped_column(Integer)
    """On a reassignment, who the task was taken from (they hear that it left them)."""

    actor: Mapped[User | None] = relationship(lazy="raise")

    @property
    def actor_username(self) -> str | None:
        return self.actor.username if self.actor is not None else None


class CommitPosition(Base):
    """PostgreSQL: one row per transaction that wrote activity-log entries, ``seq`` in
    commit order (a deferred trigger under an advisory lock, migration 0008); entries
    join it by ``xid``. Read by the live-changes feed and stream (events/log.py)."""

    __tablename__ = "commit_position"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger)


class StreamTicket(Base):
    """A single-use, short-lived ticket to open the event stream from a browser (whose
    EventSource cannot send headers); only its SHA-256 is stored. It carries what the
    credential that asked for it was, so the stream ends when that credential does."""

    __tablename__ = "stream_ticket"
    __table_args__ = (Index("ix_stream_ticket_expires", "expires_at"),)

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    token_version: Mapped[int] = mapped_column(Integer)
    sid: Mapped[str | None] = mapped_column(String(64))
    pat_id: Mapped[int | None] = mapped_column(Integer)
    credential_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PersonalAccessToken(Base):
    """A long-lived token for scripts (``tap_...``), owned by a user and limited to scopes.

    Only a keyed hash of the token is stored (see :mod:`taskapp.personal_tokens`); the
    unique index on it is the one lookup a request makes. ``owner_token_version`` is the
    owner's ``token_version`` when the token was made: a role, password or activation
    change bumps the owner's version and so ends the token, as it ends their JWTs.
    """

    __tablename__ = "personal_access_token"
    __table_args__ = SQLITE_AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(200))
    """Space-separated scope names."""
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    owner_token_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship(lazy="raise")

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class TokenAction(enum.StrEnum):
    CREATED = "CREATED"
    REVOKED = "REVOKED"


class TokenEvent(Base):
    """Who created or revoked which personal access token, and when (read by ADMINs).
    ``token_id`` is deliberately not a foreign key: events outlive their token."""

    __tablename__ = "token_event"
    __table_args__ = (Index("ix_token_event_created", "created_at", "id"), SQLITE_AUTOINCREMENT)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(Integer)
    token_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[TokenAction] = mapped_column(_enum_column(TokenAction, length=10))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    """None when the CLI acted."""
    source: Mapped[Source] = mapped_column(_enum_column(Source, length=10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` a user sent with a POST, and the answer to replay.

    A row is first a claim (``status_code`` null, ``claim`` a random id) committed on its
    own, so concurrent requests with the same key see it; the answer is written into it
    in the transaction that commits the created object. See :mod:`taskapp.idempotency`.
    """

    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_key_user_key"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the method, path and body: the same key with another request is a 422."""
    claim: Mapped[str] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    headers: Mapped[dict | None] = mapped_column(JSON)
    body: Mapped[str | None] = mapped_column(Text)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Webhook(Base):
    """A receiver URL a user registered. Secrets are stored encrypted (see
    :mod:`taskapp.signing`); after a rotation the previous one signs too until
    ``previous_secret_expires_at``."""

    __tablename__ = "webhook"
    __table_args__ = SQLITE_AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(500), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set by the first failed attempt after a success; cleared by a success."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[User] = relationship(lazy="raise")


class WebhookOutbox(Base):
    """Activity-log entries not yet turned into deliveries. A database trigger (migration
    0004) adds a row for every entry, in the entry's transaction, whoever writes it; the
    relay claims rows (SKIP LOCKED) and deletes them in the transaction that writes the
    deliveries."""

    __tablename__ = "webhook_outbox"
    __table_args__ = SQLITE_AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer)


class WebhookDelivery(Base):
    """One message to one webhook: the body is fixed when it is created, so retries and
    redeliveries send the same bytes under the same ``msg_id`` (``webhook-id``)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_webhook_created", "webhook_id", "created_at", "id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_created", "created_at"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum_column(DeliveryStatus, length=10), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """A Celery message for it was sent; not sent again before this (unless it fails)."""
    sending_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """A worker holds it until then (the lease); a killed worker's lease just expires."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    webhook: Mapped[Webhook] = relationship(lazy="raise")


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: what the receiver answered and how long it took."""

    __tablename__ = "webhook_attempt"
    __table_args__ = SQLITE_AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)
