"""model intent: start and restart requests that the supervisor alone acts on

Admin calls record intent (desired state and these requests); the supervisor moves the
states. Additive: two nullable timestamps on models.

Revision ID: 0005_structure_model_intent
Revises: 0004_access_sessions
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_structure_model_intent"
down_revision = "0004_access_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("start_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("restart_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("restart_requested_at")
        batch_op.drop_column("start_requested_at")
