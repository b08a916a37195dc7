"""task_counter also keyed by whether a task has a due date

A listing filtered by ``due_date__isnull`` counted its rows in the due-date index: at 1M
tasks, 92% of them with a due date, ``due_date__isnull=false`` read 920k index entries
(93-110 ms). With ``has_due_date`` in the counters' key it sums counters like the
status, priority and assignee filters do, alone or with them. The overdue sweep never
changes a due date; its statement trigger groups by one more boolean. A POST still
upserts one counter.

PostgreSQL: the table is altered, not recreated, so the app role's grants stay; the
counters are rebuilt with ``task`` locked against writes, then the trigger function is
replaced (its triggers already fire on every UPDATE). SQLite: its row triggers fire on
``UPDATE OF`` the key's columns, so they are made again with ``due_date`` among them,
and the table (no grants there) is made again with its new key.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD_KEY = {name: "{}" + name for name in ("assigned_to_id", "status", "priority")}
NEW_KEY = OLD_KEY | {"has_due_date": "{}due_date IS NOT NULL"}
"""Each counter column and what it holds of a task row (``{}``: where the row is, e.g.
``NEW.`` in a SQLite row trigger)."""


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _rows(key: dict, table: str, delta: str) -> str:
    columns = ", ".join(f"{source.format('')} AS {name}" for name, source in key.items())
    return f"SELECT {columns}, {delta} AS delta FROM {table}"


def _upsert(key: dict, rows: str) -> str:
    """Add the grouped deltas of ``rows`` to the counters, in key order."""
    names = ", ".join(key)
    return (
        f"INSERT INTO task_counter AS c ({names}, n) SELECT {names}, sum(delta) "
        f"FROM ({rows}) AS changes GROUP BY {names} HAVING sum(delta) <> 0 "
        f"ORDER BY {names} ON CONFLICT ({names}) DO UPDATE SET n = c.n + EXCLUDED.n;"
    )


def postgresql_function(key: dict) -> str:
    """The statement trigger of migration 0002 for ``key``: one grouped delta per
    statement, applied in key order so that concurrent writers lock counters alike."""
    inserted = _upsert(key, _rows(key, "new_rows", "1"))
    deleted = _upsert(key, _rows(key, "old_rows", "-1"))
    updated = _upsert(
        key, f"{_rows(key, 'new_rows', '1')} UNION ALL {_rows(key, 'old_rows', '-1')}"
    )
    return f"""
CREATE OR REPLACE FUNCTION task_counter_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM task_counter;
    ELSIF TG_OP = 'INSERT' THEN
        {inserted}
    ELSIF TG_OP = 'DELETE' THEN
        {deleted}
    ELSE
        {updated}
    END IF;
    RETURN NULL;
END;
$$;
"""


def _sqlite_bump(key: dict, row: str, delta: str) -> str:
    values = ", ".join(source.format(f"{row}.") for source in key.values())
    return (
        f"INSERT INTO task_counter ({', '.join(key)}, n) VALUES ({values}, {delta}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET n = n + {delta};"
    )


def sqlite_triggers(key: dict) -> list[str]:
    watched = ", ".join(source.format("").split()[0] for source in key.values())
    return [
        "CREATE TRIGGER task_counter_insert AFTER INSERT ON task "
        f"BEGIN {_sqlite_bump(key, 'NEW', '1')} END",
        f"CREATE TRIGGER task_counter_update AFTER UPDATE OF {watched} ON task "
        f"BEGIN {_sqlite_bump(key, 'OLD', '-1')} {_sqlite_bump(key, 'NEW', '1')} END",
        "CREATE TRIGGER task_counter_delete AFTER DELETE ON task "
        f"BEGIN {_sqlite_bump(key, 'OLD', '-1')} END",
    ]


def _refill(key: dict) -> None:
    names = ", ".join(key)
    op.execute("DELETE FROM task_counter")
    op.execute(
        f"INSERT INTO task_counter ({names}, n) SELECT {names}, sum(delta) "
        f"FROM ({_rows(key, 'task', '1')}) AS tasks GROUP BY {names}"
    )


def _postgresql_rekey(key: dict) -> None:
    op.execute("LOCK TABLE task IN SHARE ROW EXCLUSIVE MODE")
    op.execute("ALTER TABLE task_counter DROP CONSTRAINT pk_task_counter")
    if "has_due_date" in key:
        op.execute("ALTER TABLE task_counter ADD COLUMN has_due_date boolean NOT NULL DEFAULT true")
        op.execute("ALTER TABLE task_counter ALTER COLUMN has_due_date DROP DEFAULT")
    else:
        op.execute("ALTER TABLE task_counter DROP COLUMN has_due_date")
    _refill(key)
    names = ", ".join(key)
    op.execute(f"ALTER TABLE task_counter ADD CONSTRAINT pk_task_counter PRIMARY KEY ({names})")
    op.execute(postgresql_function(key))


def _sqlite_rekey(key: dict) -> None:
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER task_counter_{name}")
    op.drop_table("task_counter")
    due = [sa.Column("has_due_date", sa.Boolean(), nullable=False)] if "has_due_date" in key else []
    op.create_table(
        "task_counter",
        sa.Column("assigned_to_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        *due,
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_task_counter")),
    )
    _refill(key)
    for statement in sqlite_triggers(key):
        op.execute(statement)


def upgrade():
    (_postgresql_rekey if _postgresql() else _sqlite_rekey)(NEW_KEY)


def downgrade():
    (_postgresql_rekey if _postgresql() else _sqlite_rekey)(OLD_KEY)
