"""A trace's evidence spans (failed CLIENT / INTERNAL spans received over OTLP), and events by request id.

Evidence spans are not outcomes: they are kept beside the events so a trace's view can show which downstream
call failed first. The primary key (tenant, trace_id, span_id) makes a re-delivered span a no-op. The new
events index serves the request-id pivot, as the trace and correlation indexes serve theirs.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_spans",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("trace_id", sa.String(128), primary_key=True),
        sa.Column("span_id", sa.String(128), primary_key=True),
        sa.Column("parent_span_id", sa.String(128)),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error_message", sa.Text),
        sa.Column("attributes", sa.Text),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_events_tenant_request", "events", ["tenant", "request_id"])


def downgrade() -> None:
    op.drop_index("ix_events_tenant_request", table_name="events")
    op.drop_table("trace_spans")
