"""revoked_token.revoked_at: when a refresh token was used (rotated away)

A second use of the same refresh token within JWT_REFRESH_REUSE_GRACE_SECONDS of the
first (racing tabs, a retried request) answers a pair of the same session instead of
ending it; the grace is measured from this column. Rows written before it existed keep
NULL, which no grace covers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("revoked_token") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("revoked_token") as batch:
        batch.drop_column("revoked_at")
