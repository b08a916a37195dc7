"""SQLite: AUTOINCREMENT on every table whose ids are exposed, so an id is never reused

Without AUTOINCREMENT SQLite gives a new row ``max(rowid) + 1``: after deleting the
newest task the next task got its id, its activity log then mixed two tasks and the
ETag ``"12-1"`` named two different tasks. With it, SQLite keeps the largest id ever
used in ``sqlite_sequence`` and never goes below it.

SQLite can only declare AUTOINCREMENT when a table is created, so each table is rebuilt
(alembic's batch mode: create the new table, copy the rows with their ids, drop the old
one, rename). Dropping a table drops its triggers and SQLite refuses the rename while a
trigger names a missing table, so every trigger is saved and dropped first and created
again at the end, word for word; every explicit index of the rebuilt tables is created
again from its saved SQL too (batch mode cannot reflect ``lower(username)`` or a partial
index's WHERE). The sequences start above every id known to have been used, including
deleted tasks still named by the activity log and revoked tokens named by their events.

PostgreSQL: nothing to do, sequences never hand out a value twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = (
    "user_account",
    "task",
    "activity_log",
    "personal_access_token",
    "token_event",
    "idempotency_key",
    "webhook",
    "webhook_outbox",
    "webhook_delivery",
    "webhook_attempt",
)
"""Every table with an integer surrogate key (the tables a later migration adds declare
``sqlite_autoincrement`` on their model and get it when they are created)."""
USED_ELSEWHERE = {
    "task": (
        "SELECT max(task_id) FROM activity_log",
        "SELECT max(series_id) FROM task",
        "SELECT max(next_occurrence_id) FROM task",
    ),
    "personal_access_token": ("SELECT max(token_id) FROM token_event",),
}
"""Ids of deleted rows that other rows still name: the sequence starts above them."""


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    bind = op.get_bind()
    triggers = bind.execute(
        sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    ).all()
    indexes = bind.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join(repr(t) for t in TABLES)}) ORDER BY name"
        )
    ).all()
    for name, _ in triggers:
        op.execute(f'DROP TRIGGER "{name}"')
    for table in TABLES:
        _rebuild(table)
    for name, statement in indexes:
        op.execute(f'DROP INDEX IF EXISTS "{name}"')
        op.execute(statement)
    for _, statement in triggers:
        op.execute(statement)
    for table, queries in USED_ELSEWHERE.items():
        _start_sequence_above(bind, table, queries)


def _rebuild(table: str) -> None:
    with warnings.catch_warnings():
        # Reflecting a foreign key to user_account reflects its lower(username) index,
        # which SQLAlchemy cannot reflect; it is created again from its SQL above.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def _start_sequence_above(bind, table: str, queries: tuple[str, ...]) -> None:
    used = [bind.execute(sa.text(query)).scalar() for query in queries]
    highest = max((value for value in used if value is not None), default=None)
    if highest is None:
        return
    current = bind.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": table}
    ).scalar()
    if current is None:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
            {"name": table, "seq": highest},
        )
    elif current < highest:
        bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name"),
            {"name": table, "seq": highest},
        )


def downgrade():
    """Nothing to undo: AUTOINCREMENT is invisible to the schema of revision 0007 and
    to the code that runs on it (it only stops ids from being reused)."""
