"""recurring tasks, reminders, calendar feeds

Task columns for the recurrence rule and its series (first task's id, DTSTART,
occurrence index, link to the next occurrence) and for reminders (when, when sent, an
e-mail still owed); the REMINDED action; the calendar_feed table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
OLD_ACTIONS = ("CREATED", "UPDATED", "STATUS_CHANGED", "MARKED_OVERDUE", "DELETED")
NEW_ACTIONS = (*OLD_ACTIONS, "REMINDED")
TASK_COLUMNS = [
    sa.Column("recurrence", sa.String(length=500), nullable=True),
    sa.Column("series_id", sa.Integer(), nullable=True),
    sa.Column("series_start", sa.Date(), nullable=True),
    sa.Column("occurrence", sa.Integer(), nullable=True),
    sa.Column("next_occurrence_id", sa.Integer(), nullable=True),
    sa.Column("remind_at", TIMESTAMP, nullable=True),
    sa.Column("reminded_at", TIMESTAMP, nullable=True),
    sa.Column("reminder_mail_queued_at", TIMESTAMP, nullable=True),
]
TASK_INDEXES = {
    "ix_task_series": ["series_id", "id"],
    "ix_task_reminder_due": ["reminded_at", "remind_at"],
    "ix_task_reminder_mail": ["reminder_mail_queued_at"],
}
# The append-only triggers of migration 0001, which SQLite drops with the table that
# batch mode rebuilds to change the action CHECK constraint.
APPEND_ONLY_SQLITE = [
    f"""CREATE TRIGGER activity_log_no_{op_name.lower()} BEFORE {op_name} ON activity_log
    BEGIN SELECT RAISE(ABORT, 'activity_log is append-only: {op_name} refused'); END;"""
    for op_name in ("UPDATE", "DELETE")
]


def _action_check(actions: tuple[str, ...]) -> str:
    return "action IN (" + ", ".join(f"'{action}'" for action in actions) + ")"


def _set_actions(actions: tuple[str, ...]) -> None:
    """Replace the CHECK constraint that lists the allowed activity-log actions."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_activity_log_action"), "activity_log", type_="check")
        op.create_check_constraint("action", "activity_log", _action_check(actions))
        return
    for op_name in ("update", "delete"):
        op.execute(f"DROP TRIGGER activity_log_no_{op_name}")
    with warnings.catch_warnings():
        # Reflecting activity_log's foreign key reflects user_account, whose
        # lower(username) index SQLAlchemy cannot reflect (and batch mode does not need).
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        with op.batch_alter_table("activity_log", recreate="always") as batch_op:
            batch_op.drop_constraint(op.f("ck_activity_log_action"), type_="check")
            batch_op.create_check_constraint("action", _action_check(actions))
    for statement in APPEND_ONLY_SQLITE:
        op.execute(statement)


def upgrade():
    for column in TASK_COLUMNS:
        op.add_column("task", column)
    for name, columns in TASK_INDEXES.items():
        op.create_index(name, "task", columns)
    op.create_table(
        "calendar_feed",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_calendar_feed_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_calendar_feed")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_calendar_feed_secret_hash")),
    )
    _set_actions(NEW_ACTIONS)


def downgrade():
    op.execute("DELETE FROM calendar_feed")
    op.drop_table("calendar_feed")
    for name in TASK_INDEXES:
        op.drop_index(name, "task")
    for column in reversed(TASK_COLUMNS):
        op.drop_column("task", column.name)
    _set_actions(OLD_ACTIONS)
