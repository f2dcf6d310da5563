"""Release-aware data on SQLite and PostgreSQL: release rollups equal raw scans, the release and environment filters
of every counting route, the releases_seen registry and GET /api/v1/releases, migration 0012 on a filled database."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, MetaData, Table, delete, insert, select
from typer.testing import CliRunner

from faultlens.cli import app as cli_app
from faultlens.jobs.rollup_rebuild import ensure_rollup_rebuild
from faultlens.jobs.runner import run_until_idle
from faultlens.services import Services
from faultlens.store import releases_seen, rollup_reads, rollup_shapes, rollup_writes
from faultlens.store.db import alembic_config, create_db_engine, migrate
from faultlens.store.state import save_state
from faultlens.store.tables import ROLLUP_KEY, events, rollups
from faultlens.timeutil import Window, now_ms, parse_rfc3339_ms
from faultlens.triage import raw, releases
from tests.conftest import make_services
from tests.helpers import ago, event

DAY_MS, HOUR_MS = rollup_shapes.DAY_MS, rollup_shapes.HOUR_MS
ACTIONABLE = "failed_contact_upstream"  # service failure, actionable
MESSAGES = [
    (ACTIONABLE, "failure"),
    ("Invalid API key", "failure"),
    (None, "success"),
    ("downstream_closed", "failure"),
]
RELEASES = [None, "2026.11.1", "2026.11.2"]
ENVIRONMENTS = [None, "production", "staging"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _mixed(n: int, now: int, *, days: int = 20, seed: int = 16) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        message, status = rng.choice(MESSAGES)
        out.append(
            event(
                id=f"m{i}",
                source=rng.choice(["api", "worker"]),
                status=status,
                error_message=message,
                error_code=rng.choice([None, "E1", "E2"]),
                attempt=rng.choice([None, 1, 3]),
                operation=rng.choice(["GET /x", None]),
                release=rng.choice(RELEASES),
                environment=rng.choice(ENVIRONMENTS),
                occurred_at=_iso(now - rng.randrange(0, days * DAY_MS)),
            )
        )
    return out


def _windows(now: int) -> list[tuple[int, int]]:
    day = now // DAY_MS * DAY_MS
    return [
        (now - 7 * DAY_MS, now + 1),
        (now - 30 * 60_000, now + 1),  # "the last 30 minutes"
        (now - 11 * DAY_MS + 17 * 60_000 + 3, now - 5 * HOUR_MS - 3 * 60_000 - 7),
        (day - 5 * DAY_MS, day - DAY_MS),
        (day - 3 * DAY_MS + 2 * HOUR_MS, day - DAY_MS + 5 * HOUR_MS),
    ]


def _expected_registry(sent: list[dict[str, Any]], tenant: str = "default") -> dict[tuple[str, ...], tuple[int, int]]:
    out: dict[tuple[str, ...], tuple[int, int]] = {}
    for e in sent:
        if not e.get("release"):
            continue
        key = (e["release"], e.get("environment") or "", e["source"])
        at = parse_rfc3339_ms(e["occurred_at"])
        lo, hi = out.get(key, (at, at))
        out[key] = (min(lo, at), max(hi, at))
    return out


def _registry(conn: Connection, tenant: str = "default") -> dict[tuple[str, ...], tuple[int, int]]:
    return {
        (r["release"], r["environment"], r["source"]): (r["first_seen"], r["last_seen"])
        for r in releases_seen.list_seen(conn, tenant=tenant)
    }


def test_release_rollups_equal_a_raw_scan(services: Services) -> None:
    now = now_ms()
    sent = _mixed(1500, now)
    # Sent in several batches, out of time order: first/last seen are folds, not the last batch's values.
    for i in range(0, len(sent), 400):
        assert services.pipeline.ingest(sent[i : i + 400], tenant="default").accepted == len(sent[i : i + 400])
    questions: list[tuple[tuple[str, ...], dict[str, str]]] = [
        (("release", "environment", "status", "failure_class", "is_actionable"), {}),
        (("source", "status", "failure_class", "is_actionable"), {"release": "2026.11.1", "environment": "production"}),
        (("failure_kind", "error_code", "category"), {"release": "2026.11.2"}),
        (("release", "status"), {"environment": "staging"}),
        (("release", "status"), {"environment": ""}),  # events that named no environment
        (("operation", "status"), {"release": "2026.11.1"}),  # no shape keeps both: a raw scan
    ]
    with services.engine.connect() as conn:
        assert rollup_reads.release_rollups_ready(conn)
        assert rollup_shapes.shape_for(("release", "status")) == rollup_shapes.RELEASE_SHAPE
        assert rollup_shapes.shape_for(("source", "status")) == 2  # the narrowest, not the highest id
        assert rollup_shapes.covering_shape(("operation", "release")) is None
        for start, end in _windows(now):
            for by, where in questions:
                answered = raw.aggregate(conn, tenant="default", start=start, end=end, by=by, where=where)
                scanned = raw.aggregate_raw(conn, tenant="default", start=start, end=end, by=by, where=where)
                assert answered == scanned, (start, end, by, where)
                # And the events as sent: how many match the filter (every event counts once in any grouping).
                expected = sum(
                    1
                    for e in sent
                    if start <= parse_rfc3339_ms(e["occurred_at"]) < end
                    and all((e.get(k) or "") == v for k, v in where.items())
                )
                assert sum(n for n, _a in answered.values()) == expected, (start, end, by, where)
            for bucket_ms in (HOUR_MS, DAY_MS):
                where = {"release": "2026.11.1", "environment": "production"}
                by = ("status", "failure_class", "is_actionable")
                kwargs: dict[str, Any] = {"tenant": "default", "start": start, "end": end, "by": by, "where": where}
                bucketed = raw.aggregate(conn, bucket_ms=bucket_ms, **kwargs)
                assert bucketed == raw.aggregate_raw(conn, bucket_ms=bucket_ms, **kwargs), (start, end, bucket_ms)
        hour_end = now // HOUR_MS * HOUR_MS + HOUR_MS
        starts = [hour_end - h * HOUR_MS for h in (1, 6, 30, 200)]
        by = ("source", "status", "failure_class", "is_actionable")
        where = {"release": "2026.11.2"}
        from_rollups = raw.count_since(conn, tenant="default", starts=starts, end=hour_end, by=by, where=where)
        from_events = rollup_reads.count_since(
            conn, tenant="default", starts=starts, end=hour_end, by=by, where=where, raw=True
        )
        assert from_rollups == from_events and from_rollups
        # Every release row equals the recount of the stored events (the release shape, every grain).
        stored = [dict(r) for r in conn.execute(select(events)).mappings()]
        assert _rollup_rows(conn, rollup_shapes.RELEASE_SHAPE) == _recount(stored, rollup_shapes.RELEASE_SHAPE)
        assert _registry(conn) == _expected_registry(sent)
    # `faultlens rollups verify` compares the release shape too.
    result = CliRunner().invoke(cli_app, ["rollups", "verify", "--db", str(services.settings.database_url)])
    assert result.exit_code == 0 and "rollups match" in result.output, result.output
    assert f"\n│ {rollup_shapes.RELEASE_SHAPE} " in result.output, result.output


def _rollup_rows(conn: Connection, shape: int) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for row in conn.execute(select(rollups).where(rollups.c.shape == shape)).mappings():
        counts[tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in ROLLUP_KEY)] += row["count"]
    return +counts


def _recount(rows: list[dict[str, Any]], shape: int) -> Counter[tuple[Any, ...]]:
    counts, _attempts = rollup_writes.deltas(rows, shapes=[shape])
    return +counts


def _load(client: TestClient, batch: list[dict[str, Any]]) -> None:
    r = client.post("/api/v1/events", json=batch)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def test_release_and_environment_filter_every_counting_route(client: TestClient) -> None:
    def ev(release: str | None, environment: str | None, message: str | None, **more: Any) -> dict[str, Any]:
        status = "success" if message is None else "failure"
        return event(release=release, environment=environment, error_message=message, status=status, **more)

    batch = [ev("v2", "production", ACTIONABLE, error_code="E9") for _ in range(3)]
    batch += [ev("v2", "production", None) for _ in range(5)]
    batch += [ev("v2", "staging", ACTIONABLE) for _ in range(2)]
    batch += [ev("v1", "production", "Invalid API key", http_status=401) for _ in range(4)]
    batch += [ev(None, None, ACTIONABLE), ev("v1", "production", None, occurred_at=ago(days=3))]
    _load(client, batch)
    scope = {"release": "v2", "environment": "production"}

    ov = client.get("/api/v1/overview", params=scope).json()
    assert ov["totals"]["total"] == 8 and ov["totals"]["actionable_failure_count"] == 3
    assert ov["totals"]["actionable_failure_rate"] == 3 / 8
    assert ov["sources"][0]["top_error_codes"] == [{"error_code": "E9", "count": 3}]
    assert ov["filters"]["release"] == "v2" and ov["filters"]["environment"] == "production"
    assert client.get("/api/v1/overview", params={"environment": "production"}).json()["totals"]["total"] == 13
    assert client.get("/api/v1/overview", params={"release": "v1", "window": "7d"}).json()["totals"]["total"] == 5
    assert client.get("/api/v1/overview", params={"release": "v9"}).json()["totals"]["total"] == 0

    csv_export = client.get("/api/v1/overview/export", params={**scope, "format": "csv"})
    assert csv_export.status_code == 200 and csv_export.text.count("\n") >= 2

    # The question of the issue: the actionable failure rate of release X in production over the last 30 minutes.
    since = _iso(now_ms() - 30 * 60_000)
    recent = client.get("/api/v1/overview", params={**scope, "since": since}).json()
    assert recent["totals"]["actionable_failure_rate"] == 3 / 8
    trend = client.get("/api/v1/trends", params={**scope, "window": "24h", "bucket": "1h"}).json()
    assert trend["totals"]["total"] == 8 and trend["totals"]["actionable_failure_rate"] == 3 / 8
    assert trend["filters"]["release"] == "v2" and trend["filters"]["environment"] == "production"

    alerts = client.get("/api/v1/alerts", params=scope)
    assert alerts.status_code == 200 and alerts.json()["status"] in ("ok", "warn", "critical")

    failures = client.get("/api/v1/failures", params=scope).json()
    assert failures["pagination"]["total"] == 3 and len(failures["items"]) == 3
    assert {(i["release"], i["environment"]) for i in failures["items"]} == {("v2", "production")}
    assert failures["filters"]["release"] == "v2" and failures["filters"]["environment"] == "production"
    staging = client.get("/api/v1/failures", params={"release": "v2", "environment": "staging"}).json()
    assert staging["pagination"]["total"] == 2 == len(staging["items"])

    listed = client.get("/api/v1/events", params=scope).json()
    assert len(listed["items"]) == 8 and {i["release"] for i in listed["items"]} == {"v2"}

    summary = client.get("/api/v1/stats/summary", params=scope).json()
    assert (summary["total"], summary["actionable_failure_count"]) == (8, 3)
    errors = client.get("/api/v1/stats/errors", params={**scope, "scope": "all"}).json()
    assert errors["total"] == 3

    for bad in ({"release": ""}, {"environment": ""}, {"release": "x" * 129}, {"environment": "e" * 65}):
        r = client.get("/api/v1/overview", params=bad)
        assert r.status_code in (400, 422) and "error" in r.json(), (bad, r.text)


def test_releases_route_lists_counts_and_deploy_markers(services: Services, client: TestClient) -> None:
    now = now_ms()
    batch = [
        event(release="v1", environment="production", source="api", occurred_at=_iso(now - 3 * DAY_MS)),
        event(release="v1", environment="production", source="api", status="success", occurred_at=_iso(now - HOUR_MS)),
        event(release="v2", environment="production", source="api", error_message=ACTIONABLE),
        event(release="v2", environment="production", source="worker", error_message="downstream_closed"),
        event(release="v2", environment="production", source="worker", status="success"),
        event(release="v2", environment="staging", source="api", occurred_at=_iso(now - 2 * HOUR_MS)),
        event(source="api", status="success"),  # no release: not listed
    ]
    _load(client, batch)
    # Another tenant's release is never shown.
    assert services.pipeline.ingest([event(release="secret", environment="production")], tenant="other").accepted

    body = client.get("/api/v1/releases", params={"window": "24h"}).json()
    listed = {(r["release"], r["environment"]): r for r in body["releases"]}
    assert set(listed) == {("v1", "production"), ("v2", "production"), ("v2", "staging")}
    v2 = listed[("v2", "production")]
    assert v2["sources"] == ["api", "worker"] and v2["total"] == 3 and v2["failures"] == 2
    assert v2["actionable"] == 1 and v2["actionable_failure_rate"] == 1 / 3 and v2["client_aborts"] == 1
    v1 = listed[("v1", "production")]
    assert v1["total"] == 1 and parse_rfc3339_ms(v1["first_seen"]) == parse_rfc3339_ms(batch[0]["occurred_at"])
    # Newest first_seen first; v1 was first seen 3 days ago, before the window: no marker for it.
    assert body["releases"][-1]["release"] == "v1"
    assert [(m["release"], m["environment"]) for m in body["markers"]] == [("v2", "staging"), ("v2", "production")]

    prod = client.get("/api/v1/releases", params={"window": "7d", "environment": "production"}).json()
    assert {(r["release"], r["environment"]) for r in prod["releases"]} == {("v1", "production"), ("v2", "production")}
    assert [m["release"] for m in prod["markers"]] == ["v1", "v2"]
    worker = client.get("/api/v1/releases", params={"source": "worker"}).json()
    assert [(r["release"], r["total"]) for r in worker["releases"]] == [("v2", 2)]
    with services.engine.connect() as conn:
        window = Window("24h", now - DAY_MS, now + 1)
        assert releases.list_releases(conn, tenant="other", window=window)[0]["release"] == "secret"
    assert client.get("/api/v1/releases", params={"window": "2d"}).status_code == 400


def test_release_questions_read_raw_events_until_the_rebuild_is_done(quiet: Services) -> None:
    now = now_ms()
    sent = _mixed(600, now, days=5, seed=3)
    assert quiet.pipeline.ingest(sent, tenant="default").accepted == 600
    with quiet.engine.begin() as conn:
        conn.execute(delete(rollups).where(rollups.c.shape == rollup_shapes.RELEASE_SHAPE))
        save_state(conn, rollup_reads.RELEASE_ROLLUPS_STATE, "needed")
    kwargs: dict[str, Any] = {
        "tenant": "default",
        "start": now - 4 * DAY_MS,
        "end": now + 1,
        "by": ("status", "failure_class", "is_actionable"),
        "where": {"release": "2026.11.1", "environment": "production"},
    }
    with quiet.engine.connect() as conn:
        assert raw.aggregate(conn, **kwargs) == raw.aggregate_raw(conn, **kwargs) != {}
    job = ensure_rollup_rebuild(quiet.engine)
    assert job is not None and job.params["shapes"] == [rollup_shapes.RELEASE_SHAPE]
    run_until_idle(quiet, batch_size=100, pause_s=0)
    with quiet.engine.connect() as conn:
        assert rollup_reads.release_rollups_ready(conn)
        stored = [dict(r) for r in conn.execute(select(events)).mappings()]
        assert _rollup_rows(conn, rollup_shapes.RELEASE_SHAPE) == _recount(stored, rollup_shapes.RELEASE_SHAPE)
        assert raw.aggregate(conn, **kwargs) == raw.aggregate_raw(conn, **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_url(request: pytest.FixtureRequest) -> str:
    """A database no migration has touched, on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "empty_postgres_url"))


