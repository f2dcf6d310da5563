"""Migrations are additive: a database filled at the first migration keeps every row and field at head."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, MetaData, Table, insert, select

from faultlens.jobs.runner import run_until_idle
from faultlens.store import rollup_reads, rollup_shapes, rollup_writes
from faultlens.store.db import alembic_config, create_db_engine, current_revision, head_revision, migrate
from faultlens.store.tables import ROLLUP_KEY, events
from tests.conftest import make_services


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test once on SQLite and once on PostgreSQL, both untouched by any migration (not the migrated clone
    the other tests get)."""
    name = "sqlite_url" if request.param == "sqlite" else "empty_postgres_url"
    return str(request.getfixturevalue(name))


def _old_event(i: int) -> dict[str, Any]:
    return {
        "tenant": "default" if i % 2 else "other",
        "id": f"ev-{i}",
        "source": "codex-proxy",
        "operation": "POST /v1/responses",
        "item_type": "request",
        "status": "failure" if i % 3 else "success",
        "occurred_at": 1_763_800_000_000 + i * 1000,
        "received_at": 1_763_800_000_500 + i * 1000,
        "started_at": 1_763_799_999_000 + i * 1000,
        "duration_ms": 12.5 + i,
        "http_status": 502,
        "error_code": "failed_contact_upstream",
        "error_message": f"failed_contact_upstream #{i} 失败",
        "attempt": 1,
        "max_attempts": 3,
        "trace_id": f"t{i}",
        "span_id": f"s{i}",
        "correlation_id": f"c{i}",
        "request_id": f"r{i}",
        "job_id": None,
        "release": "1.2.3",
        "environment": "prod",
        "attributes": '{"site_id": "s1"}',
        "failure_kind": "failed_contact_upstream",
        "failure_class": "service_failure",
        "is_actionable": True,
        "category": "dependency_error",
        "retryable": True,
        "rule_name": "failed_contact_upstream",
        "rule_version": "default@2026-11-22",
    }


