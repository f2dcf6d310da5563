"""API requests per tenant per minute and status class, with a latency histogram in fixed buckets.

The ops summary's api section reads it (store/api_usage.py); every replica adds its own counts to the row of
the minute, so the figures survive restarts and add up across replicas.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The histogram's upper bounds in milliseconds, as store/api_usage.py LATENCY_BUCKETS_MS (copied: a migration
# keeps the schema of its day whatever the code says later).
_BOUNDS = ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "inf")


def upgrade() -> None:
    op.create_table(
        "api_usage",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("status_class", sa.String(3), primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("duration_ms_sum", sa.Float, nullable=False),
        *(sa.Column(f"le_{bound}", sa.BigInteger, nullable=False) for bound in _BOUNDS),
    )


def downgrade() -> None:
    op.drop_table("api_usage")