def _row(i: int, now: int) -> dict[str, Any]:
    failed = i % 3 != 0
    return {
        "tenant": "default" if i % 4 else "other",
        "id": f"old-{i}",
        "source": ("api", "worker")[i % 2],
        "operation": None,
        "item_type": "request",
        "status": "failure" if failed else "success",
        "occurred_at": now - (i % 9) * DAY_MS - i * 7_000,
        "received_at": now,
        "started_at": None,
        "duration_ms": 10.0 + i,
        "http_status": 502 if failed else 200,
        "error_code": "E1" if failed else None,
        "error_message": "boom" if failed else None,
        "attempt": i % 3 or None,
        "max_attempts": None,
        "trace_id": None,
        "span_id": None,
        "correlation_id": None,
        "request_id": None,
        "job_id": None,
        "release": (None, "1.0", "1.1")[i % 3],
        "environment": (None, "production", "staging", "production")[i % 4],
        "attributes": None,
        "failure_kind": "boom" if failed else "none",
        "failure_class": "service_failure" if failed else "none",
        "is_actionable": failed,
        "category": "dependency_error" if failed else "none",
        "retryable": False,
        "rule_name": None,
        "rule_version": "default@2026-11-22",
        "fingerprint_id": None,
    }


def test_migration_0012_on_a_filled_database_rebuilds_release_rows(bare_url: str) -> None:
    engine = create_db_engine(bare_url)
    migrate(engine, "0011")
    now = now_ms()
    rows = [_row(i, now) for i in range(300)]
    old_shapes = [s for s in rollup_shapes.ALL_SHAPES if s != rollup_shapes.RELEASE_SHAPE]
    counts, attempts = rollup_writes.deltas(rows, shapes=old_shapes)
    old_key = ROLLUP_KEY[: ROLLUP_KEY.index("release")]
    with engine.begin() as conn:
        conn.execute(insert(Table("events", MetaData(), autoload_with=conn)), rows)
        old = Table("rollups", MetaData(), autoload_with=conn)
        assert "release" not in old.c
        values = [
            {**dict(zip(old_key, k, strict=False)), "count": n, "attempt_sum": attempts[k]} for k, n in counts.items()
        ]
        conn.execute(insert(old), values)
    migrate(engine)
    kwargs: dict[str, Any] = {
        "tenant": "default",
        "start": now - 10 * DAY_MS,
        "end": now + 1,
        "by": ("source", "status", "failure_class", "is_actionable"),
        "where": {"release": "1.1", "environment": "production"},
    }
    with engine.connect() as conn:
        assert not rollup_reads.release_rollups_ready(conn)
        assert _all_rows(conn) == +counts  # the old rows kept, with '' release and environment
        assert raw.aggregate(conn, **kwargs) == raw.aggregate_raw(conn, **kwargs) != {}
    services = make_services(bare_url)
    ended = run_until_idle(services, pause_s=0)
    assert ("rollup_rebuild", "done", [rollup_shapes.RELEASE_SHAPE]) in [
        (j.kind, j.state, j.params.get("shapes")) for j in ended
    ]
    with engine.connect() as conn:
        assert rollup_reads.release_rollups_ready(conn)
        stored = [dict(r) for r in conn.execute(select(events)).mappings()]
        full, _ = rollup_writes.deltas(stored)
        assert _all_rows(conn) == +full
        assert raw.aggregate(conn, **kwargs) == raw.aggregate_raw(conn, **kwargs)
        expected = {
            (r["release"], r["environment"] or "", r["source"])
            for r in stored
            if r["release"] and r["tenant"] == "default"
        }
        got = _registry(conn)
        assert set(got) == set(expected)
        for key, (first, last) in got.items():
            ats = [
                r["occurred_at"]
                for r in stored
                if r["tenant"] == "default" and (r["release"], r["environment"] or "", r["source"]) == key
            ]
            assert (first, last) == (min(ats), max(ats))
    services.engine.dispose()
    from alembic import command

    command.downgrade(alembic_config(engine), "0011")
    with engine.connect() as conn:
        back = Table("rollups", MetaData(), autoload_with=conn)
        assert "release" not in back.c
        kept: Counter[tuple[Any, ...]] = Counter()
        for row in conn.execute(select(back)).mappings():
            kept[tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in old_key)] += row["count"]
    assert kept == +Counter({k[: len(old_key)]: n for k, n in full.items() if k[1] != rollup_shapes.RELEASE_SHAPE})
    engine.dispose()


def _all_rows(conn: Connection) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for row in conn.execute(select(rollups)).mappings():
        counts[tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in ROLLUP_KEY)] += row["count"]
    return +counts
