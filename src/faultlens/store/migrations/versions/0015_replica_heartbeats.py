"""Replica heartbeats: each serving process' rule version and adopted rule-activations generation.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("instance", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
        sa.Column("rule_version", sa.String(256), nullable=False),
        sa.Column("rules_generation", sa.String(64)),
    )
    op.create_index("ix_replicas_seen", "replicas", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_replicas_seen", table_name="replicas")
    op.drop_table("replicas")
