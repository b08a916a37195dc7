"""revoked_session: logout ends a whole login; activity_log refuses TRUNCATE

Every token of one login (each refresh rotation of it) carries the same session id
(``sid``); a row here ends them all, checked in the same query as the token's own
revocation. On PostgreSQL the append-only trigger of the activity log also refuses
TRUNCATE (a statement-level trigger: row triggers never see a TRUNCATE).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NO_TRUNCATE_POSTGRESQL = (
    "CREATE TRIGGER activity_log_no_truncate BEFORE TRUNCATE ON activity_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION activity_log_append_only()"
)


def upgrade():
    op.create_table(
        "revoked_session",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_revoked_session")),
    )
    op.create_index("ix_revoked_session_expires_at", "revoked_session", ["expires_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NO_TRUNCATE_POSTGRESQL)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER activity_log_no_truncate ON activity_log")
    op.drop_index("ix_revoked_session_expires_at", table_name="revoked_session")
    op.drop_table("revoked_session")
