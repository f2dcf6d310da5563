"""Release rollups: rollups gain release and environment (the release shape, store/rollup_shapes.py), releases_seen.

Existing rows belong to shapes that do not keep either, so they get '' and stay exact. The release shape's rows
and the releases_seen registry need the events: with events present, service_state asks the rollup rebuild job
for them ("release_rollups": needed), and release and environment questions scan raw events until it is done.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

KEY_0004 = (
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
)
ADDED = ("release", "environment")
KEY = (*KEY_0004, *ADDED)
RELEASE_SHAPE = 4  # frozen copy of store/rollup_shapes.py RELEASE_SHAPE


def _added_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("release", sa.String(128), nullable=False, server_default=sa.text("''")),
        sa.Column("environment", sa.String(64), nullable=False, server_default=sa.text("''")),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Adding a NOT NULL column with a constant default rewrites nothing there; only the key's index is rebuilt.
        op.drop_constraint("uq_rollups_key", "rollups", type_="unique")
        for column in _added_columns():
            op.add_column("rollups", column)
        op.create_unique_constraint("uq_rollups_key", "rollups", list(KEY))
    else:
        with op.batch_alter_table("rollups", recreate="always") as batch:
            for column in _added_columns():
                batch.add_column(column)
            batch.drop_constraint("uq_rollups_key", type_="unique")
            batch.create_unique_constraint("uq_rollups_key", list(KEY))
    op.create_table(
        "releases_seen",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("release", sa.String(128), primary_key=True),
        sa.Column("environment", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_releases_seen_first", "releases_seen", ["tenant", "first_seen"])
    # A bounded EXISTS probe, not a scan: without events the (empty) release rows and registry are complete.
    op.execute(
        "INSERT INTO service_state (key, value, updated_at) "
        "SELECT 'release_rollups', CASE WHEN EXISTS (SELECT 1 FROM events) THEN 'needed' ELSE 'ready' END, 0"
    )


def downgrade() -> None:
    op.execute("DELETE FROM service_state WHERE key = 'release_rollups'")
    op.drop_index("ix_releases_seen_first", table_name="releases_seen")
    op.drop_table("releases_seen")
    op.execute(f"DELETE FROM rollups WHERE shape = {RELEASE_SHAPE}")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_rollups_key", "rollups", type_="unique")
        for name in ADDED:
            op.drop_column("rollups", name)
        op.create_unique_constraint("uq_rollups_key", "rollups", list(KEY_0004))
        return
    with op.batch_alter_table("rollups", recreate="always") as batch:
        batch.drop_constraint("uq_rollups_key", type_="unique")
        for name in ADDED:
            batch.drop_column(name)
        batch.create_unique_constraint("uq_rollups_key", list(KEY_0004))
