"""The ingest hot path against its reference: the one-pass row of a clean event, the time parser, rollup deltas."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from faultlens.ingest import EventRejected, Pipeline, _utc_ms
from faultlens.settings import Settings
from faultlens.store import rollup_writes
from faultlens.timeutil import parse_rfc3339_ms

NOW = 1_800_000_000_000


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    # Small limits, so cutting (which only the checked path does) is reached by short values too.
    limits = Settings(database_url="sqlite://", max_message_chars=120, max_attribute_chars=24, max_attributes=4)
    return Pipeline(create_engine("sqlite://"), limits, classifier=None, fingerprints=None)


BASE: dict[str, Any] = {
    "id": "evt-1",
    "source": "checkout-api",
    "operation": "POST /orders",
    "item_type": "request",
    "status": "failure",
    "occurred_at": "2026-11-20T10:15:30.123Z",
    "duration_ms": 12.5,
    "http_status": 504,
    "error_code": "upstream_timeout",
    "error_message": "upstream timeout after 3000ms (request_id=7f3c)",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "request_id": "9b2e",
    "release": "2026.11.4",
    "environment": "production",
    "attributes": {"region": "eu-west-1", "site_id": "s1"},
}
ODD_VALUES: list[Any] = [
    None, "", "x", "a\x00b", 5, 5.0, 7.5, True, [], {}, "y" * 200, "password=hunter2hunter2", "\x01ctl", ".", "..",
    float("nan"), float("inf"), -1, 10**30, 200, 600, "2026-01-01T00:00:00Z", "2026-01-01t23:59:59.999999999z",
    "2026-13-01T00:00:00Z", "2026-01-01 10:00:60Z", "2026-01-01T10:00:59+01:00", "2027-01-15T00:00:00Z",
    "1969-12-31T23:59:59Z", "2026-01-01T00:00:00.Z", "２０26-01-01T00:00:00Z", 1_700_000_000_000, "é" * 3,
    "Bearer abcdefghijklmnopqrstuvwxyz012345", "k" * 129, {"a": 1}, {"password": "x"}, {"password": ""},
    {"token": 5}, {"n": float("nan")}, {"k": [1]}, {"k\x00": 1}, {"x" * 129: 1},
    {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5},
    {"site_id": "s2", "v": 2.5, "b": None, "t": True}, {"long": "z" * 30}, {"note": "api_key=abcdefabcdefabcdef12"},
]  # fmt: skip
FIELDS = [*BASE, "started_at", "span_id", "correlation_id", "job_id", "attempt", "max_attempts", "unknown"]


def outcome(pipeline: Pipeline, check: Any, raw: dict[str, Any], epoch_ms: bool) -> tuple[Any, ...]:
    try:
        row = dict(check(raw, tenant="t", now=NOW, epoch_ms=epoch_ms))
    except EventRejected as exc:
        return ("rejected", exc.code, exc.message)
    except (TypeError, ValueError, OverflowError) as exc:
        return ("error", type(exc).__name__)
    if raw.get("id") in (None, ""):
        assert len(row["id"]) == 32  # a fresh uuid4 hex, different on every call
        row["id"] = "generated"
    return ("row", row)


@settings(max_examples=400, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.sampled_from(ODD_VALUES) | st.none(), st.booleans()), max_size=3
    ),
    epoch_ms=st.booleans(),
)
def test_validate_gives_the_checked_row_or_error(
    pipeline: Pipeline, changes: list[tuple[str, Any, bool]], epoch_ms: bool
) -> None:
    raw = dict(BASE)
    for name, value, drop in changes:
        if drop:
            raw.pop(name, None)
        else:
            raw[name] = value
    assert outcome(pipeline, pipeline.validate, raw, epoch_ms) == outcome(
        pipeline, pipeline._checked_row, raw, epoch_ms
    )


def test_clean_events_take_the_one_pass_row(pipeline: Pipeline) -> None:
    row = pipeline._clean_row(dict(BASE), "t", NOW, False)
    assert row is not None
    assert row["occurred_at"] == parse_rfc3339_ms(BASE["occurred_at"])
    assert row["attributes"] == '{"region":"eu-west-1","site_id":"s1"}'
    # A value that must be cut, or an error, is left to the checked path (which cuts or names the error).
    assert pipeline._clean_row({**BASE, "error_message": "m" * 121}, "t", NOW, False) is None
    assert pipeline._clean_row({**BASE, "status": "exploded"}, "t", NOW, False) is None
    assert pipeline._clean_row({**BASE, "id": "a\x7fb"}, "t", NOW, False) is None
    assert pipeline._clean_row({**BASE, "http_status": 504.0}, "t", NOW, False) is None
    assert pipeline.validate({**BASE, "http_status": 504.0}, tenant="t", now=NOW)["http_status"] == 504


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(timezones=st.none()),
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 9),
    st.sampled_from(["Z", "z", "+00:00", "+05:30"]),
)
def test_the_common_time_form_parses_like_rfc3339(when: Any, sep: str, digits: int, offset: str) -> None:
    text = when.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{when.microsecond:06d}{when.microsecond % 997:03d}"[:digits]
    text += offset
    fast = _utc_ms(text)
    if fast is not None:
        assert fast == parse_rfc3339_ms(text)
    if offset in ("Z", "z") and when.year >= 1000:
        assert fast is not None


@pytest.mark.parametrize(
    "text", ["2026-02-30T10:00:00Z", "2026-01-01T10:00:60Z", "2026-01-01T10:00:00.Z", "2026-01-01T1:00:00Z", "x" * 24]
)
def test_the_common_time_form_leaves_what_it_cannot_read_to_the_parser(text: str) -> None:
    assert _utc_ms(text) is None
    with pytest.raises(ValueError):
        parse_rfc3339_ms(text)


def rollup_rows(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "tenant": rng.choice(["t1", "t2"]),
            "occurred_at": 1_790_000_000_000 + rng.randint(0, 3 * 86_400_000),
            "source": rng.choice(["api", "worker"]),
            "operation": rng.choice([None, "", "GET /a"]),
            "item_type": "request",
            "status": rng.choice(["success", "failure"]),
            "failure_class": rng.choice(["none", "service_failure"]),
            "failure_kind": rng.choice(["none", "timeout"]),
            "category": "x",
            "is_actionable": rng.choice([True, False, 0, 1]),
            "error_code": rng.choice([None, "", "E1", "C" * 80]),
            "release": rng.choice([None, "", "r1"]),
            "environment": rng.choice([None, "prod"]),
            "fingerprint_id": rng.choice([None, "", "f1", "f2"]),
            "attempt": rng.choice([None, 0, 2]),
            "attributes": rng.choice([None, '{"site_id":"s1"}', '{"site_id":"s2","template_key":7,"x":1}']),
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_rollup_deltas_add_up_whatever_the_rows_carry(seed: int) -> None:
    rows = rollup_rows(seed, 400)
    counts, attempts = rollup_writes.deltas(rows)
    assert sum(n for key, n in counts.items() if key[1] == 0 and key[2] == 3600) == len(rows)
    # Batches add up to the whole, a negative sign takes away exactly what was added.
    first, second = rollup_writes.deltas(rows[:150]), rollup_writes.deltas(rows[150:])
    assert (first[0] + second[0], first[1] + second[1]) == (counts, attempts)
    minus, minus_attempts = rollup_writes.deltas(rows, -1)
    assert {key: -n for key, n in minus.items()} == counts
    assert {key: -n for key, n in minus_attempts.items()} == attempts
    # Rows without the optional fields (read with .get) count as rows holding None there.
    bare = [{k: v for k, v in row.items() if k not in ("release", "environment") or v} for row in rows]
    assert rollup_writes.deltas(bare) == (counts, attempts)
    # A generator of rows counts the same as the list.
    assert rollup_writes.deltas(iter(rows)) == (counts, attempts)
