"""Release gates: rollouts, canary analyses, rollbacks, replay reports and readiness evidence (releases/).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("release", sa.String(128), nullable=False),
        sa.Column("baseline", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("ratio", sa.Float, nullable=False),
        sa.Column("interval_min", sa.Float, nullable=False),
        sa.Column("max_failures", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_verdict", sa.String(16)),
        sa.Column("last_analysis_at", sa.BigInteger),
        sa.Column("decision", sa.String(16)),
        sa.Column("decision_reason", sa.Text),
        sa.Column("decided_at", sa.BigInteger),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rollouts_tenant_release", "rollouts", ["tenant", "release", "created_at"])
    op.create_index("ix_rollouts_state", "rollouts", ["state", "last_analysis_at"])
    op.create_table(
        "canary_analyses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("rollout_id", sa.String(36)),
        sa.Column("baseline", sa.String(128), nullable=False),
        sa.Column("canary", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("until", sa.BigInteger, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_canary_analyses_canary", "canary_analyses", ["tenant", "canary", "created_at"])
    op.create_index("ix_canary_analyses_rollout", "canary_analyses", ["tenant", "rollout_id", "created_at"])
    op.create_table(
        "rollbacks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("rollout_id", sa.String(36)),
        sa.Column("release", sa.String(128), nullable=False),
        sa.Column("baseline", sa.String(128)),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("drill", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("decided_at", sa.BigInteger, nullable=False),
        sa.Column("deadline_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger),
        sa.Column("recovery_state", sa.String(16), nullable=False),
        sa.Column("recovery_detail", sa.Text),
        sa.Column("replay_report_id", sa.String(36)),
        sa.Column("replay_passed", sa.Boolean),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_rollbacks_tenant_release", "rollbacks", ["tenant", "release", "decided_at"])
    op.create_index("ix_rollbacks_recovery", "rollbacks", ["recovery_state", "deadline_at"])
    op.create_table(
        "replay_reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("release", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("suite_version", sa.String(64), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("p95_ms", sa.Float),
        sa.Column("rule_version", sa.String(256), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_replay_reports_release", "replay_reports", ["tenant", "release", "finished_at"])
    op.create_table(
        "readiness_evidence",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("release", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("admitted", sa.Boolean, nullable=False),
        sa.Column("replay_passed", sa.Boolean, nullable=False),
        sa.Column("failed_checks", sa.Text, nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("replay_report_id", sa.String(36)),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_readiness_evidence_release", "readiness_evidence", ["tenant", "release", "created_at"])


def downgrade() -> None:
    for table in ("readiness_evidence", "replay_reports", "rollbacks", "canary_analyses", "rollouts"):
        op.drop_table(table)
