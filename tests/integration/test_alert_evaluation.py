"""Alert evaluation on real databases: pending -> firing after `for`, one notification per change in the outbox,
resolved when the condition clears, silences, acknowledgements, identities, history and the API over them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from faultlens.alert_model import alert_id
from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store.tables import alert_notifications
from tests.conftest import make_services
from tests.helpers import ago, event

MINUTE = 60_000
RECEIVER = "http://127.0.0.1:9/hook"  # never called here: these tests look at the outbox, delivery is tested apart


@pytest.fixture
def svc(db_url: str) -> Iterator[Services]:
    s = make_services(db_url, start_jobs=False, obs_alert_webhook=RECEIVER)
    yield s
    s.engine.dispose()


@pytest.fixture
def http(svc: Services) -> Iterator[TestClient]:
    with TestClient(create_app(svc)) as c:
        yield c


def retry_loop(
    tenant_events: int = 1, *, source: str = "billing-worker", release: str | None = "v42"
) -> list[dict[str, Any]]:
    """Retries past their max_attempts with one reason: the silent retry loop of document 001 (P1)."""
    return [
        event(
            id=f"{source}-retry-{i}",
            source=source,
            item_type="task",
            status="retry",
            operation="charge-card",
            attempt=5 + i,
            max_attempts=3,
            error_message="card processor answered 503 for order 77",
            occurred_at=ago(minutes=2),
            release=release,
        )
        for i in range(tenant_events)
    ]


def outbox_count(svc: Services, **where: str) -> int:
    q = select(func.count()).select_from(alert_notifications)
    for name, value in where.items():
        q = q.where(alert_notifications.c[name] == value)
    with svc.engine.connect() as conn:
        return int(conn.execute(q).scalar() or 0)


def evaluate(svc: Services, now: int) -> dict[str, Any]:
    assert svc.alerting is not None
    return svc.alerting.evaluate_once(now=now).as_dict()


def test_a_retry_loop_goes_pending_then_firing_once_then_resolves(svc: Services, http: TestClient) -> None:
    svc.pipeline.ingest(retry_loop(2), tenant="default")
    now = int(time.time() * 1000)
    first = evaluate(svc, now)
    assert first["fired"] == [] and first["notifications"] == 0  # P1 waits its `for` (1 minute by default)
    alerts = http.get("/api/v1/alerting/alerts").json()
    [pending] = [a for a in alerts["alerts"] if a["name"] == "silent_retry_loop"]
    assert pending["state"] == "pending" and pending["level"] == "P1"
    assert pending["labels"] == {
        "alertname": "silent_retry_loop",
        "level": "P1",
        "source": "billing-worker",
        "operation": "charge-card",
        "fingerprint": pending["labels"]["fingerprint"],
    }
    assert pending["id"] == alert_id("default", pending["labels"])

    second = evaluate(svc, now + MINUTE)
    assert pending["id"] in second["fired"]
    assert outbox_count(svc, alert_id=pending["id"], kind="firing") == 1
    # Firing again next pass: no second notification before the repeat interval.
    evaluate(svc, now + MINUTE + 30_000)
    assert outbox_count(svc, alert_id=pending["id"], kind="firing") == 1

    detail = http.get(f"/api/v1/alerting/alerts/{pending['id']}").json()
    assert detail["state"] == "firing" and detail["episode"] == 1
    assert detail["owner"] == "unassigned"
    assert detail["runbook_url"].endswith("#silent_retry_loop")
    assert detail["last_change"]["release"] == "v42"
    assert detail["last_change"]["rule_version"]
    assert "past their max_attempts" in detail["summary"]
    assert [h["event"] for h in detail["history"]][::-1] == ["pending", "firing"]
    [sent] = detail["notifications"]
    assert sent["kind"] == "firing" and sent["state"] == "pending" and sent["receiver"] == "default"

    # The retries leave the 15-minute window: the alert resolves and whoever was told it fired is told it resolved.
    third = evaluate(svc, now + 20 * MINUTE)
    assert pending["id"] in third["resolved"]
    assert outbox_count(svc, alert_id=pending["id"], kind="resolved") == 1
    resolved = http.get(f"/api/v1/alerting/alerts/{pending['id']}").json()
    assert resolved["state"] == "resolved" and resolved["ends_at"] is not None
    assert all(a["id"] != pending["id"] for a in http.get("/api/v1/alerting/alerts").json()["alerts"])
    everything = http.get("/api/v1/alerting/alerts", params={"state": "all"}).json()["alerts"]
    assert any(a["id"] == pending["id"] and a["state"] == "resolved" for a in everything)


def test_a_condition_that_clears_before_its_for_tells_nobody(svc: Services) -> None:
    svc.pipeline.ingest(retry_loop(1), tenant="default")
    now = int(time.time() * 1000)
    evaluate(svc, now)
    report = evaluate(svc, now + 20 * MINUTE)  # gone before its minute was over
    assert report["fired"] == [] and report["resolved"] == []
    assert outbox_count(svc) == 0


def test_a_silence_mutes_the_firing_and_its_end_lets_it_through(svc: Services, http: TestClient) -> None:
    svc.pipeline.ingest(retry_loop(1), tenant="default")
    r = http.post(
        "/api/v1/alerting/silences",
        json={"matchers": ["alertname=silent_retry_loop", "source=~billing-.*"], "duration": "1h", "comment": "deploy"},
    )
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["status"]["state"] == "active"
    assert silence["matchers"][1] == {"name": "source", "value": "billing-.*", "isRegex": True, "isEqual": True}
    now = int(time.time() * 1000)
    evaluate(svc, now)
    evaluate(svc, now + MINUTE)
    [alert] = http.get("/api/v1/alerting/alerts", params={"state": "firing"}).json()["alerts"]
    assert alert["silenced_by"] == silence["id"]
    assert outbox_count(svc) == 0

    expired = http.delete(f"/api/v1/alerting/silences/{silence['id']}")
    assert expired.status_code == 200 and expired.json()["status"]["state"] == "expired"
    evaluate(svc, now + MINUTE + 1000)
    assert outbox_count(svc, kind="firing") == 1
    events = [h["event"] for h in http.get(f"/api/v1/alerting/alerts/{alert['id']}").json()["history"]]
    assert events[:2] == ["unsilenced", "silenced"]


def test_an_acknowledgement_survives_evaluations_and_a_new_firing_starts_unacknowledged(
    svc: Services, http: TestClient
) -> None:
    svc.pipeline.ingest(retry_loop(1), tenant="default")
    now = int(time.time() * 1000)
    evaluate(svc, now)
    evaluate(svc, now + MINUTE)
    [alert] = http.get("/api/v1/alerting/alerts").json()["alerts"]
    acked = http.post(f"/api/v1/alerting/alerts/{alert['id']}/ack", json={"comment": "on it"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged"]["comment"] == "on it"
    assert acked.json()["acknowledged"]["by"] == "anonymous"
    evaluate(svc, now + 2 * MINUTE)
    assert http.get(f"/api/v1/alerting/alerts/{alert['id']}").json()["acknowledged"]["comment"] == "on it"
    evaluate(svc, now + 20 * MINUTE)  # resolved
    # The loop comes back 19 minutes later (the evaluations run on a clock 20 minutes ahead).
    again_events = [{**e, "id": e["id"] + "-again", "occurred_at": ago(minutes=-19)} for e in retry_loop(1)]
    assert svc.pipeline.ingest(again_events, tenant="default").accepted == 1
    evaluate(svc, now + 21 * MINUTE)
    evaluate(svc, now + 22 * MINUTE)
    again = http.get(f"/api/v1/alerting/alerts/{alert['id']}").json()
    assert again["state"] == "firing" and again["episode"] == 2
    assert again["acknowledged"] is None
    assert outbox_count(svc, alert_id=alert["id"], kind="firing") == 2


def test_tenants_see_only_their_alerts(svc: Services, http: TestClient) -> None:
    from faultlens.store import keys

    with svc.engine.begin() as conn:
        _k, acme = keys.create_key(conn, tenant="acme", scopes=["read", "admin"])
        _k, globex = keys.create_key(conn, tenant="globex", scopes=["read", "admin"])
    svc.pipeline.ingest(retry_loop(1, source="acme-worker"), tenant="acme")
    now = int(time.time() * 1000)
    evaluate(svc, now)
    evaluate(svc, now + MINUTE)
    a = http.get("/api/v1/alerting/alerts", headers={"Authorization": f"Bearer {acme}"}).json()["alerts"]
    g = http.get("/api/v1/alerting/alerts", headers={"Authorization": f"Bearer {globex}"}).json()["alerts"]
    assert [x["labels"]["source"] for x in a] == ["acme-worker"] and g == []
    other = http.get(f"/api/v1/alerting/alerts/{a[0]['id']}", headers={"Authorization": f"Bearer {globex}"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "alert_not_found"
    ack = http.post(f"/api/v1/alerting/alerts/{a[0]['id']}/ack", headers={"Authorization": f"Bearer {globex}"})
    assert ack.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": [], "duration": "1h", "comment": "x"}, "matchers"),
        ({"matchers": ["alertname=x"], "duration": "1h", "comment": ""}, "comment"),
        ({"matchers": ["alertname=x"], "comment": "no end"}, "ends_at"),
        ({"matchers": ["alertname=x"], "duration": "forever", "comment": "x"}, "duration"),
        ({"matchers": ["alertname=~(unclosed"], "duration": "1h", "comment": "x"}, "matchers"),
        ({"matchers": ["no operator"], "duration": "1h", "comment": "x"}, "matchers"),
        ({"matchers": ["alertname=x"], "ends_at": "2020-01-01T00:00:00Z", "comment": "x"}, "ends_at"),
        ({"matchers": ["alertname=x"], "ends_at": "tomorrow", "comment": "x"}, "ends_at"),
        ({"matchers": ["alertname=x"], "duration": "1h", "comment": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_silences_get_the_one_error_body(http: TestClient, body: dict[str, Any], field: str) -> None:
    r = http.post("/api/v1/alerting/silences", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] in ("invalid_request",), err
    assert field in r.text
    assert http.get("/api/v1/alerting/silences").json()["items"] == []


def test_unknown_ids_and_bad_filters(http: TestClient) -> None:
    assert http.get("/api/v1/alerting/alerts/nope").json()["error"]["code"] == "alert_not_found"
    assert http.delete("/api/v1/alerting/silences/nope").json()["error"]["code"] == "silence_not_found"
    r = http.post("/api/v1/alerting/notifications/nope/resend")
    assert r.status_code == 404 and r.json()["error"]["code"] == "notification_not_found"
    assert http.get("/api/v1/alerting/alerts", params={"state": "sleeping"}).status_code == 400
    assert http.get("/api/v1/alerting/alerts", params={"level": "P9"}).status_code == 400


def _fire(svc: Services, now: int) -> str:
    svc.pipeline.ingest(retry_loop(1), tenant="default")
    evaluate(svc, now)
    report = evaluate(svc, now + MINUTE)
    [fired] = report["fired"]
    return str(fired)


def test_a_dead_lettered_notification_raises_a_p1_alert_until_it_is_re_sent(svc: Services, http: TestClient) -> None:
    from sqlalchemy import update

    now = int(time.time() * 1000)
    _fire(svc, now)
    with svc.engine.begin() as conn:
        conn.execute(update(alert_notifications).values(state="dead", attempts=10, last_error="HTTP 500"))
    evaluate(svc, now + 2 * MINUTE)
    report = evaluate(svc, now + 3 * MINUTE)
    [dead_alert] = [
        a for a in http.get("/api/v1/alerting/alerts").json()["alerts"] if a["name"] == "alert_delivery_dead_letter"
    ]
    assert dead_alert["level"] == "P1" and dead_alert["state"] == "firing"
    assert dead_alert["labels"]["receiver"] == "default"
    assert dead_alert["id"] in report["fired"]
    # Its own notification to the (dead) receiver never counts toward it: no alert about itself.
    [dead] = http.get("/api/v1/alerting/notifications", params={"state": "dead"}).json()["items"]
    r = http.post(f"/api/v1/alerting/notifications/{dead['id']}/resend")
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["attempts"] == 0
    again = http.post(f"/api/v1/alerting/notifications/{dead['id']}/resend")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    report = evaluate(svc, now + 4 * MINUTE)
    assert dead_alert["id"] in report["resolved"]


def test_alert_states_on_metrics_and_pruning(svc: Services, http: TestClient) -> None:
    now = int(time.time() * 1000)
    _fire(svc, now)
    text = http.get("/metrics").text
    assert 'faultlens_alerts_active{alert_level="P1",alert_state="firing"} 1.0' in text
    assert 'faultlens_alerts_active{alert_level="P0",alert_state="firing"} 0.0' in text
    assert svc.alerting is not None
    with svc.engine.begin() as conn:
        from sqlalchemy import update

        conn.execute(update(alert_notifications).values(state="delivered", delivered_at=now))
    assert svc.alerting.prune(now=now + 6 * 86_400_000) == (0, 0)
    assert svc.alerting.prune(now=now + 8 * 86_400_000) == (1, 0)  # a delivered notification past a week
    assert svc.alerting.prune(now=now + 91 * 86_400_000)[1] == 2  # history (pending, firing) past 90 days


def test_recurring_failures_route_by_environment_and_class(db_url: str, tmp_path: Any) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        "version: 1\n"
        "receivers:\n  - {name: pager, type: webhook, url: 'http://127.0.0.1:9/pager'}\n"
        "  - {name: team, type: alertmanager_webhook, url: 'http://127.0.0.1:9/team'}\n"
        "routes:\n"
        "  - matchers: ['environment=prod', 'failure_class=service_failure']\n"
        "    owner: payments-oncall\n    runbook_url: 'https://wiki.example/{alertname}'\n    receivers: [pager]\n"
        "  - matchers: ['level=~P[12]']\n    receivers: [team]\n"
    )
    s = make_services(db_url, start_jobs=False, alert_routing_file=routing)
    try:
        for env in ("prod", "staging"):
            s.pipeline.ingest(
                [
                    event(
                        id=f"{env}-{i}",
                        source="checkout",
                        environment=env,
                        http_status=502,
                        error_message="upstream connect error or disconnect/reset before headers",
                        occurred_at=ago(minutes=1),
                    )
                    for i in range(20)
                ],
                tenant="default",
            )
        now = int(time.time() * 1000)
        evaluate(s, now)
        report = evaluate(s, now + 5 * MINUTE)  # P2 waits five minutes
        with TestClient(create_app(s)) as c:
            found = c.get("/api/v1/alerting/alerts", params={"state": "firing"}).json()["alerts"]
        recurring = {a["labels"]["environment"]: a for a in found if a["name"] == "failure_kind_recurring"}
        assert set(recurring) == {"prod", "staging"}, [a["labels"] for a in found]
        prod, staging = recurring["prod"], recurring["staging"]
        assert prod["labels"]["failure_class"] == "service_failure" and prod["level"] == "P2"
        assert prod["owner"] == "payments-oncall"
        assert prod["runbook_url"] == "https://wiki.example/failure_kind_recurring"
        assert staging["owner"] == "unassigned"
        assert prod["id"] in report["fired"] and staging["id"] in report["fired"]
        assert outbox_count(s, alert_id=prod["id"], receiver="pager") == 1
        assert outbox_count(s, alert_id=prod["id"], receiver="team") == 0  # the first route decides
        assert outbox_count(s, alert_id=staging["id"], receiver="team") == 1
    finally:
        s.engine.dispose()
