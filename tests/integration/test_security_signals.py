"""Security signals: refused keys and scopes and cross-tenant ids are counted under the right tenant, and become P0
alert candidates."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from faultlens.alerting.routing import ConditionSettings
from faultlens.alerting.security import security_candidates
from faultlens.api.app import create_app
from faultlens.api.security_signals import SignalRecorder
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.api_usage import minute_of
from faultlens.store.security_signals import add_signals, count_signals
from faultlens.timeutil import now_ms
from tests.helpers import event

HOUR_MS = 3_600_000


def _secret(services: Services, tenant: str, *scopes: str) -> tuple[str, str]:
    with services.engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return key.id, secret


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _recorder(api: TestClient) -> SignalRecorder:
    recorder: SignalRecorder = api.app.state.security_signals  # type: ignore[attr-defined]
    return recorder


def _counts(services: Services, tenant: str, *, now: int) -> dict[str, int]:
    with services.engine.connect() as conn:
        found = count_signals(conn, tenant=tenant, starts=[now - HOUR_MS], end=now + HOUR_MS)
    return {kind: n[0] for kind, n in found.items()}


def _stable(response: Any, event_id: str) -> dict[str, Any]:
    """An error answer without what differs per request (its ids) and with the id asked for masked."""
    body = {k: v for k, v in response.json().items() if k not in ("request_id", "correlation_id")}
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "x-correlation-id")}
    return {"status": response.status_code, "body": str(body).replace(event_id, "<id>"), "headers": headers}


def test_refused_keys_and_scopes_are_counted_under_their_tenants(quiet: Services, api: TestClient) -> None:
    t0 = now_ms()
    _recorder(api).clock = lambda: t0
    _, alpha_read = _secret(quiet, "alpha", "read")
    revoked_id, revoked = _secret(quiet, "beta", "read")
    with quiet.engine.begin() as conn:
        keys.revoke_key(conn, key_id=revoked_id)

    assert api.get("/api/v1/events", headers=_bearer(revoked)).status_code == 401
    assert api.get("/api/v1/events", headers=_bearer(revoked)).status_code == 401
    unknown = api.get("/api/v1/events", headers=_bearer("flk_000000000000_nobodyhasthisone"))
    assert unknown.status_code == 401
    refused = api.post("/api/v1/events", json=[event()], headers=_bearer(alpha_read))
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["required_scope"] == "ingest"
    # A missing key is no key presented: not counted.
    assert api.get("/api/v1/events").status_code == 401
    assert api.get("/api/v1/events", headers=_bearer(alpha_read)).status_code == 200

    assert _counts(quiet, "beta", now=t0) == {}, "nothing is written before a flush"
    assert _recorder(api).flush() == 4
    assert _counts(quiet, "beta", now=t0) == {"revoked_key": 2}
    assert _counts(quiet, quiet.settings.default_tenant, now=t0) == {"unknown_key": 1}
    assert _counts(quiet, "alpha", now=t0) == {"scope_refused": 1}

    # A second flush adds to the same minute's row, never replaces it.
    assert api.get("/api/v1/events", headers=_bearer(revoked)).status_code == 401
    assert _recorder(api).flush() == 1
    assert _counts(quiet, "beta", now=t0) == {"revoked_key": 3}


def test_another_tenants_event_id_is_counted_and_answered_as_missing(quiet: Services, api: TestClient) -> None:
    t0 = now_ms()
    _recorder(api).clock = lambda: t0
    _, alpha = _secret(quiet, "alpha", "read", "ingest")
    _, beta = _secret(quiet, "beta", "read", "ingest")
    assert (
        api.post("/api/v1/events", json=[event(id="beta-0001", error_message="b")], headers=_bearer(beta)).json()[
            "accepted"
        ]
        == 1
    )
    assert api.post("/api/v1/events", json=[event(id="alfa-0001")], headers=_bearer(alpha)).json()["accepted"] == 1

    theirs = api.get("/api/v1/events/beta-0001", headers=_bearer(alpha))
    nowhere = api.get("/api/v1/events/none-0001", headers=_bearer(alpha))
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.json()["error"]["code"] == "event_not_found"
    assert _stable(theirs, "beta-0001") == _stable(nowhere, "none-0001")
    # The owner still reads it, and alpha reads its own.
    assert api.get("/api/v1/events/beta-0001", headers=_bearer(beta)).json()["error_message"] == "b"
    assert api.get("/api/v1/events/alfa-0001", headers=_bearer(alpha)).status_code == 200

    _recorder(api).flush()
    assert _counts(quiet, "alpha", now=t0) == {"cross_tenant": 1}, "only the id another tenant holds counts"
    assert _counts(quiet, "beta", now=t0) == {}


def _kinds(found: list[Any]) -> dict[str, tuple[str, float | None, float | None]]:
    return {c.name: (c.labels["signal"], c.value, c.threshold) for c in found}


def test_security_candidates_from_counted_requests(quiet: Services, api: TestClient) -> None:
    t0 = now_ms()
    now = t0 + 1
    _recorder(api).clock = lambda: t0
    settings = ConditionSettings()  # security_min_events 10, security_factor 5
    _, alpha = _secret(quiet, "alpha", "read")
    _, beta = _secret(quiet, "beta", "ingest")
    revoked_id, revoked = _secret(quiet, "alpha", "read")
    with quiet.engine.begin() as conn:
        keys.revoke_key(conn, key_id=revoked_id)
    assert api.post("/api/v1/events", json=[event(id="beta-0001")], headers=_bearer(beta)).json()["accepted"] == 1

    def candidates(tenant: str = "alpha") -> dict[str, tuple[str, float | None, float | None]]:
        _recorder(api).flush()
        with quiet.engine.connect() as conn:
            return _kinds(security_candidates(conn, tenant=tenant, now=now, settings=settings))

    assert candidates() == {}
    assert api.get("/api/v1/events", headers=_bearer(revoked)).status_code == 401
    assert candidates() == {"revoked_key_used": ("revoked_key", 1.0, 1.0)}, "one revoked key use is enough"

    for _ in range(9):
        assert api.get("/api/v1/events/beta-0001", headers=_bearer(alpha)).status_code == 404
        assert api.post("/api/v1/events", json=[event()], headers=_bearer(alpha)).status_code == 403
    assert "cross_tenant_attempts" not in candidates() and "auth_failure_spike" not in candidates()
    assert api.get("/api/v1/events/beta-0001", headers=_bearer(alpha)).status_code == 404
    assert api.post("/api/v1/events", json=[event()], headers=_bearer(alpha)).status_code == 403
    found = candidates()
    assert found == {
        "revoked_key_used": ("revoked_key", 1.0, 1.0),
        "cross_tenant_attempts": ("cross_tenant", 10.0, 10.0),
        "auth_failure_spike": ("auth_failure", 10.0, 10.0),
    }
    with quiet.engine.connect() as conn:
        spike = next(
            c
            for c in security_candidates(conn, tenant="alpha", now=now, settings=settings)
            if c.name == "auth_failure_spike"
        )
    assert spike.level == "P0" and spike.labels == {
        "alertname": "auth_failure_spike",
        "level": "P0",
        "signal": "auth_failure",
    }
    assert "10 refused keys and scopes" in spike.summary and "0 unknown key, 10 scope refused" in spike.summary
    assert candidates("beta") == {}, "the other tenant's alerts are its own"

    # A tenant that always sees refusals at this rate has no spike: 24 h at 4 per 15 minutes, so the threshold
    # is 5 x 4 = 20.
    with quiet.engine.begin() as conn:
        add_signals(
            conn, {("alpha", minute_of(t0 - 16 * 60_000 - i * HOUR_MS), "scope_refused"): 16 for i in range(24)}
        )
    found = candidates()
    assert "auth_failure_spike" not in found and set(found) == {"revoked_key_used", "cross_tenant_attempts"}

    # Past 15 minutes everything resolves: the signals are outside the window.
    with quiet.engine.connect() as conn:
        later = security_candidates(conn, tenant="alpha", now=now + 16 * 60_000, settings=settings)
    assert later == []


def test_counts_are_written_at_shutdown(quiet: Services) -> None:
    t0 = now_ms()
    with TestClient(create_app(quiet)) as client:
        _recorder(client).clock = lambda: t0
        assert client.get("/api/v1/events", headers=_bearer("flk_000000000000_unknown")).status_code == 401
        assert _counts(quiet, quiet.settings.default_tenant, now=t0) == {}
    assert _counts(quiet, quiet.settings.default_tenant, now=t0) == {"unknown_key": 1}


def test_count_signals_windows_and_kinds(quiet: Services) -> None:
    t0 = minute_of(now_ms())
    with quiet.engine.begin() as conn:
        add_signals(conn, {("alpha", t0, "cross_tenant"): 2, ("alpha", t0 - 30 * 60_000, "cross_tenant"): 3})
        add_signals(conn, {("alpha", t0, "cross_tenant"): 1, ("beta", t0, "unknown_key"): 7})
    with quiet.engine.connect() as conn:
        found = count_signals(conn, tenant="alpha", starts=[t0 - 60_000, t0 - HOUR_MS, t0 + 60_000], end=t0 + 60_000)
    assert found == {"cross_tenant": [3, 6, 0]}
    recorder = SignalRecorder(quiet.engine, interval_s=0)
    with pytest.raises(ValueError, match="guessed_kind"):
        recorder.record("alpha", "guessed_kind")
