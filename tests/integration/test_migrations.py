"""Migrations are additive: a database filled at the first migration keeps every row and field at head."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, Table, insert, select

from faultlens.store.db import create_db_engine, current_revision, head_revision, migrate


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
