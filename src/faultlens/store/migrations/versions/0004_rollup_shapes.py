"""Rollup shapes, a week grain and attribute rows (store/rollups.py SHAPES and SHAPE_GRAINS_MS).

Shapes and weeks are sums of the existing rows, so they are derived here in SQL from the rollups table (small
next to events) and stats stay exact across the upgrade without a rebuild. Attribute rows need the events'
attributes: with events present, service_state asks the rollup rebuild job for them, and attribute filters
scan raw events until it is done. When a full rebuild is still pending, it recomputes everything anyway.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DIMENSIONS = (
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
KEY = ("tenant", "shape", "grain", "attr_name", "attr_value", "bucket", *DIMENSIONS)
# Frozen copy of store/rollups.py SHAPES as of this revision: shape id -> dimensions kept. These two also get
# weeks; shape 0 keeps hours and days, and shape 3 (attribute rows) comes from events through the rebuild job.
SHAPES = {
    1: ("source", "status", "failure_class", "is_actionable", "failure_kind", "category", "error_code"),
    2: ("source", "status", "failure_class", "is_actionable"),
}
DAY_S = 86_400
WEEK_MS = 7 * 86_400_000


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("shape", sa.Integer, nullable=False),
        sa.Column("grain", sa.Integer, nullable=False),
        sa.Column("attr_name", sa.String(64), nullable=False),
        sa.Column("attr_value", sa.String(128), nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(256), nullable=False),
        sa.Column("item_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_class", sa.String(32), nullable=False),
        sa.Column("failure_kind", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("is_actionable", sa.Boolean, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("attempt_sum", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_rollups_key", "rollups", type_="unique")  # its index name is schema-wide there
    op.rename_table("rollups", "rollups_0003")
    op.create_table("rollups", *_columns(), sa.UniqueConstraint(*KEY, name="uq_rollups_key"))
    cols = ", ".join(KEY)
    dims = ", ".join(DIMENSIONS)
    op.execute(
        f"INSERT INTO rollups ({cols}, count, attempt_sum) "
        f"SELECT tenant, 0, grain, '', '', bucket, {dims}, count, attempt_sum FROM rollups_0003"
    )
    for shape, kept in SHAPES.items():
        projected = ", ".join(
            name if name in kept else ("false" if name == "is_actionable" else "''") for name in DIMENSIONS
        )
        op.execute(
            f"INSERT INTO rollups ({cols}, count, attempt_sum) "
            f"SELECT tenant, {shape}, grain, '', '', bucket, {projected}, sum(count), sum(attempt_sum) "
            f"FROM rollups WHERE shape = 0 GROUP BY tenant, grain, bucket, {', '.join(kept)}"
        )
        op.execute(
            f"INSERT INTO rollups ({cols}, count, attempt_sum) "
            f"SELECT tenant, {shape}, {7 * DAY_S}, '', '', bucket - bucket % {WEEK_MS}, {dims}, sum(count), "
            f"sum(attempt_sum) FROM rollups WHERE shape = {shape} AND grain = {DAY_S} "
            f"GROUP BY tenant, bucket - bucket % {WEEK_MS}, {dims}"
        )
    op.drop_table("rollups_0003")
    # A bounded EXISTS probe, not a scan: without events the (empty) attribute rows are already complete.
    op.execute(
        "INSERT INTO service_state (key, value, updated_at) "
        "SELECT 'attribute_rollups', CASE WHEN EXISTS (SELECT 1 FROM events) THEN 'needed' ELSE 'ready' END, 0"
    )


def downgrade() -> None:
    op.execute("DELETE FROM service_state WHERE key = 'attribute_rollups'")
    op.execute("DELETE FROM rollups WHERE shape <> 0 OR grain > 86400")
    with op.batch_alter_table("rollups", recreate="always") as batch:
        batch.drop_constraint("uq_rollups_key", type_="unique")
        added = ("shape", "attr_name", "attr_value")
        for name in added:
            batch.drop_column(name)
        batch.create_unique_constraint("uq_rollups_key", [k for k in KEY if k not in added])
