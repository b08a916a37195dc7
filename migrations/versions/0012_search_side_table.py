"""Search text in a table of its own; sparse columns' indexes partial

A status change is not a HOT update (``status`` is indexed), so it writes a new entry in
every index on ``task``. The pg_trgm GIN indexes on title and description made the
overdue sweep pay trigram maintenance for text it never changes (10 s of an 11 s UPDATE
of 100k due tasks at 1M). The text that search reads now lives in ``task_search`` (one
row per task: its id, title and description), with the trigram indexes, written by
row triggers only when a task is created, its title or description changes, or it is
deleted (on PostgreSQL also emptied by a TRUNCATE of ``task``), whoever writes (ORM, raw
SQL). The copy of the existing text runs with ``task`` locked against writes, so no task
written while the migration runs can miss it. ``task`` keeps its own title and description:
the API, the audit trail and the ``title`` ordering read them there. The side table also
carries the assignee (indexed), so that an INTERN's search combines the owner and the
trigram indexes in one bitmap scan, as it did on ``task``; a reassignment rewrites it.

The indexes on columns most tasks leave null (``series_id``, ``remind_at``,
``reminder_mail_queued_at``) become partial (``IS NOT NULL``): a row outside the
predicate writes no entry, and every query that uses them compares the column (which
implies it is not null). Both dialects keep the same triggers and indexes, except the
trigram indexes (PostgreSQL only; SQLite's search reads the side table).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COPIED = ("title", "description", "assigned_to_id")
CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in COPIED)
POSTGRESQL_FUNCTION = """
CREATE FUNCTION task_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_search (task_id, title, description, assigned_to_id)
        VALUES (NEW.id, NEW.title, NEW.description, NEW.assigned_to_id);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE task_search
        SET title = NEW.title, description = NEW.description,
            assigned_to_id = NEW.assigned_to_id
        WHERE task_id = NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM task_search WHERE task_id = OLD.id;
    ELSE
        DELETE FROM task_search;
    END IF;
    RETURN NULL;
END;
$$;
"""
POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER task_search_insert AFTER INSERT ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_search_sync()",
    f"CREATE TRIGGER task_search_update AFTER UPDATE OF {', '.join(COPIED)} ON task "
    f"FOR EACH ROW WHEN ({CHANGED.replace(' IS NOT ', ' IS DISTINCT FROM ')}) "
    "EXECUTE FUNCTION task_search_sync()",
    "CREATE TRIGGER task_search_delete AFTER DELETE ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_search_sync()",
    "CREATE TRIGGER task_search_truncate AFTER TRUNCATE ON task "
    "FOR EACH STATEMENT EXECUTE FUNCTION task_search_sync()",
]
SQLITE_TRIGGERS = [
    "CREATE TRIGGER task_search_insert AFTER INSERT ON task BEGIN "
    "INSERT INTO task_search (task_id, title, description, assigned_to_id) "
    "VALUES (NEW.id, NEW.title, NEW.description, NEW.assigned_to_id); END",
    f"CREATE TRIGGER task_search_update AFTER UPDATE OF {', '.join(COPIED)} ON task "
    f"WHEN {CHANGED} BEGIN "
    "UPDATE task_search SET title = NEW.title, description = NEW.description, "
    "assigned_to_id = NEW.assigned_to_id WHERE task_id = NEW.id; END",
    "CREATE TRIGGER task_search_delete AFTER DELETE ON task BEGIN "
    "DELETE FROM task_search WHERE task_id = OLD.id; END",
]
TRIGRAM_COLUMNS = ("title", "description")
PARTIAL_INDEXES = {
    "ix_task_series": (["series_id", "id"], "series_id IS NOT NULL"),
    "ix_task_reminder_due": (["reminded_at", "remind_at"], "remind_at IS NOT NULL"),
    "ix_task_reminder_mail": (["reminder_mail_queued_at"], "reminder_mail_queued_at IS NOT NULL"),
}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        "task_search",
        sa.Column("task_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("assigned_to_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_search")),
    )
    if _postgresql():  # no task written between the copy and the triggers goes missing
        op.execute("LOCK TABLE task IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        f"INSERT INTO task_search (task_id, {', '.join(COPIED)}) "
        f"SELECT id, {', '.join(COPIED)} FROM task"
    )
    op.create_index("ix_task_search_assignee", "task_search", ["assigned_to_id"])
    if _postgresql():
        for column in TRIGRAM_COLUMNS:
            op.execute(f"DROP INDEX ix_task_{column}_trgm")
            op.execute(
                f"CREATE INDEX ix_task_search_{column}_trgm "
                f"ON task_search USING gin ({column} gin_trgm_ops)"
            )
        op.execute("ANALYZE task_search")  # search's plans need its statistics at once
        op.execute(POSTGRESQL_FUNCTION)
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    for name, (columns, predicate) in PARTIAL_INDEXES.items():
        op.drop_index(name, table_name="task")
        where = sa.text(predicate)
        op.create_index(name, "task", columns, postgresql_where=where, sqlite_where=where)


def downgrade():
    for name, (columns, _) in PARTIAL_INDEXES.items():
        op.drop_index(name, table_name="task")
        op.create_index(name, "task", columns)
    if _postgresql():
        for name in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER task_search_{name} ON task")
        op.execute("DROP FUNCTION task_search_sync()")
        for column in TRIGRAM_COLUMNS:
            op.execute(
                f"CREATE INDEX ix_task_{column}_trgm ON task USING gin ({column} gin_trgm_ops)"
            )
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER task_search_{name}")
    op.drop_table("task_search")
