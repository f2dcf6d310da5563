"""Alert delivery against a real receiver server, on SQLite and PostgreSQL: nothing lost, nothing sent twice.

The sender's clock is injected, so backoff and Retry-After are checked to the millisecond without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from sqlalchemy import Engine

from faultlens.alert_model import Notification
from faultlens.alerting.delivery import DeliveryReport, deliver_once
from faultlens.alerting.routing import Routing, load_routing
from faultlens.errors import Conflict, NotificationNotFound
from faultlens.metrics import Metrics
from faultlens.settings import Settings
from faultlens.store import notifications as outbox
from faultlens.store.db import create_db_engine, migrate
from faultlens.timeutil import now_ms
from tests.alert_receiver import AlertReceiver

SECRET_QUERY = "tok-in-query-5f1e"
SECRET_PATH = "tok-in-path-9a2c"
SECRET_HEADER = "tok-in-header-77d0"
MAX_ATTEMPTS = 3
BACKOFF_BASE_MS = 1000
BACKOFF_MAX_MS = 4000


class Clock:
    """The sender's notion of now, moved by hand; starts on a whole second (HTTP dates have no fraction)."""

    def __init__(self) -> None:
        self.now = now_ms() // 1000 * 1000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    with AlertReceiver() as server:
        yield server


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        alert_delivery_max_attempts=MAX_ATTEMPTS,
        alert_delivery_backoff_base_s=BACKOFF_BASE_MS / 1000,
        alert_delivery_backoff_max_s=BACKOFF_MAX_MS / 1000,
        alert_retry_after_max_s=60,
        alert_delivery_timeout_s=0.5,
    )


def routing_file(tmp_path: Path, url: str, *, tenants: list[str] | None = None, name: str = "hooks") -> Routing:
    """A webhook receiver (named "hooks") whose URL path, query and a header carry tokens."""
    served = f"\n    tenants: [{', '.join(tenants)}]" if tenants else ""
    path = tmp_path / "routing.yaml"
    path.write_text(
        f"""version: 1
defaults: {{group_by: [alertname], group_wait: 0s}}
receivers:
  - name: {name}
    type: webhook
    url: "{url}/hooks/{SECRET_PATH}?token={SECRET_QUERY}"
    headers: {{Authorization: "Bearer {SECRET_HEADER}"}}
    timeout: 5s{served}
"""
    )
    return load_routing(path, webhook_url="")


@pytest.fixture
def routing(tmp_path: Path, receiver: AlertReceiver) -> Routing:
    return routing_file(tmp_path, receiver.url)


def notification(
    n: int, *, tenant: str = "acme", receiver: str = "hooks", kind: str = "firing", name: str = "failure_spike"
) -> Notification:
    labels = {"alertname": name, "level": "P1", "source": "checkout"}
    alert = f"{tenant}-{name}-{n}"
    return Notification(
        id=f"{alert}-1-{kind}-{receiver}",
        tenant=tenant,
        alert_id=alert[:32],
        receiver=receiver,
        kind=kind,  # type: ignore[arg-type]
        group_key=f'{{}}:{{alertname="{name}"}}',
        payload={
            "id": alert,
            "tenant": tenant,
            "name": name,
            "level": "P1",
            "status": kind,
            "labels": labels,
            "annotations": {
                "summary": f"failures of checkout spiked ({n})",
                "description": "",
                "runbook_url": "docs/runbook.md#failure_spike",
                "owner": "payments-team",
                "last_release": "v1.2.3",
                "last_release_seen_at": None,
                "rule_version": "r1",
                "rule_activated_at": None,
                "response_minutes": 15,
            },
            "starts_at": 1_700_000_000_000,
            "ends_at": None if kind == "firing" else 1_700_000_600_000,
            "value": 42.0,
            "threshold": 20.0,
            "episode": 1,
            "url": "",
        },
    )


def write(engine: Engine, rows: list[Notification], clock: Clock) -> list[str]:
    with engine.begin() as conn:
        assert outbox.insert_notifications(conn, rows, now=clock(), group_wait_ms=0) == len(rows)
    return sorted(row.id for row in rows)


def rows_of(engine: Engine, tenant: str = "acme") -> list[outbox.StoredNotification]:
    with engine.connect() as conn:
        return sorted(outbox.list_notifications(conn, tenant=tenant, limit=1000), key=lambda r: r.id)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"faultlens_{name}", labels)
    return 0.0 if value is None else value


