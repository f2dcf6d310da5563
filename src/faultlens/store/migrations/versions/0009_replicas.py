"""Replicas: a row per run of a leased duty (who ran it, when), and failed-task archives kept in the database.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "duty_runs",
        _pk(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("ok", sa.Boolean),
    )
    op.create_index("ix_duty_runs_name", "duty_runs", ["name", "started_at"])
    op.create_table(
        "task_archive",
        _pk(),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("store", sa.String(16), nullable=False),
        sa.Column("task_key", sa.String(512), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("archived_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_task_archive_day", "task_archive", ["tenant", "day"])


def downgrade() -> None:
    op.drop_table("task_archive")
    op.drop_table("duty_runs")
