"""Overview, trends, alerts, failures and exports over HTTP on SQLite and PostgreSQL; rollups against raw scans."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store import events as event_store
from faultlens.store import rollup_reads
from faultlens.store.rollup_shapes import DAY_MS, HOUR_MS
from faultlens.timeutil import now_ms, parse_rfc3339_ms
from faultlens.triage import raw, slo
from tests.conftest import make_services
from tests.helpers import ago, event

ACTIONABLE = "failed_contact_upstream"  # service failure, actionable, category dependency_error


def _load(client: TestClient, events: list[dict[str, Any]]) -> None:
    r = client.post("/api/v1/events", json=events)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _error(r: Any, code: str = "invalid_request") -> dict[str, Any]:
    assert r.status_code == 400, (r.request.url, r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and body["error"]["code"] == code, body
    return dict(body["error"])


def test_overview_partitions_per_source(client: TestClient) -> None:
    doc_sync = [event(source="doc_sync", status="success", attempt=1) for _ in range(6)]
    doc_sync += [event(source="doc_sync", error_message=ACTIONABLE, error_code="E1", attempt=2) for _ in range(2)]
    doc_sync += [
        event(source="doc_sync", status="dead_letter", error_message=ACTIONABLE, error_code="E1", attempt=5),
        event(source="doc_sync", status="retry", error_message="downstream_closed", attempt=3),
    ]
    billing = [event(source="billing", status="success") for _ in range(3)]
    billing.append(event(source="billing", error_message="Invalid API key", http_status=401, error_code="auth"))
    old = event(source="doc_sync", status="success", occurred_at=ago(days=10))
    _load(client, [*doc_sync, *billing, old])

    body = client.get("/api/v1/overview").json()
    assert [s["source"] for s in body["sources"]] == ["doc_sync", "billing"]
    ds = body["sources"][0]
    assert ds["total"] == 10
    assert ds["status_counts"] == {"success": 6, "failure": 2, "retry": 1, "dead_letter": 1, "cancelled": 0}
    assert (ds["success_rate"], ds["failure_rate"], ds["actionable_failure_rate"]) == (0.6, 0.4, 0.3)
    assert (ds["dead_letter_rate"], ds["retry_count"], ds["avg_attempts"]) == (0.1, 1, (6 + 4 + 5 + 3) / 10)
    assert ds["top_failure_kinds"] == [
        {"failure_kind": ACTIONABLE, "count": 3},
        {"failure_kind": "downstream_closed", "count": 1},
    ]
    assert ds["top_error_codes"] == [{"error_code": "E1", "count": 3}]
    assert body["totals"]["total"] == 14 and body["totals"]["failure_count"] == 5
    start, end = parse_rfc3339_ms(body["window"]["from"]), parse_rfc3339_ms(body["window"]["to"])
    assert body["window"]["days"] == 7 and end - start == 7 * DAY_MS + 1 and abs(end - now_ms()) < 60_000
    assert body["slo_hints"] == []  # fewer events than any objective's minimum volume

    wide = client.get("/api/v1/overview", params={"window_days": 14}).json()
    assert wide["sources"][0]["total"] == 11 and wide["window"]["days"] == 14
    only = client.get("/api/v1/overview", params={"source": "billing"}).json()
    assert [s["source"] for s in only["sources"]] == ["billing"] and only["totals"]["total"] == 4
    assert only["sources"][0]["top_error_codes"] == [{"error_code": "auth", "count": 1}]
    missing = client.get("/api/v1/overview", params={"source": "nobody"}).json()
    assert missing["sources"][0]["total"] == 0 and missing["sources"][0]["success_rate"] == 0

    for bad in ("5", "0", "abc", "7.5"):
        err = _error(client.get("/api/v1/overview", params={"window_days": bad}))
        assert "window_days" in err["message"] and err["details"]["params"][0]["name"] == "window_days"


LONG = "x" * 200  # longer than attribute rows keep: filters on it scan raw events
ATTRIBUTE_MIXES: list[dict[str, Any] | None] = [
    {"site_id": "s1", "target_object": "page"},
    {"site_id": "s2", "target_object": 12},
    {"site_id": 7},
    {"site_id": True, "template_key": "t"},
    {"site_id": 7.0},
    {"site_id": LONG, "target_object": "12"},
    {"other": "s1"},
    None,
    {"site_id": "s1", "template_key": 10**18},
    {"site_id": "s1", "template_key": 10**17},
]
ATTRIBUTE_FILTERS = [
    {"site_id": "s1"},
    {"site_id": "7"},
    {"site_id": "1"},
    {"site_id": LONG},
    {"target_object": "12"},
    {"site_id": "s1", "target_object": "page"},
    {"template_key": str(10**18)},
    {"template_key": str(10**17)},
]


def _matches(attributes: dict[str, Any] | None, attrs: dict[str, str]) -> bool:
    def text(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
            return str(value)
        return None

    return all(text((attributes or {}).get(k)) == v for k, v in attrs.items())


def test_rollup_answers_equal_a_full_scan_of_raw_events(services: Services) -> None:
    rng = random.Random(4)
    now = now_ms()
    messages = [
        (ACTIONABLE, "failure"),
        ("downstream_closed", "failure"),
        ("Invalid API key", "failure"),
        (None, "success"),
        (ACTIONABLE, "dead_letter"),
        ("downstream_closed", "retry"),
    ]
    raw_events = []
    for i in range(2000):
        message, status = rng.choice(messages)
        at = now - rng.randrange(0, 30 * DAY_MS)
        raw_events.append(
            event(
                id=f"r{i}",
                source=rng.choice(["a", "b", "doc_sync"]),
                status=status,
                error_message=message,
                occurred_at=datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(timespec="milliseconds"),
                attempt=rng.choice([None, 1, 2, 7]),
                attributes=rng.choice(ATTRIBUTE_MIXES),
                operation=rng.choice(["GET /x", "POST /y", None]),
                error_code=rng.choice([None, "E1", "E2"]),
            )
        )
    result = services.pipeline.ingest(raw_events, tenant="default")
    assert result.accepted == 2000
    day = now // DAY_MS * DAY_MS
    windows = [
        (now - 7 * DAY_MS, now + 1),  # the overview's window
        (now - 29 * DAY_MS, now + 1),  # whole weeks inside
        (now - 11 * DAY_MS + 17 * 60_000 + 3, now - 5 * HOUR_MS - 3 * 60_000 - 7),  # unaligned both ends
        (day - 5 * DAY_MS, day - DAY_MS),  # whole days
        (day - 3 * DAY_MS + 2 * HOUR_MS, day - DAY_MS + 5 * HOUR_MS),  # whole hours
        (now - 40 * 60_000, now - 10 * 60_000),  # inside one or two hours: raw only
    ]
    # One question per rollup shape: the widest, the per-source one, the narrow health one.
    questions = [
        ("operation", "status", "failure_class", "failure_kind", "is_actionable"),
        ("source", "failure_kind", "error_code", "category"),
        ("source", "status", "failure_class", "is_actionable"),
    ]
    with services.engine.connect() as conn:
        for start, end in windows:
            for by in questions:
                answered = {k: v for k, v in raw.aggregate(conn, tenant="default", start=start, end=end, by=by).items()}
                scanned = raw.aggregate_raw(conn, tenant="default", start=start, end=end, by=by)
                assert answered == scanned, (start, end, by)
                assert sum(n for n, _a in answered.values()) > 0
                reference = {
                    tuple(bool(r[k]) if k == "is_actionable" else r[k] or "" for k in by): r["count"]
                    for r in event_store.count_raw(
                        conn, tenant="default", flt=event_store.EventFilter(start_ms=start, end_ms=end), by=by
                    )
                }
                assert {k: n for k, (n, _a) in answered.items()} == reference, (start, end, by)
            # Attribute filters (attribute rows for one rolled-up attribute, raw scans otherwise), checked
            # against the events as sent under the documented rule: strings, and integers by their text.
            for attrs in ATTRIBUTE_FILTERS:
                expected = Counter(
                    (e["source"], e["status"])
                    for e in raw_events
                    if start <= parse_rfc3339_ms(e["occurred_at"]) < end and _matches(e["attributes"], attrs)
                )
                filtered = raw.aggregate(
                    conn, tenant="default", start=start, end=end, by=("source", "status"), attrs=attrs
                )
                assert {k: n for k, (n, _a) in filtered.items()} == dict(expected), (start, end, attrs)
                scanned = raw.aggregate_raw(
                    conn, tenant="default", start=start, end=end, by=("source", "status"), attrs=attrs
                )
                assert filtered == scanned, (start, end, attrs)
            for bucket_ms in (HOUR_MS, DAY_MS, 7 * DAY_MS):
                bucketed = raw.aggregate(
                    conn, tenant="default", start=start, end=end, by=("status",), bucket_ms=bucket_ms
                )
                by_scan = raw.aggregate_raw(
                    conn, tenant="default", start=start, end=end, by=("status",), bucket_ms=bucket_ms
                )
                assert bucketed == by_scan, (start, end, bucket_ms)
        # Nested windows ending on a whole hour: hourly rollups and raw events agree, window by window.
        hour_end = now // HOUR_MS * HOUR_MS + HOUR_MS
        starts = [hour_end - h * HOUR_MS for h in (1, 5, 30, 200)]
        by = ("source", "status", "failure_class", "is_actionable")
        from_rollups = raw.count_since(conn, tenant="default", starts=starts, end=hour_end, by=by)
        from_events = rollup_reads.count_since(conn, tenant="default", starts=starts, end=hour_end, by=by, raw=True)
        assert from_rollups == from_events and len(from_rollups) > 3
        for i, start in enumerate(starts):
            plain = raw.aggregate_raw(conn, tenant="default", start=start, end=hour_end, by=by)
            assert {k: v[i] for k, v in from_rollups.items() if v[i]} == {k: n for k, (n, _a) in plain.items()}
        # Unaligned windows: minute rollups with raw edges (or raw events where minutes are missing), still exact.
        unaligned = [now + 1 - m * 60_000 - 7 for m in (5, 15, 30, 60, 200)]
        from_minutes = rollup_reads.count_since(conn, tenant="default", starts=unaligned, end=now + 1, by=by)
        assert from_minutes == rollup_reads.count_since(
            conn, tenant="default", starts=unaligned, end=now + 1, by=by, raw=True
        )


def test_trends_buckets_are_aligned_and_complete(client: TestClient) -> None:
    two_hours = ago(hours=2)
    _load(
        client,
        [
            *[event(error_message=ACTIONABLE, occurred_at=two_hours, attributes={"site_id": "s1"}) for _ in range(3)],
            *[event(status="success", occurred_at=two_hours) for _ in range(2)],
            event(error_message="downstream_closed", source="edge", attributes={"site_id": "s1"}),
        ],
    )
    body = client.get("/api/v1/trends", params={"window": "24h", "bucket": "1h"}).json()
    buckets = body["buckets"]
    assert body["bucket"] == "1h" and len(buckets) == 25
    starts = [parse_rfc3339_ms(b["start"]) for b in buckets]
    assert all(s % HOUR_MS == 0 for s in starts) and starts == sorted(starts)
    assert all(parse_rfc3339_ms(b["end"]) - parse_rfc3339_ms(b["start"]) == HOUR_MS for b in buckets)
    by_start = dict(zip(starts, buckets, strict=True))
    hot = by_start[parse_rfc3339_ms(two_hours) // HOUR_MS * HOUR_MS]
    assert (hot["total"], hot["failures"], hot["service_failures"], hot["actionable_failures"]) == (5, 3, 3, 3)
    assert (hot["failure_rate"], hot["actionable_failure_rate"]) == (0.6, 0.6)
    assert sum(b["client_aborts"] for b in buckets) == 1
    empty = [b for b in buckets if b["total"] == 0]
    assert len(empty) >= 22 and all(b["failures"] == 0 and b["failure_rate"] == 0 for b in empty)
    assert body["totals"]["total"] == 6 and body["totals"]["client_aborts"] == 1

    days = client.get("/api/v1/trends", params={"window": "7d", "bucket": "1d"}).json()
    assert len(days["buckets"]) == 8 and all(parse_rfc3339_ms(b["start"]) % DAY_MS == 0 for b in days["buckets"])
    assert days["totals"]["total"] == 6
    site = client.get("/api/v1/trends", params={"window": "24h", "bucket": "6h", "site_id": "s1"}).json()
    assert (site["totals"]["total"], site["totals"]["failures"]) == (4, 4) and site["filters"]["site_id"] == "s1"
    edge = client.get("/api/v1/trends", params={"window": "24h", "source": "edge"}).json()
    assert edge["totals"]["total"] == 1

    too_long = _error(client.get("/api/v1/trends", params={"window": "24h", "bucket": "7d"}))
    assert too_long["details"]["params"][0]["name"] == "bucket"
    _error(client.get("/api/v1/trends", params={"bucket": "2h"}))
    _error(client.get("/api/v1/trends", params={"window_days": 3}))
    _error(client.get("/api/v1/trends", params={"window": "3d"}))


def test_alerts_from_burn_rates_with_level_filter(client: TestClient) -> None:
    burning = [event(source="api", error_message=ACTIONABLE, occurred_at=ago(minutes=2)) for _ in range(30)]
    burning += [event(source="api", status="success", occurred_at=ago(minutes=3)) for _ in range(10)]
    quiet = [event(source="quiet", error_message=ACTIONABLE, occurred_at=ago(minutes=1))]
    _load(client, burning + quiet)

    body = client.get("/api/v1/alerts").json()
    assert body["status"] == "critical"
    codes = {(h["source"], h["code"]): h for h in body["hints"]}
    burn = codes[("api", "actionable_failure_rate_high")]
    assert (burn["level"], burn["threshold"], burn["window"]) == ("critical", 14.4, "1h/5m")
    assert burn["observed"] == pytest.approx(75.0) and "api" in burn["message"]
    assert not any(source == "quiet" for source, _code in codes), "one event must not page"
    assert body["by_code"]["actionable_failure_rate_high"] == 1 and body["total"] == len(body["hints"])

    critical = client.get("/api/v1/alerts", params={"level": "critical"}).json()
    assert critical["status"] == "critical" and critical["level"] == "critical"
    assert critical["hints"] and {h["level"] for h in critical["hints"]} == {"critical"}
    assert critical["total"] == sum(critical["by_code"].values()) <= body["total"]
    overview = client.get("/api/v1/overview").json()
    assert {(h["source"], h["code"]) for h in overview["slo_hints"]} == set(codes)
    _error(client.get("/api/v1/alerts", params={"level": "page"}))
    _error(client.get("/api/v1/alerts", params={"window_days": 2}))


def test_failures_pages_newest_first_with_filters(client: TestClient) -> None:
    failures = [
        event(
            id=f"f{i}",
            error_message=ACTIONABLE if i % 2 else "downstream_closed",
            occurred_at=ago(minutes=10 + i),
            attributes={"site_id": "s1" if i < 3 else "s2"},
        )
        for i in range(7)
    ]
    _load(client, [*failures, event(status="success"), event(status="success", id="ok2")])

    first = client.get("/api/v1/failures", params={"page_size": 3}).json()
    assert [i["id"] for i in first["items"]] == ["f0", "f1", "f2"]
    assert first["pagination"] == {"page": 1, "page_size": 3, "pages": 3, "total": 7}
    last = client.get("/api/v1/failures", params={"page_size": 3, "page": 3}).json()
    assert [i["id"] for i in last["items"]] == ["f6"]
    beyond = client.get("/api/v1/failures", params={"page_size": 3, "page": 9}).json()
    assert beyond["items"] == [] and beyond["pagination"]["total"] == 7
    item = first["items"][0]
    assert item["failure_kind"] == "downstream_closed" and item["attributes"] == {"site_id": "s1"}
    assert "tenant" not in item and item["occurred_at"].endswith("Z")

    aborts = client.get("/api/v1/failures", params={"failure_class": "client_abort"}).json()
    assert [i["id"] for i in aborts["items"]] == ["f0", "f2", "f4", "f6"]
    kind = client.get("/api/v1/failures", params={"failure_kind": ACTIONABLE, "site_id": "s2"}).json()
    assert [i["id"] for i in kind["items"]] == ["f3", "f5"] and kind["pagination"]["total"] == 2
    category = client.get("/api/v1/failures", params={"category": "dependency_error"}).json()
    assert category["pagination"]["total"] == 3
    assert client.get("/api/v1/failures", params={"source": "nobody"}).json()["pagination"] == {
        "page": 1,
        "page_size": 50,
        "pages": 0,
        "total": 0,
    }
    for params in (
        {"page": 0},
        {"page_size": 0},
        {"page_size": 501},
        {"page": "x"},
        {"window_days": 2},
        {"failure_class": "none"},
    ):
        _error(client.get("/api/v1/failures", params=params))


FORMULAS = ['=HYPERLINK("http://x")', "+41", "-1+1", "@SUM(A1)", "\tTAB", "\rCR", "\n=1+1"]


def test_exports_carry_media_type_filename_and_neutralised_cells(client: TestClient) -> None:
    _load(
        client,
        [
            *[event(source=name, error_code=name) for name in FORMULAS],
            event(source="a|b", status="success"),
            event(source="plain", status="success"),
        ],
    )
    media = {"json": "application/json", "csv": "text/csv", "md": "text/markdown"}
    for fmt, media_type in media.items():
        before = datetime.now(UTC).strftime("%Y%m%d")
        r = client.get("/api/v1/overview/export", params={"format": fmt, "window_days": 14})
        after = datetime.now(UTC).strftime("%Y%m%d")
        assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == media_type
        found = re.fullmatch(
            rf'attachment; filename="faultlens-overview-14d-(\d{{8}})\.{fmt}"', r.headers["content-disposition"]
        )
        assert found is not None and found.group(1) in (before, after), r.headers["content-disposition"]

    rows = list(csv.reader(io.StringIO(client.get("/api/v1/overview/export", params={"format": "csv"}).text)))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["source", "total", "success"] and len(body) == len(FORMULAS) + 2
    cells = {row[0]: row for row in body}
    for name in FORMULAS:
        assert "'" + name in cells, (name, list(cells))
        row = cells["'" + name]
        assert row[header.index("top_error_codes")] == f"'{name}: 1"
    assert "plain" in cells and "a|b" in cells
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r", "\n")) for row in body for c in row)

    md = client.get("/api/v1/overview/export", params={"format": "md"}).text
    assert md.startswith("# faultlens overview: last 7 days") and "| a\\|b | 1 |" in md
    assert "## SLO hints" in md
    doc = client.get("/api/v1/overview/export", params={"format": "json"}).json()
    assert {s["source"] for s in doc["sources"]} == {*FORMULAS, "a|b", "plain"}
    _error(client.get("/api/v1/overview/export", params={"format": "xlsx"}))


HOSTILE_MARKDOWN = [
    "![i](http://x/p.png)",
    "[click](https://evil.example/login)",
    "<img src=x onerror=alert(1)>",
    "see http://evil.example/a",
    "www.evil.example",
    "mail a@evil.example",
    "**bold** _em_ ~~gone~~",
    "`code` | cell",
    "two\nlines\r\n| x | y |",
    "[ref]: http://evil.example",
    "\\[escaped](http://evil.example)",
]


def test_markdown_export_keeps_user_data_inert(client: TestClient) -> None:
    """Links, images, HTML, emphasis and autolinks in sources and error codes render as the plain text they are."""
    _load(client, [event(source=text, error_code=text, error_message=ACTIONABLE) for text in HOSTILE_MARKDOWN])
    md = client.get("/api/v1/overview/export", params={"format": "md", "window": "24h"}).text
    assert md.startswith("# faultlens overview: last 24 hours")
    table = md.split("\n\n")[1].splitlines()
    assert len(table) == 2 + len(HOSTILE_MARKDOWN), table  # header, rule, one line per source
    for link in ("http://", "https://", "www.", "](", "<img", "a@evil"):
        assert link not in md, link
    html = MarkdownIt("commonmark").enable("table").render(md)
    for tag in ("<a ", "<img", "<strong>", "<em>", "<code>", "<del>", "<s>"):
        assert tag not in html, (tag, html)
    cells = re.findall(r"<td>(.*?)</td>", html)
    shown = {unescape(c) for c in cells}
    for text in HOSTILE_MARKDOWN:
        assert " ".join(text.split()) in shown, (text, sorted(shown)[:20])
        assert f"{' '.join(text.split())}: 1" in shown  # top_error_codes: the code as text, with its count


def test_slo_file_overrides_per_source(db_url: str, tmp_path: Path) -> None:
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text("default:\n  min_events: 5\nsources:\n  tolerant:\n    dead_letter_rate_max: 0.9\n")
    services = make_services(db_url, slo_file=slo_file)
    try:
        with TestClient(create_app(services)) as client:
            batch = []
            for source in ("tolerant", "strict"):
                batch += [event(source=source, status="success", occurred_at=ago(hours=3)) for _ in range(6)]
                batch += [
                    event(
                        source=source, status="dead_letter", error_message="downstream_closed", occurred_at=ago(hours=3)
                    )
                    for _ in range(4)
                ]
            _load(client, batch)
            hints = client.get("/api/v1/alerts", params={"level": "warn"}).json()["hints"]
            dead = {h["source"]: h for h in hints if h["code"] == "dead_letter_rate_high"}
            assert set(dead) == {"strict"} and dead["strict"]["level"] == "critical"
            assert (dead["strict"]["observed"], dead["strict"]["threshold"]) == (0.4, 0.05)

            slo_file.write_text("default:\n  min_events: nope\n")
            r = client.get("/api/v1/alerts")
            assert r.status_code == 500 and r.json()["error"]["code"] == "invalid_slo_file"
            assert "min_events" in r.json()["error"]["message"]
    finally:
        services.engine.dispose()


def test_recent_windows_for_burn_rates(services: Services) -> None:
    offsets = {"3m": 3, "20m": 20, "50m": 50, "3h": 180, "20h": 1200, "2d": 2880, "4d": 5760}
    now = now_ms()
    batch = [
        event(
            id=name,
            source="api",
            error_message=ACTIONABLE,
            attributes={"site_id": "s1"},
            occurred_at=datetime.fromtimestamp((now - minutes * 60_000) / 1000, tz=UTC).isoformat(),
        )
        for name, minutes in offsets.items()
    ]
    batch.append(
        event(
            id="ok",
            source="api",
            status="success",
            attributes={"site_id": "s2"},
            occurred_at=datetime.fromtimestamp((now - 10 * 60_000) / 1000, tz=UTC).isoformat(),
        )
    )
    assert services.pipeline.ingest(batch, tenant="default").accepted == len(batch)
    expected = {
        "5m": (1, 1),
        "15m": (2, 1),
        "30m": (3, 2),
        "1h": (4, 3),
        "2h": (4, 3),
        "6h": (5, 4),
        "1d": (6, 5),
        "3d": (7, 6),
    }
    with services.engine.connect() as conn:
        recent = slo.count_recent(conn, tenant="default", now=now)["api"]
        assert {label: (c.total, c.actionable) for label, c in recent.items()} == expected
        # Only site s1: the success event (site s2) drops out, the raw path answers every window.
        recent = slo.count_recent(conn, tenant="default", now=now, attrs={"site_id": "s1"})["api"]
        assert {label: (c.total, c.actionable) for label, c in recent.items()} == {
            label: (actionable, actionable) for label, (_total, actionable) in expected.items()
        }


def test_deep_failure_pages_seek_by_rollup_counts_and_show_the_same_rows(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page, every filter: seeking through day and hour counts lists exactly what stepping over rows does."""
    rng = random.Random(9)
    now = now_ms()
    batch = []
    for i in range(700):
        at = now - rng.randrange(0, 9 * DAY_MS)
        message = rng.choice([ACTIONABLE, "downstream_closed", "Invalid API key", None])
        batch.append(
            event(
                id=f"p{i}",
                source=rng.choice(["a", "doc_sync"]),
                status="success" if message is None else "failure",
                error_message=message,
                attributes=rng.choice(ATTRIBUTE_MIXES),
                occurred_at=datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(timespec="milliseconds"),
            )
        )
    # Same instants on purpose: ties are ordered by pk, across an hour boundary too.
    hour = now // HOUR_MS * HOUR_MS - 3 * HOUR_MS
    for i in range(30):
        at = hour - 1 + i % 3
        batch.append(
            event(
                id=f"tie{i}",
                source="a",
                error_message=ACTIONABLE,
                occurred_at=datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(timespec="milliseconds"),
            )
        )
    assert services.pipeline.ingest(batch, tenant="default").accepted == len(batch)
    queries = [
        raw.FailureQuery(start_ms=now - 7 * DAY_MS, end_ms=now + 1),
        raw.FailureQuery(start_ms=now - 8 * DAY_MS - 5 * 60_000, end_ms=now - 3 * HOUR_MS, source="doc_sync"),
        raw.FailureQuery(start_ms=now - 7 * DAY_MS, end_ms=now + 1, attrs={"site_id": "s1"}),
        raw.FailureQuery(start_ms=now - 7 * DAY_MS, end_ms=now + 1, attrs={"site_id": "s1", "target_object": "page"}),
    ]
    with services.engine.connect() as conn:
        for query in queries:
            pages = {}
            for seek_after in (10**9, 0):  # stepping over every row, then seeking from the first page on
                monkeypatch.setattr(raw, "SEEK_AFTER_ROWS", seek_after)
                listed = []
                page = 1
                while True:
                    items, info = raw.list_failures(conn, tenant="default", query=query, page=page, page_size=7)
                    if not items:
                        break
                    listed += [e["id"] for e in items]
                    page += 1
                pages[seek_after] = listed
                assert len(listed) == info["total"] == len(set(listed)), (query, seek_after)
            assert pages[0] == pages[10**9] and len(pages[0]) > 20, query
