"""Rollback reports: rollbacks gain `report`, the markdown report of the rollback drill that recorded the row.

Nullable and without a default: existing rows (real rollbacks and drills recorded before) simply have none.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: a catalogue change on PostgreSQL, an ALTER TABLE ADD COLUMN on SQLite.
    op.add_column("rollbacks", sa.Column("report", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("rollbacks") as batch:
        batch.drop_column("report")
