"""Hourly and daily rollups of event counts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = (
    "tenant",
    "grain",
    "bucket",
    "source",
    "operation",
    "item_type",
    "status",
    "failure_class",
    "failure_kind",
    "category",
    "is_actionable",
    "error_code",
)


def upgrade() -> None:
    op.create_table(
        "rollups",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("grain", sa.Integer, nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(256), nullable=False),
        sa.Column("item_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_class", sa.String(32), nullable=False),
        sa.Column("failure_kind", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("is_actionable", sa.Boolean, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("attempt_sum", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(*KEY, name="uq_rollups_key"),
    )
    # Existing events are folded in by the rollup rebuild job, never here: start-up must not scan data.
    # A bounded EXISTS probe, not a scan: a fresh database needs no rebuild.
    op.execute(
        "INSERT INTO service_state (key, value, updated_at) "
        "SELECT 'rollups_rebuild_needed', 'true', 0 WHERE EXISTS (SELECT 1 FROM events)"
    )


def downgrade() -> None:
    op.drop_table("rollups")
