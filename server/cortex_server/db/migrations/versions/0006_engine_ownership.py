"""engine ownership: an installation id, engine ports held in the DB, crash history, first password

- `installation`: one row, this installation's id (labels and names every engine it starts,
  so a daemon adopts or stops only its own) and whether the first admin password was shown.
- `engine_ports`: the ports engines hold, unique per host (released when the engine stops).
- `models`: crash history kept until the model is next started by hand.

Revision ID: 0006_engine_ownership
Revises: 0005_structure_model_intent
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_engine_ownership"
down_revision = "0005_structure_model_intent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("installation_id", sa.String(32), nullable=False, unique=True),
        sa.Column("admin_password_shown", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "engine_ports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.String(32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("replica_index", sa.Integer(), nullable=True),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("host", "port", name="uq_engine_ports_host_port"),
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crash_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_exit_code", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_exit_signal", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_crash", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("last_crash")
        batch_op.drop_column("last_exit_signal")
        batch_op.drop_column("last_exit_code")
        batch_op.drop_column("crash_count")
    op.drop_table("engine_ports")
    op.drop_table("installation")
