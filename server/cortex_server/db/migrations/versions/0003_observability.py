"""observability: rejection counts, and the index usage analytics read by

Revision ID: 0003_observability
Revises: 0002_access
Create Date: 2026-12-01

`usage_rejections` holds per-minute counts of requests refused with 401/403/429
(see db.models.UsageRejection). `ix_usage_records_org_created` serves every
analytics query: they all filter one org (or none, for operators) and a time range.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_observability"
down_revision = "0002_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_rejections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_rejections_bucket_start", "usage_rejections", ["bucket_start"])
    op.create_index("ix_usage_records_org_created", "usage_records", ["org_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_records_org_created", table_name="usage_records")
    op.drop_index("ix_usage_rejections_bucket_start", table_name="usage_rejections")
    op.drop_table("usage_rejections")
