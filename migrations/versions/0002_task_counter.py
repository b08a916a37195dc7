"""task_counter: exact task counts by assignee, status and priority, kept by triggers

Lets a listing filtered only by status, priority and assignee (an ADMIN's list of all
PENDING tasks, say) count its rows by summing at most a few thousand counters instead of
scanning hundreds of thousands of index entries. Triggers keep the counters in the same
transaction as the rows, whoever writes them (ORM, the sweep's set-based UPDATE, raw SQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEY = "assigned_to_id, status, priority"

# PostgreSQL: statement-level triggers over transition tables, so a set-based UPDATE of
# 100k rows applies one grouped delta, not 100k trigger calls. Deltas are applied in key
# order so that concurrent writers lock counter rows in the same order.
POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION task_counter_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM task_counter;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO task_counter AS c ({KEY}, n)
        SELECT {KEY}, count(*) FROM new_rows GROUP BY {KEY} ORDER BY {KEY}
        ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_counter AS c ({KEY}, n)
        SELECT {KEY}, -count(*) FROM old_rows GROUP BY {KEY} ORDER BY {KEY}
        ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO task_counter AS c ({KEY}, n)
        SELECT {KEY}, sum(delta) FROM (
            SELECT {KEY}, 1 AS delta FROM new_rows
            UNION ALL
            SELECT {KEY}, -1 AS delta FROM old_rows
        ) AS changes
        GROUP BY {KEY} HAVING sum(delta) <> 0 ORDER BY {KEY}
        ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END;
$$;
"""
POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER task_counter_insert AFTER INSERT ON task "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_counter_apply()",
    "CREATE TRIGGER task_counter_update AFTER UPDATE ON task "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION task_counter_apply()",
    "CREATE TRIGGER task_counter_delete AFTER DELETE ON task "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION task_counter_apply()",
    "CREATE TRIGGER task_counter_truncate AFTER TRUNCATE ON task "
    "FOR EACH STATEMENT EXECUTE FUNCTION task_counter_apply()",
]


def _sqlite_bump(row: str, delta: str) -> str:
    return (
        f"INSERT INTO task_counter ({KEY}, n) "
        f"VALUES ({row}.assigned_to_id, {row}.status, {row}.priority, {delta}) "
        f"ON CONFLICT ({KEY}) DO UPDATE SET n = n + {delta};"
    )


SQLITE_TRIGGERS = [
    f"CREATE TRIGGER task_counter_insert AFTER INSERT ON task BEGIN {_sqlite_bump('NEW', '1')} END",
    "CREATE TRIGGER task_counter_update AFTER UPDATE OF assigned_to_id, status, priority "
    f"ON task BEGIN {_sqlite_bump('OLD', '-1')} {_sqlite_bump('NEW', '1')} END",
    "CREATE TRIGGER task_counter_delete AFTER DELETE ON task "
    f"BEGIN {_sqlite_bump('OLD', '-1')} END",
]


def upgrade():
    op.create_table(
        "task_counter",
        sa.Column("assigned_to_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "assigned_to_id", "status", "priority", name=op.f("pk_task_counter")
        ),
    )
    op.execute(
        f"INSERT INTO task_counter ({KEY}, n) SELECT {KEY}, count(*) FROM task GROUP BY {KEY}"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER task_counter_{name} ON task")
        op.execute("DROP FUNCTION task_counter_apply()")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER task_counter_{name}")
    op.drop_table("task_counter")
