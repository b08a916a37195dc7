"""The activity log: one entry per write that changed a task, and what the write was."""

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    BindParameter,
    ForeignKey,
    Index,
    Integer,
    String,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskapp import origin
from taskapp.models import SQLITE_AUTOINCREMENT, Base, Source, UTCDateTime, enum_column, utcnow
from taskapp.users.models import User


class Action(enum.StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    MARKED_OVERDUE = "MARKED_OVERDUE"
    DELETED = "DELETED"
    REMINDED = "REMINDED"


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
    action: Mapped[Action] = mapped_column(enum_column(Action))
    changes: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    source: Mapped[Source] = mapped_column(enum_column(Source, length=10))
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
    which joins the entry to its CommitPosition (events/models.py); 0 on SQLite."""
    previous_assignee_id: Mapped[int | None] = mapped_column(Integer)
    """On a reassignment, who the task was taken from (they hear that it left them)."""

    actor: Mapped[User | None] = relationship(lazy="raise")

    @property
    def actor_username(self) -> str | None:
        return self.actor.username if self.actor is not None else None