def test_upgrade_from_first_migration_loses_nothing(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    old = Table("events", MetaData(), autoload_with=engine)
    rows = [_old_event(i) for i in range(50)]
    with engine.begin() as conn:
        conn.execute(insert(old), rows)
        conn.execute(
            insert(Table("api_keys", MetaData(), autoload_with=engine)),
            [
                {
                    "id": "k1",
                    "tenant": "default",
                    "scopes": "read",
                    "key_hash": "h" * 64,
                    "name": None,
                    "created_at": 1,
                    "revoked_at": None,
                }
            ],
        )
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    new = Table("events", MetaData(), autoload_with=engine)
    assert {c.name for c in old.c} <= {c.name for c in new.c}
    with engine.connect() as conn:
        stored = conn.execute(select(new).order_by(new.c.pk)).mappings().all()
        assert conn.execute(select(Table("api_keys", MetaData(), autoload_with=engine))).first() is not None
    assert len(stored) == len(rows)
    for want, got in zip(rows, stored, strict=True):
        for name, value in want.items():
            assert got[name] == value, name
    engine.dispose()


def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()


def test_rollup_shapes_and_weeks_are_derived_exactly_from_hourly_and_daily_rollups(db_url: str) -> None:
    """0004 adds shapes and a week grain in SQL and asks the rebuild job for attribute rows; then the table
    equals a recount of the events (attribute filters scanning raw events meanwhile), and back."""
    engine = create_db_engine(db_url)
    migrate(engine, "0003")
    rows = []
    for i in range(400):
        row = _old_event(i)
        row.update(
            occurred_at=1_763_800_000_000 - i * 4_321_000 * 13,  # about 26 days back, across week boundaries
            source=("codex-proxy", "billing-api", "doc_sync")[i % 3],
            operation=("POST /a", "GET /b", "")[i % 5 % 3] or None,
            status=("success", "failure", "retry", "dead_letter")[i % 4],
            is_actionable=bool(i % 7 % 2),
            failure_kind=("timeout", "bad_request")[i % 2],
            error_code=None if i % 6 == 0 else f"E{i % 4}",
            attempt=None if i % 5 == 0 else i % 3 + 1,
            attributes=None if i % 4 == 0 else f'{{"site_id": "s{i % 3}", "target_object": {i % 2}}}',
        )
        rows.append(row)
    counts, attempts = rollup_writes.deltas(rows)
    added = ("shape", "attr_name", "attr_value", "release", "environment", "fingerprint_id")
    old_key = [k for k in ROLLUP_KEY if k not in added]
    old_rows = [
        {**dict(zip(ROLLUP_KEY, key, strict=True)), "count": n, "attempt_sum": attempts.get(key, 0)}
        for key, n in counts.items()
        if key[1] == 0 and key[2] in (3_600, 86_400)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Table("events", MetaData(), autoload_with=engine)), rows)
        old = Table("rollups", MetaData(), autoload_with=engine)
        assert "shape" not in old.c
        conn.execute(insert(old), [{k: r[k] for k in (*old_key, "count", "attempt_sum")} for r in old_rows])
    migrate(engine)
    # rows the rebuild job adds; minute rows begin with the writes after the upgrade (reads check them by the hour)
    from_events = (rollup_shapes.ATTRIBUTE_SHAPE, rollup_shapes.RELEASE_SHAPE, rollup_shapes.GROUP_SHAPE)
    minute = rollup_shapes.FINE_MS // 1000
    counts = Counter({k: n for k, n in counts.items() if k[2] != minute})
    attempts = Counter({k: a for k, a in attempts.items() if k[2] != minute})
    without_attributes = Counter({k: n for k, n in counts.items() if k[1] not in from_events})
    with engine.connect() as conn:
        got_counts, got_attempts = _rollup_counters(conn, ROLLUP_KEY)
        assert not rollup_reads.attribute_rollups_ready(conn)
        # Until the job has run, an attribute filter is answered from raw events.
        by_site = rollup_reads.aggregate(
            conn,
            tenant="default",
            start=0,
            end=2_000_000_000_000,
            by=("status",),
            where={"attr_name": "site_id", "attr_value": "s1"},
        )
    assert sum(n for n, _a in by_site.values()) == sum(
        1 for r in rows if r["attributes"] and '"s1"' in r["attributes"] and r["tenant"] == "default"
    )
    assert got_counts == +without_attributes
    assert got_attempts == +Counter({k: a for k, a in attempts.items() if k[1] not in from_events})
    assert {k[1] for k in got_counts} == {0, 1, 2} and {k[2] for k in got_counts} == {3_600, 86_400, 604_800}

    services = make_services(db_url)
    ended = run_until_idle(services)  # the attribute rows, and a backfill to the current rule pack
    done = [(j.kind, j.state, j.params.get("shapes")) for j in ended]
    assert ("rollup_rebuild", "done", [3]) in done and ("rollup_rebuild", "done", [4]) in done
    with engine.connect() as conn:
        got_counts, got_attempts = _rollup_counters(conn, ROLLUP_KEY)
        assert rollup_reads.attribute_rollups_ready(conn)
        counts, attempts = rollup_writes.deltas([dict(r) for r in conn.execute(select(events)).mappings()])
    hourly = [
        Counter({k: n for k, n in c.items() if k[2] != minute}) for c in (got_counts, counts, got_attempts, attempts)
    ]
    assert hourly[0] == +hourly[1] and hourly[2] == +hourly[3]
    assert rollup_shapes.ATTRIBUTE_SHAPE in {k[1] for k in got_counts}
    services.engine.dispose()

    command.downgrade(alembic_config(engine), "0003")
    with engine.connect() as conn:
        got_counts, _ = _rollup_counters(conn, tuple(old_key))
    kept = [ROLLUP_KEY.index(k) for k in old_key]
    assert got_counts == Counter(
        {tuple(key[i] for i in kept): n for key, n in counts.items() if key[1] == 0 and key[2] in (3_600, 86_400)}
    )
    engine.dispose()


def _rollup_counters(conn: Connection, key: tuple[str, ...]) -> tuple[Counter[Any], Counter[Any]]:
    table = Table("rollups", MetaData(), autoload_with=conn)
    counts: Counter[Any] = Counter()
    attempts: Counter[Any] = Counter()
    for row in conn.execute(select(table)).mappings():
        k = tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in key)
        counts[k] += row["count"]
        attempts[k] += row["attempt_sum"]
    return +counts, +attempts
