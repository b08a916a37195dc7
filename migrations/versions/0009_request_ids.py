"""activity_log.request_id and activity_log.job_id: what wrote each entry

Both nullable, added without a default: no existing row is rewritten, so the log's
append-only triggers (row-level on UPDATE/DELETE, statement-level on TRUNCATE) never
fire, and the outbox trigger (AFTER INSERT) is untouched. SQLite adds the columns in
place (ALTER TABLE ... ADD COLUMN), which keeps its triggers too; no table is rebuilt.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("activity_log", sa.Column("request_id", sa.String(128), nullable=True))
    op.add_column("activity_log", sa.Column("job_id", sa.String(64), nullable=True))


def downgrade():
    op.drop_column("activity_log", "job_id")
    op.drop_column("activity_log", "request_id")
