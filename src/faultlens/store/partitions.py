"""PostgreSQL day partitions of events: the partitioned table's shape, one partition per UTC day, the swap.

`events` is range-partitioned on occurred_at (epoch ms), one partition per UTC day named events_pYYYYMMDD, plus
events_default for rows no day partition takes (far-future timestamps, days before partitions existed): an odd
timestamp is never refused. A day is added by building its table beside `events` and ATTACHing it, which locks
the parent only in SHARE UPDATE EXCLUSIVE mode (reads and ingest go on); rows of that day still in the default
partition are moved into it in the same transaction, so no row is ever missing or seen twice.

The unique key (tenant, id) cannot live on a table partitioned by occurred_at: it lives in event_ids
(store/tables.py), and each partition keeps a plain (tenant, id) index for lookups by id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, text

DAY_MS = 86_400_000
DEFAULT_PARTITION = "events_default"
# Where the conversion job (jobs/partition_events.py) builds the partitioned table beside the old one.
STAGED_TABLE = "events_partitioned"
_DAY_NAME = re.compile(r"^events_p(\d{8})$")
# The unique key of the unpartitioned table becomes a plain index of the partitioned one (event_ids decides).
_UNIQUE_TO_PLAIN = {"uq_events_tenant_id": "ix_events_tenant_id"}
_STAGED_SUFFIX = "__p"  # the staged table's index names until the swap frees the final ones


def day_of(ms: int) -> int:
    """The UTC day number (days since the epoch) of an epoch-ms instant."""
    return ms // DAY_MS


def partition_name(day: int) -> str:
    return "events_p" + datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y%m%d")


def day_of_name(name: str) -> int | None:
    """The day a partition name stands for; None for any other name."""
    found = _DAY_NAME.match(name)
    if found is None:
        return None
    when = datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=UTC)
    return int(when.timestamp()) // 86_400


def is_partitioned(conn: Connection, table: str = "events") -> bool:
    """Whether `table` exists as a partitioned table (PostgreSQL); False on SQLite or for a plain table."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}).scalar()
    return kind == "p"


def table_exists(conn: Connection, table: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar() is True


def list_day_partitions(conn: Connection, parent: str = "events") -> list[int]:
    """The days that have a partition of `parent`, oldest first."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:parent)"
        ),
        {"parent": parent},
    ).scalars()
    return sorted(day for day in (day_of_name(n) for n in names) if day is not None)


def list_detached_days(conn: Connection) -> list[int]:
    """Day tables that are no partition of anything: retention detached them and had not dropped them yet."""
    names = conn.execute(
        text("SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition AND relname LIKE 'events\\_p%'")
    ).scalars()
    return sorted(day for day in (day_of_name(n) for n in names) if day is not None)


def build_partitioned(conn: Connection, *, source: str = "events", target: str = STAGED_TABLE) -> None:
    """Create `target` partitioned by day with `source`'s columns, defaults and indexes, and its default partition.

    Columns come from the source as it is now (LIKE), so columns added by later migrations carry over. Its
    indexes take temporary names until swap_in; the unique (tenant, id) key becomes a plain index.
    """
    conn.execute(text(f"CREATE TABLE {target} (LIKE {source} INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at)"))
    conn.execute(text(f"ALTER TABLE {target} ADD CONSTRAINT {target}_pkey PRIMARY KEY (pk, occurred_at)"))
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid = to_regclass(:source) AND NOT x.indisprimary ORDER BY c.relname"
        ),
        {"source": source},
    ).all()
    for name, definition in rows:
        found = re.match(r"^CREATE (?:UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (.*)$", definition)
        if found is None:  # pragma: no cover - pg_get_indexdef always has this shape
            raise RuntimeError(f"unexpected index definition: {definition}")
        final = _UNIQUE_TO_PLAIN.get(name, name)
        conn.execute(text(f"CREATE INDEX {final}{_STAGED_SUFFIX} ON {target} {found.group(1)}"))
    conn.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {target} DEFAULT"))


def swap_in(conn: Connection, *, staged: str = STAGED_TABLE) -> None:
    """Drop the unpartitioned events and give `staged` its name, indexes' names and its pk sequence, in the
    caller's transaction (which holds ingest back: hold_back_ingest)."""
    sequence = conn.execute(text("SELECT pg_get_serial_sequence('events', 'pk')")).scalar()
    if sequence is not None:
        # The staged table's pk default already draws from this sequence; it must outlive the old table.
        conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {staged}.pk"))
    conn.execute(text("DROP TABLE events"))
    conn.execute(text(f"ALTER TABLE {staged} RENAME TO events"))
    conn.execute(text(f"ALTER TABLE events RENAME CONSTRAINT {staged}_pkey TO events_pkey"))
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid = 'events'::regclass AND c.relname LIKE :pattern"
        ),
        {"pattern": "%" + _STAGED_SUFFIX.replace("_", "\\_")},
    ).scalars()
    for name in list(names):
        conn.execute(text(f"ALTER INDEX {name} RENAME TO {name.removesuffix(_STAGED_SUFFIX)}"))


