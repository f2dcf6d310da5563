"""Failure groups: rollups gain fingerprint_id (the group shape, store/rollup_shapes.py), and the groups' lifecycle
state, member overrides and activity.

Existing rows belong to shapes that do not keep fingerprint_id, so they get '' and stay exact. The group shape's
rows need the events: with events present, service_state asks the rollup rebuild job for them ("group_rollups":
needed), and group counts scan raw events until it is done.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

KEY_0012 = (
    "tenant",
    "shape",
    "grain",
    "attr_name",
    "attr_value",
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
    "release",
    "environment",
)
KEY = (*KEY_0012, "fingerprint_id")
GROUP_SHAPE = 5  # frozen copy of store/rollup_shapes.py GROUP_SHAPE


def _added_column() -> sa.Column[object]:
    return sa.Column("fingerprint_id", sa.String(32), nullable=False, server_default=sa.text("''"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A NOT NULL column with a constant default rewrites nothing there; only the key's index is rebuilt.
        op.drop_constraint("uq_rollups_key", "rollups", type_="unique")
        op.add_column("rollups", _added_column())
        op.create_unique_constraint("uq_rollups_key", "rollups", list(KEY))
    else:
        with op.batch_alter_table("rollups", recreate="always") as batch:
            batch.add_column(_added_column())
            batch.drop_constraint("uq_rollups_key", type_="unique")
            batch.create_unique_constraint("uq_rollups_key", list(KEY))
    op.create_table(
        "failure_groups",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", sa.BigInteger),
        sa.Column("regressed_at", sa.BigInteger),
        sa.Column("ignored_at", sa.BigInteger),
        sa.Column("ignore_until", sa.BigInteger),
        sa.Column("ignore_count", sa.BigInteger),
        sa.Column("ignore_base", sa.BigInteger),
        sa.Column("assignee", sa.String(128)),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_failure_groups_status", "failure_groups", ["status", "tenant"])
    op.create_table(
        "group_members",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("fingerprint_id", sa.String(32), primary_key=True),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_group_members_group", "group_members", ["tenant", "group_id"])
    op.create_table(
        "group_activity",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_group_activity_group", "group_activity", ["tenant", "group_id", "id"])
    op.create_index("ix_fingerprints_last_seen", "fingerprints", ["tenant", "last_seen"])
    # A bounded EXISTS probe, not a scan: without events the (empty) group rows are complete.
    op.execute(
        "INSERT INTO service_state (key, value, updated_at) "
        "SELECT 'group_rollups', CASE WHEN EXISTS (SELECT 1 FROM events) THEN 'needed' ELSE 'ready' END, 0"
    )


def downgrade() -> None:
    op.execute("DELETE FROM service_state WHERE key = 'group_rollups'")
    op.drop_index("ix_fingerprints_last_seen", table_name="fingerprints")
    op.drop_index("ix_group_activity_group", table_name="group_activity")
    op.drop_table("group_activity")
    op.drop_index("ix_group_members_group", table_name="group_members")
    op.drop_table("group_members")
    op.drop_index("ix_failure_groups_status", table_name="failure_groups")
    op.drop_table("failure_groups")
    op.execute(f"DELETE FROM rollups WHERE shape = {GROUP_SHAPE}")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_rollups_key", "rollups", type_="unique")
        op.drop_column("rollups", "fingerprint_id")
        op.create_unique_constraint("uq_rollups_key", "rollups", list(KEY_0012))
        return
    with op.batch_alter_table("rollups", recreate="always") as batch:
        batch.drop_constraint("uq_rollups_key", type_="unique")
        batch.drop_column("fingerprint_id")
        batch.create_unique_constraint("uq_rollups_key", list(KEY_0012))
