"""Rule activations per tenant (and one global) and the record of completed backfills.

The pack activated over the API used to be one service_state document for every tenant; it becomes the
`global` row of rule_activations, so an upgraded server classifies exactly as before. Both tables are small
(a row per tenant with its own pack, a row per tenant per finished backfill); nothing here reads events.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_activations",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rule_backfills",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("from_version", sa.String(256)),
        sa.Column("to_version", sa.String(256), nullable=False),
        sa.Column("until_pk", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rule_backfills_tenant", "rule_backfills", ["tenant", "completed_at"])
    op.execute(
        "INSERT INTO rule_activations (scope, document, updated_at) "
        "SELECT 'global', value, updated_at FROM service_state WHERE key = 'activated_rule_pack'"
    )
    op.execute("DELETE FROM service_state WHERE key = 'activated_rule_pack'")


def downgrade() -> None:
    op.execute(
        "INSERT INTO service_state (key, value, updated_at) "
        "SELECT 'activated_rule_pack', document, updated_at FROM rule_activations WHERE scope = 'global'"
    )
    op.drop_index("ix_rule_backfills_tenant", table_name="rule_backfills")
    op.drop_table("rule_backfills")
    op.drop_table("rule_activations")
