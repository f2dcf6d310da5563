"""PostgreSQL bulk writes: COPY rows into a session's staging table, then one INSERT .. SELECT decides conflicts.

COPY streams rows through psycopg's C code; binding thousands of values as arrays spends most of an ingest batch
in Python turning lists into array literals. The staging table is a temporary table per session, emptied at
every commit, so nothing staged outlives the transaction that staged it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table


def stage(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """COPY `rows` (values in `columns` order) into staging_<table>, inside conn's transaction; returns its name."""
    cols = ", ".join(columns)
    # Named after its columns too, so a session that outlives a migration never writes into a stale shape.
    name = f"staging_{table.name}_{zlib.crc32(cols.encode()):08x}"
    # Typed like the real columns (CREATE .. AS SELECT .. WITH NO DATA copies types, not constraints).
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "
        f"SELECT {cols} FROM {table.name} WITH NO DATA"
    )
    # Emptied at every commit, and here too: a second stage() in one transaction must not see the first's rows.
    conn.exec_driver_sql(f"DELETE FROM {name}")
    driver = conn.connection.driver_connection
    if driver is None:  # pragma: no cover - a live connection always has its driver connection
        raise RuntimeError("no driver connection")
    with driver.cursor() as cur, cur.copy(f"COPY {name} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return name