def ensure_day(conn: Connection, day: int, *, parent: str = "events") -> int:
    """Give `day` its partition of `parent` if it has none; returns how many rows moved in from the default
    partition (they are in the day partition when the caller commits, never in both or neither).

    Ingest into the default partition waits for the caller's commit (an ACCESS EXCLUSIVE lock on it, which
    ATTACH takes anyway); ingest into other days and reads of other partitions go on.
    """
    if day in list_day_partitions(conn, parent):
        return 0
    name = partition_name(day)
    low, high = day * DAY_MS, (day + 1) * DAY_MS
    conn.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"))
    conn.execute(text(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS)"))
    # The constraint lets ATTACH skip its validating scan of the new table.
    bound = f"occurred_at >= {low:d} AND occurred_at < {high:d}"
    conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK ({bound})"))
    moved = conn.execute(
        text(
            f"WITH gone AS (DELETE FROM {DEFAULT_PARTITION} WHERE {bound} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM gone"
        )
    ).rowcount
    conn.execute(text(f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({low:d}) TO ({high:d})"))
    conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range"))
    return int(moved or 0)


def days_in_default(conn: Connection, *, since_day: int | None = None) -> list[int]:
    """The days that have rows in the default partition (from `since_day` on, when given)."""
    where = "" if since_day is None else f" WHERE occurred_at >= {since_day * DAY_MS:d}"
    found = conn.execute(text(f"SELECT DISTINCT occurred_at / {DAY_MS:d} FROM {DEFAULT_PARTITION}{where}")).scalars()
    return sorted(int(d) for d in found)


def days_of(instants: Iterable[int]) -> set[int]:
    return {day_of(ms) for ms in instants}


def detach_day(conn: Connection, day: int) -> None:
    """Take the day's partition out of events: its rows stop being read at once; drop_day removes it later."""
    conn.execute(text(f"ALTER TABLE events DETACH PARTITION {partition_name(day)}"))


def drop_day(conn: Connection, day: int) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(day)}"))


# --- the conversion job's statements (jobs/partition_events.py) ----------------------------------------------------

_PK_RANGE = "WHERE pk > :after AND pk <= :until"


def staged_columns(conn: Connection, *, staged: str = STAGED_TABLE) -> list[str]:
    """The staged table's columns in table order (the copy names them: the two tables were built alike)."""
    names = conn.execute(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum"
        ),
        {"t": staged},
    ).scalars()
    return [str(n) for n in names]


def days_in_pk_range(conn: Connection, *, after_pk: int, until_pk: int) -> list[int]:
    """The UTC days of the events with after_pk < pk <= until_pk."""
    found = conn.execute(
        text(f"SELECT DISTINCT occurred_at / {DAY_MS:d} FROM events {_PK_RANGE}"),
        {"after": after_pk, "until": until_pk},
    )
    return sorted(int(d) for d in found.scalars())


def copy_pk_range(conn: Connection, *, after_pk: int, until_pk: int, staged: str = STAGED_TABLE) -> int:
    """Copy events with after_pk < pk <= until_pk into the staged table and their ids into event_ids; the count."""
    params = {"after": after_pk, "until": until_pk}
    cols = ", ".join(staged_columns(conn, staged=staged))
    copied = conn.execute(text(f"INSERT INTO {staged} ({cols}) SELECT {cols} FROM events {_PK_RANGE}"), params).rowcount
    conn.execute(
        text(f"INSERT INTO event_ids (tenant, id) SELECT tenant, id FROM events {_PK_RANGE} ON CONFLICT DO NOTHING"),
        params,
    )
    return int(copied or 0)


def drop_staged(conn: Connection, *, staged: str = STAGED_TABLE) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {staged}"))


def estimated_events(conn: Connection) -> int:
    """The planner's row estimate of events: counting a large table would scan it."""
    return int(
        conn.execute(
            text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'events'::regclass")
        ).scalar()
        or 0
    )


def pk_after(conn: Connection, *, after_pk: int, until_pk: int, limit: int) -> int | None:
    """The pk of the `limit`-th event after `after_pk` (at most `until_pk`): the end of the next batch."""
    last = conn.execute(
        text(f"SELECT max(pk) FROM (SELECT pk FROM events {_PK_RANGE} ORDER BY pk LIMIT :n) b"),
        {"after": after_pk, "until": until_pk, "n": limit},
    ).scalar()
    return None if last is None else int(last)
