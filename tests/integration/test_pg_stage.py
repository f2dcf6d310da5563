"""PostgreSQL staging for bulk writes: each stage() holds exactly its own rows, and nothing outlives a commit."""

from __future__ import annotations

from sqlalchemy import text

from faultlens.store import pg_stage
from faultlens.store.db import create_db_engine, migrate
from faultlens.store.tables import fingerprints

COLUMNS = ("tenant", "id", "template", "first_seen", "last_seen")


def _rows(prefix: str, n: int) -> list[tuple[object, ...]]:
    return [("default", f"{prefix}{i}", "t <*>", i, i) for i in range(n)]


def test_stage_holds_only_its_own_rows_within_and_across_transactions(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    migrate(engine)
    with engine.begin() as conn:
        first = pg_stage.stage(conn, fingerprints, COLUMNS, _rows("a", 3))
        assert conn.execute(text(f"SELECT count(*) FROM {first}")).scalar() == 3
        second = pg_stage.stage(conn, fingerprints, COLUMNS, _rows("b", 2))
        assert second == first
        staged = conn.execute(text(f"SELECT id FROM {second} ORDER BY id")).scalars().all()
        assert staged == ["b0", "b1"], "a second stage() in one transaction starts empty"
    with engine.begin() as conn:
        # Same pooled session, new transaction: the commit emptied the table.
        assert conn.execute(text(f"SELECT count(*) FROM {first}")).scalar() == 0
        values = [("default", "x'; DROP TABLE events; --", "tab\\there\nnewline", 1, 2), ("default", "n", None, 3, 4)]
        name = pg_stage.stage(conn, fingerprints, COLUMNS, values)
        got = conn.execute(text(f"SELECT id, template FROM {name} ORDER BY first_seen")).all()
        assert [tuple(r) for r in got] == [(v[1], v[2]) for v in values], "COPY keeps text and NULL exactly"
    engine.dispose()
