"""users, tasks, activity log, revoked tokens

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)

APPEND_ONLY_POSTGRESQL = """
CREATE FUNCTION activity_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'activity_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER activity_log_append_only
    BEFORE UPDATE OR DELETE ON activity_log
    FOR EACH ROW EXECUTE FUNCTION activity_log_append_only();
"""
APPEND_ONLY_SQLITE = [
    f"""CREATE TRIGGER activity_log_no_{op_name.lower()} BEFORE {op_name} ON activity_log
    BEGIN SELECT RAISE(ABORT, 'activity_log is append-only: {op_name} refused'); END;"""
    for op_name in ("UPDATE", "DELETE")
]


def _enum(name: str, *values: str, length: int = 20) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade():
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", _enum("role", "ADMIN", "INTERN"), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("date_joined", TIMESTAMP, nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
    )
    op.create_index(
        "uq_user_account_username_lower",
        "user_account",
        [sa.text("lower(username)")],
        unique=True,
    )

    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_token")),
    )
    op.create_index("ix_revoked_token_expires_at", "revoked_token", ["expires_at"])

    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "status",
            _enum("status", "PENDING", "IN_PROGRESS", "COMPLETED", "OVERDUE"),
            nullable=False,
        ),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("assigned_to_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("priority BETWEEN 1 AND 3", name=op.f("ck_task_priority_rank")),
        sa.ForeignKeyConstraint(
            ["assigned_to_id"],
            ["user_account.id"],
            name=op.f("fk_task_assigned_to_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user_account.id"], name=op.f("fk_task_created_by_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    op.create_index(
        "ix_task_assignee_status_due", "task", ["assigned_to_id", "status", "due_date", "id"]
    )
    op.create_index("ix_task_assignee_created", "task", ["assigned_to_id", "created_at", "id"])
    op.create_index("ix_task_status_due", "task", ["status", "due_date", "id"])
    op.create_index("ix_task_created", "task", ["created_at", "id"])

    op.create_table(
        "activity_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("task_title", sa.String(length=200), nullable=False),
        sa.Column(
            "action",
            _enum("action", "CREATED", "UPDATED", "STATUS_CHANGED", "MARKED_OVERDUE", "DELETED"),
            nullable=False,
        ),
        sa.Column(
            "changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("source", _enum("source", "api", "cli", "system", length=10), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_activity_log_actor_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_log")),
    )
    op.create_index("ix_activity_log_task_created", "activity_log", ["task_id", "created_at"])
    op.create_index(
        "ix_activity_log_assignee_created", "activity_log", ["assignee_id", "created_at"]
    )
    op.create_index("ix_activity_log_created", "activity_log", ["created_at", "id"])
    op.create_index("ix_activity_log_actor_created", "activity_log", ["actor_id", "created_at"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_POSTGRESQL)
    else:
        for statement in APPEND_ONLY_SQLITE:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER activity_log_append_only ON activity_log")
        op.execute("DROP FUNCTION activity_log_append_only()")
    op.drop_table("activity_log")
    op.drop_table("task")
    op.drop_table("revoked_token")
    op.drop_table("user_account")
