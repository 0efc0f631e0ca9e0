"""trust boundary: server-side browser sessions; which key minted a key

Revision ID: 0004_access_sessions
Revises: 0003_observability
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_access_sessions"
down_revision = "0003_observability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by_key_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_api_keys_created_by_key_id", "api_keys", ["created_by_key_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_api_keys_created_by_key_id", ["created_by_key_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_created_by_key_id")
        batch_op.drop_constraint("fk_api_keys_created_by_key_id", type_="foreignkey")
        batch_op.drop_column("created_by_key_id")
    op.drop_index("ix_auth_sessions_user_id", table_name="auth_sessions")
    op.drop_table("auth_sessions")
