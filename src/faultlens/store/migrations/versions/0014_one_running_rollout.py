"""At most one running rollout per release, environment and source: a partial unique index.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two running rollouts of one scope can only exist from a race before this index: keep the newest running.
    op.execute(
        "UPDATE rollouts SET state = 'aborted', decision = 'abort', decision_reason = 'a second running rollout of "
        "the same scope (migration 0014 keeps the newest)' WHERE state = 'running' AND EXISTS (SELECT 1 FROM rollouts "
        "r2 WHERE r2.state = 'running' AND r2.tenant = rollouts.tenant AND r2.release = rollouts.release AND "
        "r2.environment = rollouts.environment AND coalesce(r2.source, '') = coalesce(rollouts.source, '') AND "
        "(r2.created_at > rollouts.created_at OR (r2.created_at = rollouts.created_at AND r2.id > rollouts.id)))"
    )
    op.create_index(
        "uq_rollouts_running",
        "rollouts",
        ["tenant", "release", "environment", sa.text("coalesce(source, '')")],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("uq_rollouts_running", table_name="rollouts")
