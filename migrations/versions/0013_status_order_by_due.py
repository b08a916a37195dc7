"""Listings by status break ties by due date; ix_task_status dropped

A status change is not a HOT update, so the overdue sweep writes an entry in every full
index on ``task``. ``ix_task_status`` (status, id) served only ``ordering=status``; that
ordering now breaks ties by ``due_date`` before ``id`` (``taskapp.tasks.queries.TIE_BREAKS``)
and reads ``ix_task_status_due`` (status, due_date, id), which the sweep needs anyway.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_task_status", table_name="task")


def downgrade():
    op.create_index("ix_task_status", "task", ["status", "id"])
