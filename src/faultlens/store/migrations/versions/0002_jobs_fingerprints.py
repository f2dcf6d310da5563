"""Jobs, fingerprints, service state; events.fingerprint_id.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: PostgreSQL and SQLite add it without rewriting the table.
    op.add_column("events", sa.Column("fingerprint_id", sa.String(32)))
    op.create_index("ix_events_tenant_fingerprint", "events", ["tenant", "fingerprint_id"])
    # Only failures carry a fingerprint (a few percent of events): the fingerprint ranking reads this small
    # covering index alone instead of every event of the window.
    op.create_index(
        "ix_events_failure_fingerprints",
        "events",
        ["tenant", "occurred_at", "fingerprint_id", "failure_class", "failure_kind", "rule_name"],
        sqlite_where=sa.text("fingerprint_id IS NOT NULL"),
        postgresql_where=sa.text("fingerprint_id IS NOT NULL"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rule_version", sa.String(256)),
        sa.Column("params", sa.Text),
        sa.Column("done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("checkpoint", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("heartbeat_at", sa.BigInteger),
        sa.Column("owner", sa.String(64)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_jobs_kind_state", "jobs", ["kind", "state"])
    op.create_table(
        "fingerprints",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("sample_message", sa.Text),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "service_state",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_state")
    op.drop_table("fingerprints")
    op.drop_table("jobs")
    op.drop_index("ix_events_failure_fingerprints", "events")
    op.drop_index("ix_events_tenant_fingerprint", "events")
    op.drop_column("events", "fingerprint_id")
