"""Events and API keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(256)),
        sa.Column("item_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger),
        sa.Column("duration_ms", sa.Float),
        sa.Column("http_status", sa.Integer),
        sa.Column("error_code", sa.String(256)),
        sa.Column("error_message", sa.Text),
        sa.Column("attempt", sa.Integer),
        sa.Column("max_attempts", sa.Integer),
        sa.Column("trace_id", sa.String(128)),
        sa.Column("span_id", sa.String(128)),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("request_id", sa.String(128)),
        sa.Column("job_id", sa.String(128)),
        sa.Column("release", sa.String(128)),
        sa.Column("environment", sa.String(64)),
        sa.Column("attributes", sa.Text),
        sa.Column("failure_kind", sa.String(64), nullable=False),
        sa.Column("failure_class", sa.String(32), nullable=False),
        sa.Column("is_actionable", sa.Boolean, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("rule_name", sa.String(128)),
        sa.Column("rule_version", sa.String(128), nullable=False),
        sa.UniqueConstraint("tenant", "id", name="uq_events_tenant_id"),
    )
    op.create_index("ix_events_tenant_time", "events", ["tenant", "occurred_at"])
    op.create_index("ix_events_tenant_trace", "events", ["tenant", "trace_id"])
    op.create_index("ix_events_tenant_correlation", "events", ["tenant", "correlation_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("events")
