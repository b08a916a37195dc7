"""What every feature's models build on: ``Base`` (one metadata, one registry, so a
relationship may name a model of another feature), the shared column types and enums,
and the one table no feature owns (idempotency keys, of :mod:`taskapp.idempotency`).

Each feature's own tables are in its ``models.py`` (``taskapp/tasks/models.py``...);
:func:`taskapp.features.import_models` imports them all. Plain SQLAlchemy 2: importing
a models module loads nothing of Flask, the web layer, Celery or the CLI.
``taskapp.extensions`` builds flask-sqlalchemy's ``db`` on this ``Base``.
"""

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


SQLITE_AUTOINCREMENT = {"sqlite_autoincrement": True}
"""On every table whose ids are exposed: SQLite then never hands out a deleted row's id
again (without it a new row gets ``max(id) + 1``). PostgreSQL sequences never do."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def insert_values(obj) -> dict:
    """The row an INSERT of the transient ``obj`` writes, by column: each column's value,
    or its Python default (scalar or callable) where ``obj`` leaves it unset (None), as a
    flush fills it; a primary key left unset is left out, for the database to number.
    For an INSERT made outside the flush: SQLAlchemy applies no Python default inside a
    data-modifying CTE."""
    values = {}
    for column in obj.__table__.columns:
        value = getattr(obj, column.key)
        if value is None and column.default is not None:
            default = column.default
            value = default.arg(None) if default.is_callable else default.arg
        if value is not None or not column.primary_key:
            values[column.key] = value
    return values


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


def enum_column(enum_cls: type[enum.Enum], length: int = 20) -> Enum:
    """An enum stored as its values in a VARCHAR with a CHECK constraint."""
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        create_constraint=True,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
        name=enum_cls.__name__.lower(),
    )


class Role(enum.StrEnum):
    """A user's role (:class:`taskapp.users.models.User`), which every feature's rules and
    the web side's permission checks read."""

    ADMIN = "ADMIN"
    INTERN = "INTERN"


class Source(enum.StrEnum):
    """What wrote a row: the API, the CLI or a job (activity-log entries, token events)."""

    API = "api"
    CLI = "cli"
    SYSTEM = "system"


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
