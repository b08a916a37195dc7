"""Live changes: a commit-safe position on every activity-log entry; stream tickets

``commit_position`` (PostgreSQL): one row per transaction that wrote activity-log
entries, numbered in commit order. Ids are taken before commit, so "entries after the
last id I saw" skips an entry whose transaction took a lower id but committed later. A
deferred constraint trigger runs at COMMIT, takes a transaction-scoped advisory lock and
inserts the transaction's row (``seq`` from a sequence, ``xid`` = pg_current_xact_id());
the lock is released only once the commit is visible, so a transaction's ``seq`` is
higher than that of every transaction that committed before it, and a reader that sees
``seq`` n sees everything below n. ``activity_log.xid`` (the writing transaction's id,
the column's default, whoever writes the entry: the audit listener, the sweeps' INSERT
... SELECT, raw SQL) joins an entry to its transaction. SQLite serialises writers, so
its entry ids are already in commit order: ``xid`` stays 0 and ``commit_position`` empty.

``activity_log.previous_assignee_id``: the assignee a change took the task away from
(set by the audit listener on a reassignment), so that the old assignee hears that the
task left them.

``stream_ticket``: single-use, short-lived tickets that let a browser's EventSource
(which cannot send headers) open the event stream; only a SHA-256 of the ticket is kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

XID_DEFAULT = "pg_current_xact_id()::text::bigint"
COMMIT_LOCK = 7263001
"""The advisory lock that orders commits of activity-log entries (any constant)."""
POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION live_commit_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('taskapp.commit_positioned', true) IS DISTINCT FROM
            pg_current_xact_id()::text THEN
        PERFORM pg_advisory_xact_lock({COMMIT_LOCK});
        INSERT INTO commit_position (xid) VALUES ({XID_DEFAULT});
        PERFORM set_config('taskapp.commit_positioned', pg_current_xact_id()::text, true);
    END IF;
    RETURN NULL;
END;
$$;
"""
POSTGRESQL_TRIGGER = (
    "CREATE CONSTRAINT TRIGGER activity_log_commit_position AFTER INSERT ON activity_log "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION live_commit_position()"
)


def upgrade():
    op.add_column(
        "activity_log", sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("activity_log", sa.Column("previous_assignee_id", sa.Integer(), nullable=True))
    op.create_index("ix_activity_log_position", "activity_log", ["xid", "id"])
    op.create_table(
        "commit_position",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_commit_position")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE activity_log ALTER COLUMN xid SET DEFAULT {XID_DEFAULT}")
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)
    op.create_table(
        "stream_ticket",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("pat_id", sa.Integer(), nullable=True),
        sa.Column("credential_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_stream_ticket_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_stream_ticket")),
    )
    op.create_index("ix_stream_ticket_expires", "stream_ticket", ["expires_at"])


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER activity_log_commit_position ON activity_log")
        op.execute("DROP FUNCTION live_commit_position()")
    op.drop_table("commit_position")
    op.drop_index("ix_stream_ticket_expires", table_name="stream_ticket")
    op.drop_table("stream_ticket")
    op.drop_index("ix_activity_log_position", table_name="activity_log")
    op.drop_column("activity_log", "previous_assignee_id")
    op.drop_column("activity_log", "xid")
