"""PostgreSQL: events partitioned by UTC day (store/partitions.py), idempotency in event_ids.

With no event stored, events is rebuilt partitioned here at once (a fresh install). With events, nothing is
converted at start-up: a `partition_events` job is queued instead (jobs/partition_events.py), which copies the
rows into a partitioned table beside the old one while ingest goes on, then swaps the names. SQLite keeps its
events table and its unique key as they are.

Revision ID: 0010
Revises: 0009
"""

import re

import sqlalchemy as sa
from alembic import op

from faultlens.store import partitions
from faultlens.store.jobs import create_job
from faultlens.timeutil import now_ms

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

KIND = "partition_events"  # jobs/queue.py JobKind.PARTITION_EVENTS
# A fresh install gets partitions from yesterday to this many days ahead; the leased duty keeps them coming.
FIRST_DAYS = range(-1, 4)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.create_table(
        "event_ids",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
    )
    # A bounded EXISTS probe, not a scan: start-up never copies events.
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM events)")).scalar():
        create_job(conn, kind=KIND)
        return
    partitions.build_partitioned(conn)
    partitions.swap_in(conn)
    today = partitions.day_of(now_ms())
    for offset in FIRST_DAYS:
        partitions.ensure_day(conn, today + offset)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.execute(sa.text("DELETE FROM jobs WHERE kind = :kind"), {"kind": KIND})
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {partitions.STAGED_TABLE}"))
    if partitions.is_partitioned(conn):
        definitions = conn.execute(
            sa.text(
                "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                "WHERE x.indrelid = 'events'::regclass AND NOT x.indisprimary AND c.relname <> 'ix_events_tenant_id'"
            )
        ).scalars()
        indexes = [re.sub(r" ON (?:ONLY )?\S+ ", " ON events ", d, count=1) for d in definitions]
        op.execute("CREATE TABLE events_plain (LIKE events INCLUDING DEFAULTS)")
        op.execute("INSERT INTO events_plain SELECT * FROM events")
        op.execute("ALTER SEQUENCE events_pk_seq OWNED BY events_plain.pk")
        op.execute("DROP TABLE events")
        op.execute("ALTER TABLE events_plain RENAME TO events")
        op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (pk)")
        op.execute("ALTER TABLE events ADD CONSTRAINT uq_events_tenant_id UNIQUE (tenant, id)")
        for definition in indexes:
            op.execute(definition)
    op.drop_table("event_ids")
