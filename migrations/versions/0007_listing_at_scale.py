"""task_change counters for list ETags; indexes for every ADMIN listing shape

``task_change`` counts, per assignee, every change to the tasks assigned to them (the old
and the new assignee of a reassignment both count), kept by triggers in the transaction
of the change, whoever writes it (ORM, the sweep's set-based UPDATE, raw SQL). A
listing's ETag comes from it without running the listing.

Indexes: one per ordering an ADMIN listing can ask for (each ending in ``id``, as the
order does, so a page is the first rows of an index walk); ``(priority, due_date, id)``
of open tasks only (partial), for ``status=PENDING,IN_PROGRESS&priority=..&ordering=
-priority,due_date``; on PostgreSQL pg_trgm GIN indexes on title and description, which
serve ``search`` (ILIKE '%word%'). SQLite has no trigram index: its search reads the
table (fine at its embedded scale).

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None

# PostgreSQL: statement-level triggers over transition tables (one grouped upsert for the
# sweep's 100k rows), counters bumped in key order so concurrent writers lock alike.
POSTGRESQL_FUNCTION = """
CREATE FUNCTION task_change_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_change AS c (assigned_to_id, n)
        SELECT DISTINCT assigned_to_id, 1 FROM new_rows ORDER BY 1
        ON CONFLICT (assigned_to_id) DO UPDATE SET n = c.n + 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_change AS c (assigned_to_id, n)
        SELECT DISTINCT assigned_to_id, 1 FROM old_rows ORDER BY 1
        ON CONFLICT (assigned_to_id) DO UPDATE SET n = c.n + 1;
    ELSE
        INSERT INTO task_change AS c (assigned_to_id, n)
        SELECT assigned_to_id, 1 FROM (
            SELECT assigned_to_id FROM new_rows UNION SELECT assigned_to_id FROM old_rows
        ) AS changed ORDER BY 1
        ON CONFLICT (assigned_to_id) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END;
$$;
"""
POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER task_change_insert AFTER INSERT ON task "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_change_bump()",
    "CREATE TRIGGER task_change_update AFTER UPDATE ON task "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION task_change_bump()",
    "CREATE TRIGGER task_change_delete AFTER DELETE ON task "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION task_change_bump()",
]


def _sqlite_bump(row: str) -> str:
    return (
        f"INSERT INTO task_change (assigned_to_id, n) VALUES ({row}.assigned_to_id, 1) "
        "ON CONFLICT (assigned_to_id) DO UPDATE SET n = n + 1;"
    )


SQLITE_TRIGGERS = [
    f"CREATE TRIGGER task_change_insert AFTER INSERT ON task BEGIN {_sqlite_bump('NEW')} END",
    "CREATE TRIGGER task_change_update AFTER UPDATE ON task "
    f"BEGIN {_sqlite_bump('OLD')} {_sqlite_bump('NEW')} END",
    f"CREATE TRIGGER task_change_delete AFTER DELETE ON task BEGIN {_sqlite_bump('OLD')} END",
]


BTREE_INDEXES = {
    "ix_task_title": ["title", "id"],
    "ix_task_priority": ["priority", "id"],
    "ix_task_due": ["due_date", "id"],
    "ix_task_updated": ["updated_at", "id"],
    "ix_task_status": ["status", "id"],
}
TRIGRAM_COLUMNS = ("title", "description")
OPEN_TASKS = "status IN ('PENDING', 'IN_PROGRESS')"


def upgrade():
    for name, columns in BTREE_INDEXES.items():
        op.create_index(name, "task", columns)
    op.create_index(
        "ix_task_open_priority_due",
        "task",
        ["priority", "due_date", "id"],
        postgresql_where=sa.text(OPEN_TASKS),
        sqlite_where=sa.text(OPEN_TASKS),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in TRIGRAM_COLUMNS:
            op.execute(
                f"CREATE INDEX ix_task_{column}_trgm ON task USING gin ({column} gin_trgm_ops)"
            )
    op.create_table(
        "task_change",
        sa.Column("assigned_to_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("assigned_to_id", name=op.f("pk_task_change")),
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
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER task_change_{name} ON task")
        op.execute("DROP FUNCTION task_change_bump()")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER task_change_{name}")
    op.drop_table("task_change")
    if op.get_bind().dialect.name == "postgresql":
        for column in TRIGRAM_COLUMNS:
            op.execute(f"DROP INDEX ix_task_{column}_trgm")
    op.drop_index("ix_task_open_priority_due", table_name="task")
    for name in BTREE_INDEXES:
        op.drop_index(name, table_name="task")