def run(engine: Engine, routing: Routing, settings: Settings, metrics: Metrics, clock: Clock) -> DeliveryReport:
    return deliver_once(engine, routing, settings, metrics, now_ms=clock)


def test_down_then_up_delivers_each_notification_exactly_once(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    ids = write(engine, [notification(i) for i in range(3)], clock)
    receiver.down()
    for attempt in (1, 2):
        start = clock()
        report = run(engine, routing, settings, metrics, clock)
        assert report == DeliveryReport(sent=1, delivered=0, retrying=3, dead=0)
        for row in rows_of(engine):
            assert (row.state, row.attempts, row.last_status, row.last_error) == (
                "pending",
                attempt,
                None,
                "ConnectError",
            )
            # Full jitter: somewhere in [now, now + base * 2**(attempt-1)].
            assert start <= row.due_at <= start + BACKOFF_BASE_MS * 2 ** (attempt - 1)
        clock.advance(BACKOFF_MAX_MS)
    receiver.up()
    assert run(engine, routing, settings, metrics, clock) == DeliveryReport(sent=1, delivered=3, retrying=0, dead=0)
    assert run(engine, routing, settings, metrics, clock) == DeliveryReport()  # nothing left to send
    assert sorted(receiver.notification_ids()) == ids
    assert len(receiver.received) == 1 and len(receiver.idempotency_keys()) == 1
    assert {(r.state, r.attempts, r.delivered_at) for r in rows_of(engine)} == {("delivered", 3, clock())}
    assert sample(metrics, "alert_deliveries_total", receiver_type="webhook", result="retrying") == 2
    assert sample(metrics, "alert_deliveries_total", receiver_type="webhook", result="delivered") == 1
    assert sample(metrics, "alert_notification_lag_seconds_count", receiver_type="webhook") == 3
    assert sample(metrics, "alert_notifications_pending") == 0


def test_an_error_answer_is_retried_under_the_same_key(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    ids = write(engine, [notification(1), notification(2, kind="resolved")], clock)
    receiver.fail()
    assert run(engine, routing, settings, metrics, clock).retrying == 2
    assert {(r.last_status, r.last_error) for r in rows_of(engine)} == {(500, "HTTP 500")}
    assert sample(metrics, "alert_notifications_pending") == 2
    receiver.accept()
    clock.advance(BACKOFF_MAX_MS)
    assert run(engine, routing, settings, metrics, clock).delivered == 2
    calls = receiver.received
    assert [c.status for c in calls] == [500, 200]
    assert calls[0].idempotency_key == calls[1].idempotency_key
    assert sorted(receiver.notification_ids()) == ids
    # The call itself: where the routing file said, its headers, and a body naming both notifications' alerts.
    assert calls[1].path == f"/hooks/{SECRET_PATH}" and calls[1].query == f"token={SECRET_QUERY}"
    assert calls[1].headers["authorization"] == f"Bearer {SECRET_HEADER}"
    assert calls[1].headers["content-type"] == "application/json"
    assert "failures of checkout spiked (1)" in str(calls[1].body)
    assert "failures of checkout spiked (2)" in str(calls[1].body)


def test_retry_after_in_seconds_is_honoured_to_the_millisecond(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    ids = write(engine, [notification(1)], clock)
    receiver.throttle(7)
    t0 = clock()
    assert run(engine, routing, settings, metrics, clock).retrying == 1
    [row] = rows_of(engine)
    assert (row.due_at, row.last_status, row.last_error) == (t0 + 7000, 429, "HTTP 429")
    receiver.accept()
    clock.advance(6999)
    assert run(engine, routing, settings, metrics, clock) == DeliveryReport()
    assert len(receiver.received) == 1  # nothing sent before Retry-After ran out
    clock.advance(1)
    assert run(engine, routing, settings, metrics, clock).delivered == 1
    assert receiver.notification_ids() == ids


def test_retry_after_as_an_http_date_and_its_cap(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    write(engine, [notification(1)], clock)
    t0 = clock()
    receiver.throttle(formatdate((t0 + 20_000) / 1000, usegmt=True))
    run(engine, routing, settings, metrics, clock)
    assert [r.due_at for r in rows_of(engine)] == [t0 + 20_000]
    clock.advance(20_000)
    receiver.throttle(3600)  # asks for an hour; Settings.alert_retry_after_max_s caps it at 60 s
    run(engine, routing, settings, metrics, clock)
    assert [(r.due_at, r.attempts) for r in rows_of(engine)] == [(clock() + 60_000, 2)]


def test_dead_letter_after_the_last_try_then_resend_delivers(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    caplog.set_level(logging.WARNING, logger="faultlens.alerting.delivery")
    ids = write(engine, [notification(1), notification(2)], clock)
    receiver.fail()
    reports = []
    for _ in range(MAX_ATTEMPTS):
        reports.append(run(engine, routing, settings, metrics, clock))
        clock.advance(BACKOFF_MAX_MS)
    assert [(r.retrying, r.dead) for r in reports] == [(2, 0), (2, 0), (0, 2)]
    assert {(r.state, r.attempts, r.last_error) for r in rows_of(engine)} == {("dead", MAX_ATTEMPTS, "HTTP 500")}
    assert sample(metrics, "alert_notifications_dead_total", receiver_type="webhook") == 2
    assert sample(metrics, "alert_deliveries_total", receiver_type="webhook", result="failed") == 1
    assert any("hooks" in r.getMessage() and "dead-lettered" in r.getMessage() for r in caplog.records)
    assert run(engine, routing, settings, metrics, clock) == DeliveryReport()  # dead rows stay put
    with engine.begin() as conn:
        assert outbox.count_dead_since(conn, tenant="acme", since=0) == [("hooks", "failure_spike", 2)]
        first = outbox.resend(conn, tenant="acme", notification_id=ids[0], now=clock())
        assert (first.state, first.attempts, first.batch_id, first.due_at) == ("pending", 0, None, clock())
        with pytest.raises(Conflict):
            outbox.resend(conn, tenant="acme", notification_id=ids[0], now=clock())  # pending now: refused
    with engine.begin() as conn:
        again = outbox.resend(conn, tenant="acme", notification_id=ids[1], now=clock())
    assert (again.state, again.attempts, again.batch_id) == ("pending", 0, None)
    dead_key = receiver.received[0].idempotency_key
    receiver.accept()
    assert run(engine, routing, settings, metrics, clock) == DeliveryReport(sent=1, delivered=2, retrying=0, dead=0)
    assert sorted(receiver.notification_ids()) == ids
    assert receiver.idempotency_keys().isdisjoint({dead_key})  # a re-send is a new delivery, under a new key
    assert {r.state for r in rows_of(engine)} == {"delivered"}


def test_a_batch_claimed_before_a_crash_is_resent_whole_under_its_key(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    ids = write(engine, [notification(i) for i in range(150)], clock)
    # The crash: a pass claimed (and committed the batch ids) but never recorded a result. Its limit cut the
    # second batch short.
    with engine.begin() as conn:
        claimed = outbox.claim_due(conn, now=clock(), limit=120)
    assert [len(b.rows) for b in claimed] == [100, 20]
    assert all(len({(r.receiver, r.tenant, r.group_key) for r in b.rows}) == 1 for b in claimed)
    # The next claim returns the claimed batches whole, whatever its own limit.
    with engine.begin() as conn:
        again = outbox.claim_due(conn, now=clock(), limit=5)
    assert {b.id: len(b.rows) for b in again} == {claimed[0].id: 100}
    report = run(engine, routing, settings, metrics, clock)
    assert report == DeliveryReport(sent=3, delivered=150, retrying=0, dead=0)
    calls = receiver.received
    keys = [c.idempotency_key for c in calls]
    assert claimed[0].id in keys and claimed[1].id in keys and len(set(keys)) == 3
    by_key = {c.idempotency_key: sorted(c.notification_ids) for c in calls}
    assert by_key[claimed[0].id] == sorted(r.id for r in claimed[0].rows)
    assert by_key[claimed[1].id] == sorted(r.id for r in claimed[1].rows)
    assert sorted(receiver.notification_ids()) == ids


def test_a_receiver_that_hangs_costs_one_timeout_and_a_retry(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    ids = write(engine, [notification(1)], clock)
    write(engine, [notification(2, name="dead_letter_surge")], clock)  # a second batch to the same receiver
    receiver.hang(30)
    started = time.monotonic()
    report = run(engine, routing, settings, metrics, clock)
    elapsed = time.monotonic() - started
    # One call ran into the 0.5 s deadline; the receiver's other batch waits for the next pass, untried.
    assert elapsed < 3, f"a hanging receiver held the sender {elapsed:.1f} s"
    assert report == DeliveryReport(sent=1, delivered=0, retrying=1, dead=0)
    assert sorted((r.attempts, r.last_error) for r in rows_of(engine)) == [(0, None), (1, "ReadTimeout")]
    receiver.accept()
    clock.advance(BACKOFF_MAX_MS)
    assert run(engine, routing, settings, metrics, clock).delivered == 2
    calls = receiver.received
    assert [c.status for c in calls] == [0, 200, 200]
    # The hung call and its retry are the same delivery to the receiver: one key.
    assert len({c.idempotency_key for c in calls}) == 2
    assert sorted(receiver.notification_ids()) == sorted([*ids, notification(2, name="dead_letter_surge").id])


def test_a_receiver_missing_from_routing_keeps_its_notifications(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings, tmp_path: Path
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    ids = write(engine, [notification(1, receiver="gone")], clock)
    assert run(engine, routing, settings, metrics, clock) == DeliveryReport(sent=0, retrying=1)
    assert [(r.state, r.last_error) for r in rows_of(engine)] == [("pending", "receiver not configured")]
    # Put back in the routing file -> what it missed is delivered.
    renamed = routing_file(tmp_path, receiver.url, name="gone")
    clock.advance(BACKOFF_MAX_MS)
    assert run(engine, renamed, settings, metrics, clock).delivered == 1
    assert receiver.notification_ids() == ids


def test_notifications_are_listed_per_tenant_only(
    engine: Engine, receiver: AlertReceiver, tmp_path: Path, settings: Settings
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    acme = write(engine, [notification(1, tenant="acme"), notification(2, tenant="acme")], clock)
    globex = write(engine, [notification(1, tenant="globex")], clock)
    with engine.connect() as conn:
        assert sorted(r.id for r in outbox.list_notifications(conn, tenant="acme")) == acme
        assert [r.id for r in outbox.list_notifications(conn, tenant="globex")] == globex
        assert outbox.find_notification(conn, tenant="acme", notification_id=globex[0]) is None
        assert outbox.list_notifications(conn, tenant="acme", state="dead") == []
        with pytest.raises(NotificationNotFound):
            outbox.resend(conn, tenant="acme", notification_id=globex[0], now=clock())
    # A receiver serving only acme never gets globex's alert, and acme's travel in a batch of their own.
    only_acme = routing_file(tmp_path, receiver.url, tenants=["acme"])
    report = run(engine, only_acme, settings, metrics, clock)
    assert (report.delivered, report.retrying) == (2, 1)
    assert sorted(receiver.notification_ids()) == acme
    assert [r.last_error for r in rows_of(engine, "globex")] == ["receiver does not serve this tenant"]


def test_no_receiver_secret_in_logs_or_stored_errors(
    engine: Engine, receiver: AlertReceiver, routing: Routing, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    clock, metrics = Clock(), Metrics(strict=True)
    caplog.set_level(logging.DEBUG)  # every logger, httpx's request lines included
    write(engine, [notification(1), notification(2)], clock)
    receiver.down()
    run(engine, routing, settings, metrics, clock)
    receiver.up()
    receiver.fail()
    clock.advance(BACKOFF_MAX_MS)
    run(engine, routing, settings, metrics, clock)
    receiver.throttle(1)
    clock.advance(BACKOFF_MAX_MS)
    run(engine, routing, settings, metrics, clock)
    rows = rows_of(engine)
    assert {(r.state, r.last_error) for r in rows} == {("dead", "HTTP 429")}
    assert any(r.name == "httpx" for r in caplog.records), "httpx's request lines were not captured"
    assert sum("dead-lettered" in r.getMessage() for r in caplog.records) == 1
    for secret in (SECRET_QUERY, SECRET_PATH, SECRET_HEADER):
        assert secret not in caplog.text
    with engine.begin() as conn:
        for row in rows:
            outbox.resend(conn, tenant="acme", notification_id=row.id, now=clock())
    receiver.accept()
    assert run(engine, routing, settings, metrics, clock).delivered == 2
    # The log of the whole story names the receiver and never its secrets.
    assert receiver.received[-1].headers["authorization"] == f"Bearer {SECRET_HEADER}"
    for secret in (SECRET_QUERY, SECRET_PATH, SECRET_HEADER):
        assert secret not in caplog.text
