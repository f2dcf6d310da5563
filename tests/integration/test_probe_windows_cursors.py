"""Probe findings on query input: window bounds outside the printable years, forged cursors, control characters in
the path, empty filter values and a loosely read window_days, each answered 400 (never 500 or a wrong answer)."""

from __future__ import annotations

import base64
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faultlens.api.params import EMPTY_MEANS_ABSENT
from faultlens.model import Scope
from faultlens.services import Services
from faultlens.store.events import decode_cursor, encode_cursor
from faultlens.timeutil import LATEST_MS, Window, ms_to_rfc3339, parse_rfc3339_ms, resolve_window
from faultlens.triage import stats
from tests.helpers import ago, event
from tests.unit.test_cursors import FORGED_NUMBERS

WINDOW_ROUTES = (
    "/api/v1/overview",
    "/api/v1/overview/export",
    "/api/v1/alerts",
    "/api/v1/trends",
    "/api/v1/failures",
    "/api/v1/events",
    "/api/v1/stats/summary",
    "/api/v1/stats/errors",
    "/api/invocations",
)
PAGED_ROUTES = ("/api/v1/events", "/api/invocations")


def _refused(r: Any, name: str, *, code: str = "invalid_request", location: str = "query") -> str:
    assert r.status_code == 400, (r.request.url, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and body["error"]["code"] == code, body
    params = body["error"]["details"]["params"]
    assert [(p["name"], p["location"]) for p in params] == [(name, location)], body
    return str(body["error"]["message"])


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# -- window bounds: every bound, given or derived, is an instant after 1970 that prints as a year 1-9999 date ----


@pytest.mark.parametrize("path", WINDOW_ROUTES)
def test_window_bounds_outside_the_printable_years_are_refused_by_name(client: TestClient, path: str) -> None:
    cases = [
        ({"until": "9999-12-31T23:59:59-23:59"}, "until"),  # year 10000 in UTC: was a 500
        ({"until": "9999-12-31T23:59:59Z"}, "until"),
        ({"since": "9999-12-30T00:00:00Z", "until": "9999-12-31T00:00:00Z"}, "until"),
        ({"since": "9999-12-30T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+23:59"}, "since"),  # year 0 in UTC
        ({"since": "1969-12-31T23:59:59.999Z", "until": "1970-01-02T00:00:00Z"}, "since"),
        ({"until": "1970-01-01T01:00:00Z"}, "until"),  # the derived start (until - the default window) is before 1970
    ]
    for params, name in cases:
        message = _refused(client.get(path, params=params), name)
        assert name in message or "1970" in message, (params, message)


def test_the_latest_window_is_answered_with_printable_times(client: TestClient) -> None:
    until = ms_to_rfc3339(LATEST_MS)
    assert until == "9999-12-01T00:00:00.000Z"
    since = "9999-10-01T00:00:00Z"
    for path in WINDOW_ROUTES:
        r = client.get(path, params={"since": since, "until": until})
        assert r.status_code == 200, (path, r.text[:300])
    # A trend's last bucket runs past the window's end; it still prints.
    body = client.get("/api/v1/trends", params={"since": since, "until": until, "bucket": "7d"}).json()
    assert body["buckets"][-1]["end"].startswith("9999-12-")
    assert client.get("/api/v1/overview", params={"until": until}).json()["window"]["to"] == until


def test_bounds_less_than_a_millisecond_apart_are_one_instant() -> None:
    with pytest.raises(Exception) as info:
        resolve_window(None, "2026-11-01T00:00:00.0001Z", "2026-11-01T00:00:00.0009Z")
    assert "since must be before until" in str(info.value)
    with pytest.raises(Exception) as info:
        resolve_window(None, "2999-01-01T00:00:00Z", None)
    assert "since must be in the past" in str(info.value)


def test_rfc3339_is_read_to_the_exact_millisecond() -> None:
    # timestamp() * 1000 in floating point read this one (and about 1 in 200 others) a millisecond early.
    assert parse_rfc3339_ms("2038-01-22T01:37:14.877Z") == 2_147_737_034_877
    assert parse_rfc3339_ms("1969-12-31T23:59:59.9995Z") == -1  # floor, not toward zero
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rng = random.Random(7)
    for ms in [0, 1, LATEST_MS, *(rng.randrange(0, LATEST_MS) for _ in range(5000))]:
        text = (epoch + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
        assert parse_rfc3339_ms(text) == ms, text


def test_empty_window_parameters_are_the_parameters_left_out() -> None:
    now = 10 * 86_400_000
    assert resolve_window("", "", "", now=now) == resolve_window(None, None, None, now=now)
    assert resolve_window("", None, None, now=now, default="7d") == ("7d", now - 7 * 86_400_000, now + 1)


# -- cursors: only what the server issued, every part a BIGINT ---------------------------------------------------


@pytest.mark.parametrize("path", PAGED_ROUTES)
def test_a_forged_cursor_is_refused_as_not_issued(client: TestClient, path: str) -> None:
    for raw in FORGED_NUMBERS:
        r = client.get(path, params={"cursor": _cursor(raw) or "AAAA"})
        assert "not one this server issued" in _refused(r, "cursor"), raw
    assert "not one this server issued" in _refused(client.get(path, params={"cursor": "%%%"}), "cursor")
    # The largest values a cursor may hold still page (to nothing).
    r = client.get(path, params={"cursor": _cursor("9223372036854775807:9223372036854775807")})
    assert r.status_code == 200 and r.json()["items"] == [], r.text[:300]


def test_issued_cursors_round_trip_and_still_page(client: TestClient) -> None:
    assert decode_cursor(encode_cursor(1_764_000_000_000, 42)) == (1_764_000_000_000, 42)
    assert decode_cursor(encode_cursor(2**63 - 1, 0)) == (2**63 - 1, 0)
    r = client.post("/api/v1/events", json=[event(id=f"c{i}", occurred_at=ago(minutes=i + 1)) for i in range(3)])
    assert r.status_code < 300, r.text
    for path in PAGED_ROUTES:
        seen: list[str] = []
        cursor = None
        while True:
            body = client.get(path, params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == ["c0", "c1", "c2"], (path, seen)


# -- control characters in the path never resolve to another resource ---------------------------------------------


def test_a_control_character_in_the_path_is_refused_not_resolved(client: TestClient) -> None:
    r = client.post("/api/v1/events", json=[event(id="zz-1")])
    assert r.status_code < 300, r.text
    assert client.get("/api/v1/events/zz-1").json()["id"] == "zz-1"
    for char in ("%0A", "%0D", "%09", "%1F", "%7F", "%0D%0A"):
        r = client.get(f"/api/v1/events/zz-1{char}")
        assert "control characters" in _refused(r, "path", location="path"), char
        # Inside the path a newline matches no route (404); whatever matches one is refused.
        r = client.get(f"/api/v1/events/zz{char}-1")
        if r.status_code != 404 or char in ("%09", "%1F", "%7F"):
            assert "control characters" in _refused(r, "path", location="path"), char
    # A contract route answers with its own code.
    r = client.get("/api/v1/parallel-ops/summary%0A")
    _refused(r, "path", code="parallel_ops_invalid_request", location="path")
    # Printable non-ASCII is not a control character.
    assert client.get("/api/v1/events/zz-%C3%A9").status_code == 404


# -- empty filter values: one rule on every native route ------------------------------------------------------------


def test_an_empty_source_is_refused_on_every_route_that_filters_by_it(client: TestClient) -> None:
    client.post("/api/v1/events", json=[event(id="s1")])
    for path in WINDOW_ROUTES:
        r = client.get(path, params={"source": ""})
        assert _refused(r, "source") == "source must not be empty; leave it out for its default", path
    # The parallel-ops contract keeps its own rule: an empty filter is no filter.
    r = client.get("/api/v1/parallel-ops/summary", params={"site_id": ""})
    assert r.status_code == 200, r.text[:300]


def test_every_native_parameter_but_the_documented_few_refuses_an_empty_value(client: TestClient) -> None:
    checked = 0
    spec = client.get("/openapi.json").json()
    for template, ops in spec["paths"].items():
        if "get" not in ops or not template.startswith("/api/") or template.startswith("/api/v1/parallel-ops/"):
            continue
        path = re.sub(r"\{[^}]+\}", "abc", template)
        for name in (p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"):
            r = client.get(path, params={name: ""})
            if name in EMPTY_MEANS_ABSENT:
                assert r.status_code != 400 or name not in r.text, (path, name, r.text[:300])
            else:
                _refused(r, name)
                checked += 1
    assert checked > 30


def test_empty_absent_parameters_answer_as_if_left_out(client: TestClient) -> None:
    client.post("/api/v1/events", json=[event(id="e1", error_message="boom")])
    plain = client.get("/api/v1/events").json()
    assert [i["id"] for i in plain["items"]] == ["e1"]
    for name in ("window", "since", "until", "cursor", "q"):
        assert client.get("/api/v1/events", params={name: ""}).json() == plain, name
    assert client.get("/api/v1/overview", params={"window": ""}).json()["window"]["label"] == "7d"


def test_stats_read_an_empty_source_as_a_source_not_as_no_filter(services: Services, client: TestClient) -> None:
    client.post("/api/v1/events", json=[event(id="x1"), event(id="x2", source="other")])
    now = parse_rfc3339_ms(ago(seconds=0))
    window = Window("custom", now - 3_600_000, now + 1)
    with services.engine.connect() as conn:
        tenant = services.settings.default_tenant
        assert stats.summary(conn, tenant=tenant, window=window)["total"] == 2
        assert stats.summary(conn, tenant=tenant, window=window, source="")["total"] == 0
        errors = stats.error_distribution(conn, tenant=tenant, window=window, scope=Scope.SERVICE, source="")
        assert errors["total"] == 0


# -- window_days: digits only, as the parallel-ops contract reads it ------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/overview", "/api/v1/alerts", "/api/v1/trends", "/api/v1/failures"])
def test_window_days_is_read_strictly(client: TestClient, path: str) -> None:
    for value in ("1_4", "+7", " 7", "7 ", "7.0", "7\n", "\uff17", "7e0", "0x7", "00000000000000000007"):
        message = _refused(client.get(path, params={"window_days": value}), "window_days")
        assert "window_days must be one of" in message, (value, message)
    for value in ("1_4", "+7", " 7", "7.0"):  # the probe's examples, which the contract route refuses too
        assert client.get("/api/v1/parallel-ops/summary", params={"window_days": value}).status_code == 400
    r = client.get(path, params={"window_days": "14"})
    assert r.status_code == 200 and r.headers["Deprecation"], r.text[:300]


def test_parallel_ops_window_days_refuses_a_trailing_newline(client: TestClient) -> None:
    r = client.get("/api/v1/parallel-ops/summary", params={"window_days": "7\n"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "parallel_ops_invalid_request"


@pytest.mark.parametrize("payload", [b'[true,"k"]', b'[-5,"k"]', b'[18446744073709551615,"k"]'])
def test_task_cursors_hold_only_in_range_times(client: TestClient, payload: bytes) -> None:
    cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    r = client.get("/api/v1/tasks/failed", params={"cursor": cursor})
    assert r.status_code == 400, r.text  # the cursor is read before Redis is asked
    assert "cursor" in r.json()["error"]["message"]
