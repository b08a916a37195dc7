"""A narrow, lowered copy of the titles, for counting a search

A common word's count rechecked 66,667 trigram candidates in ``task_search``, whose rows
carry the description too (190 MB at 1M tasks, more than PostgreSQL's default buffers):
157 ms. ``task_search_title`` holds each task's id, its title lowered and its assignee
(59 MB), with a trigram index on the lowered title, so the title matches are counted by
a bitmap scan of a table that stays in memory, matched with LIKE instead of ILIKE
(PostgreSQL's ILIKE lowers both sides on every comparison in a UTF-8 database; this is
the same comparison done once, on writes). ``task_search`` stays as it is for the page,
which needs title and description in one table: an OR across two tables can neither use
the trigram indexes for a rare word nor probe one primary key per row for a common one.

Kept like ``task_search``: row triggers on insert, on a change of title or assignee and
on delete (PostgreSQL: emptied by a TRUNCATE of ``task`` too), whoever writes; the copy
runs with ``task`` locked against writes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

WATCHED = ("title", "assigned_to_id")
CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in WATCHED)
POSTGRESQL_FUNCTION = """
CREATE FUNCTION task_search_title_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_search_title (task_id, lowered, assigned_to_id)
        VALUES (NEW.id, lower(NEW.title), NEW.assigned_to_id);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE task_search_title
        SET lowered = lower(NEW.title), assigned_to_id = NEW.assigned_to_id
        WHERE task_id = NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM task_search_title WHERE task_id = OLD.id;
    ELSE
        DELETE FROM task_search_title;
    END IF;
    RETURN NULL;
END;
$$;
"""
POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER task_search_title_insert AFTER INSERT ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_search_title_sync()",
    f"CREATE TRIGGER task_search_title_update AFTER UPDATE OF {', '.join(WATCHED)} ON task "
    f"FOR EACH ROW WHEN ({CHANGED.replace(' IS NOT ', ' IS DISTINCT FROM ')}) "
    "EXECUTE FUNCTION task_search_title_sync()",
    "CREATE TRIGGER task_search_title_delete AFTER DELETE ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_search_title_sync()",
    "CREATE TRIGGER task_search_title_truncate AFTER TRUNCATE ON task "
    "FOR EACH STATEMENT EXECUTE FUNCTION task_search_title_sync()",
]
SQLITE_TRIGGERS = [
    "CREATE TRIGGER task_search_title_insert AFTER INSERT ON task BEGIN "
    "INSERT INTO task_search_title (task_id, lowered, assigned_to_id) "
    "VALUES (NEW.id, lower(NEW.title), NEW.assigned_to_id); END",
    f"CREATE TRIGGER task_search_title_update AFTER UPDATE OF {', '.join(WATCHED)} ON task "
    f"WHEN {CHANGED} BEGIN "
    "UPDATE task_search_title SET lowered = lower(NEW.title), "
    "assigned_to_id = NEW.assigned_to_id WHERE task_id = NEW.id; END",
    "CREATE TRIGGER task_search_title_delete AFTER DELETE ON task BEGIN "
    "DELETE FROM task_search_title WHERE task_id = OLD.id; END",
]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        "task_search_title",
        sa.Column("task_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lowered", sa.Text(), nullable=False),  # lower() may lengthen a title
        sa.Column("assigned_to_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_search_title")),
    )
    if _postgresql():  # no task written between the copy and the triggers goes missing
        op.execute("LOCK TABLE task IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "INSERT INTO task_search_title (task_id, lowered, assigned_to_id) "
        "SELECT id, lower(title), assigned_to_id FROM task"
    )
    op.create_index("ix_task_search_title_assignee", "task_search_title", ["assigned_to_id"])
    if _postgresql():
        op.execute(
            "CREATE INDEX ix_task_search_title_lowered_trgm "
            "ON task_search_title USING gin (lowered gin_trgm_ops)"
        )
        op.execute("ANALYZE task_search_title")
        op.execute(POSTGRESQL_FUNCTION)
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if _postgresql():
        for name in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER task_search_title_{name} ON task")
        op.execute("DROP FUNCTION task_search_title_sync()")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER task_search_title_{name}")
    op.drop_table("task_search_title")
