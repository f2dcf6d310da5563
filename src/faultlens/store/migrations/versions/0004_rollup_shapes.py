"""Rollup shapes and a week grain: rows that keep fewer dimensions, and weeks of days.

The new rows are sums of the existing ones, so they are derived here in SQL from the rollups table (which is
small next to events) and stats stay exact across the upgrade without a rebuild. When a rebuild is still
pending, it recomputes everything from events anyway.

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
KEY = ("tenant", "shape", "grain", "bucket", *DIMENSIONS)
# Frozen copy of store/rollups.py SHAPES as of this revision: shape id -> dimensions kept.
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
        f"SELECT tenant, 0, grain, bucket, {dims}, count, attempt_sum FROM rollups_0003"
    )
    op.execute(
        f"INSERT INTO rollups ({cols}, count, attempt_sum) "
        f"SELECT tenant, 0, {7 * DAY_S}, bucket - bucket % {WEEK_MS}, {dims}, sum(count), sum(attempt_sum) "
        f"FROM rollups WHERE shape = 0 AND grain = {DAY_S} "
        f"GROUP BY tenant, bucket - bucket % {WEEK_MS}, {dims}"
    )
    for shape, kept in SHAPES.items():
        projected = ", ".join(
            name if name in kept else ("false" if name == "is_actionable" else "''") for name in DIMENSIONS
        )
        op.execute(
            f"INSERT INTO rollups ({cols}, count, attempt_sum) "
            f"SELECT tenant, {shape}, grain, bucket, {projected}, sum(count), sum(attempt_sum) "
            f"FROM rollups WHERE shape = 0 GROUP BY tenant, grain, bucket, {', '.join(kept)}"
        )
    op.drop_table("rollups_0003")


def downgrade() -> None:
    op.execute("DELETE FROM rollups WHERE shape <> 0 OR grain > 86400")
    with op.batch_alter_table("rollups", recreate="always") as batch:
        batch.drop_constraint("uq_rollups_key", type_="unique")
        batch.drop_column("shape")
        batch.create_unique_constraint("uq_rollups_key", list(k for k in KEY if k != "shape"))
