"""What checking rollups against raw events needs beyond rollup_reads: one read snapshot, the frequent attributes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select

from faultlens.store import rollup_shapes
from faultlens.store.tables import rollups


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one snapshot of the database; nothing it does is committed."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn.exec_driver_sql("BEGIN")  # one read snapshot for every statement (WAL)
        yield conn
        conn.rollback()


def frequent_attribute_values(
    conn: Connection, *, tenant: str, start: int, end: int, limit: int
) -> list[tuple[str, str]]:
    """The (name, value) pairs of rolled attributes with the most events in the days covering [start, end)."""
    r = rollups.c
    total = func.sum(r["count"])
    stmt = (
        select(r.attr_name, r.attr_value, total)
        .where(r.tenant == tenant, r.shape == rollup_shapes.ATTRIBUTE_SHAPE, r.grain == rollup_shapes.DAY_MS // 1000)
        .where(r.bucket >= start // rollup_shapes.DAY_MS * rollup_shapes.DAY_MS, r.bucket < end)
        .group_by(r.attr_name, r.attr_value)
        .order_by(total.desc(), r.attr_name, r.attr_value)
        .limit(limit)
    )
    return [(str(name), str(value)) for name, value, _n in conn.execute(stmt)]
