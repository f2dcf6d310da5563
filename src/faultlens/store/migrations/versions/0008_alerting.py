"""Alerting: stateful alerts and their history, the notification outbox, silences, leases, security signals.

The outbox is written in the transaction that changes an alert, so a crash delays a notification but never loses
it. Leases make alert evaluation and delivery (and later every periodic duty) run on exactly one process.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", sa.BigInteger, nullable=False),
        sa.Column("renewed_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("level", sa.String(2), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("active_since", sa.BigInteger, nullable=False),
        sa.Column("starts_at", sa.BigInteger),
        sa.Column("ends_at", sa.BigInteger),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("last_notified_at", sa.BigInteger),
        sa.Column("episode", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("silenced_by", sa.String(36)),
        sa.Column("acked_by", sa.String(128)),
        sa.Column("acked_at", sa.BigInteger),
        sa.Column("ack_comment", sa.Text),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_alerts_tenant_state", "alerts", ["tenant", "state", "level"])
    op.create_table(
        "alert_history",
        _pk(),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_alert_history_alert", "alert_history", ["tenant", "alert_id", "at"])
    op.create_index("ix_alert_history_at", "alert_history", ["tenant", "at"])
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("receiver", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.BigInteger),
    )
    op.create_index("ix_alert_notifications_due", "alert_notifications", ["state", "due_at"])
    op.create_index("ix_alert_notifications_alert", "alert_notifications", ["tenant", "alert_id"])
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.BigInteger, nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_alert_silences_tenant", "alert_silences", ["tenant", "ends_at"])
    op.create_table(
        "security_signals",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("security_signals", "alert_silences", "alert_notifications", "alert_history", "alerts", "leases"):
        op.drop_table(name)
