"""The ingest hot path's shortcuts against plain references: rollup deltas summed per tally and grain against a
row-by-row count, the redactor's needle scan and pattern gates against a substring test per needle."""

from __future__ import annotations

import importlib.util
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from faultlens.classify import redact
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.store import attributes, rollup_writes
from faultlens.store.rollup_shapes import (
    ALL_SHAPES,
    ATTRIBUTE_SHAPE,
    CODE_CHARS,
    EVENT_DIMENSIONS,
    GROUP_SHAPE,
    SHAPE_GRAINS_MS,
    SHAPES,
)
from faultlens.store.tables import ROLLUP_KEY, events, rollups

# --- rollup deltas --------------------------------------------------------------------------------------


def reference_deltas(
    rows: Iterable[Mapping[str, Any]], sign: int = 1, shapes: Iterable[int] = ALL_SHAPES
) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], int]]:
    """Every row counted into every key of every shape, grain and rolled attribute it belongs to, one by one."""
    counts: Counter[tuple[Any, ...]] = Counter()
    attempts: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        dims = (
            row["source"],
            row["operation"] or "",
            row["item_type"],
            row["status"],
            row["failure_class"],
            row["failure_kind"],
            row["category"],
            bool(row["is_actionable"]),
            (row["error_code"] or "")[:CODE_CHARS],
            row.get("release") or "",
            row.get("environment") or "",
            row.get("fingerprint_id") or "",
        )
        for shape in shapes:
            if shape == GROUP_SHAPE and not dims[-1]:
                continue
            kept = tuple(
                value if name in SHAPES[shape] else (False if name == "is_actionable" else "")
                for name, value in zip(EVENT_DIMENSIONS, dims, strict=True)
            )
            pairs = attributes.rolled_pairs(row["attributes"]) if shape == ATTRIBUTE_SHAPE else (("", ""),)
            for name, value in pairs:
                for grain in SHAPE_GRAINS_MS[shape]:
                    at = row["occurred_at"]
                    key = (row["tenant"], shape, grain // 1000, name, value, at - at % grain, *kept)
                    counts[key] += sign
                    if row["attempt"]:
                        attempts[key] += sign * row["attempt"]
    return dict(counts), dict(attempts)


def _rows(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = [
        None,
        '{"customer_id":"c1"}',
        '{"site_id":"s1"}',
        '{"site_id":"s2","template_key":7,"x":1}',
        '{"target_object":"o1","site_id":"s1","template_key":"t"}',
        '{"\\u0073ite_id":"s3"}',
        '{"site_id":"' + "v" * 200 + '"}',
        '{"note":"site_id"}',
    ]
    start = 1_796_000_000_000
    return [
        {
            "tenant": rng.choice(["default", "default", "t2"]),
            # Minutes, hours, days and weeks apart, so every grain folds several finer buckets.
            "occurred_at": start + rng.choice([0, 1, 7, 60, 61, 24 * 60, 8 * 24 * 60]) * 60_000 + rng.randrange(60_000),
            "source": rng.choice(["checkout-api", "auth"]),
            "operation": rng.choice([None, "", "GET /a", "POST /b"]),
            "item_type": rng.choice(["request", "job"]),
            "status": rng.choice(["success", "failure"]),
            "failure_class": rng.choice(["none", "service_failure"]),
            "failure_kind": rng.choice(["none", "timeout"]),
            "category": "x",
            "is_actionable": rng.choice([True, False, 0, 1]),
            "error_code": rng.choice([None, "", "E1", "C" * 80]),
            "release": rng.choice([None, "", "r1", "r2"]),
            "environment": rng.choice([None, "prod"]),
            "fingerprint_id": rng.choice([None, "", "f1", "f2"]),
            "attempt": rng.choice([None, 0, 1, 3]),
            "attributes": rng.choice(docs),
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_rollup_deltas_match_the_row_by_row_count(seed: int) -> None:
    rows = _rows(seed, 500)
    for sign in (1, -1):
        counts, attempts = rollup_writes.deltas(rows, sign)
        assert (dict(counts), dict(attempts)) == reference_deltas(rows, sign)
        # Stored as the table keeps them: is_actionable a bool, every other dimension as normalised.
        assert all(type(key[ROLLUP_KEY.index("is_actionable")]) is bool for key in counts)
    for shapes in ([ATTRIBUTE_SHAPE], [2, GROUP_SHAPE], [GROUP_SHAPE, 0]):
        counts, attempts = rollup_writes.deltas(rows, shapes=shapes)
        assert (dict(counts), dict(attempts)) == reference_deltas(rows, shapes=shapes)
    # Rows without the optional fields, and a single row.
    bare = [{k: v for k, v in row.items() if k not in ("release", "fingerprint_id") or v} for row in rows]
    counts, attempts = rollup_writes.deltas(bare)
    assert (dict(counts), dict(attempts)) == reference_deltas(bare)
    counts, attempts = rollup_writes.deltas(rows[:1])
    assert (dict(counts), dict(attempts)) == reference_deltas(rows[:1])


def _bench_events(n: int) -> list[dict[str, Any]]:
    path = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"
    spec = importlib.util.spec_from_file_location("faultlens_bench_ingest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Through JSON, as the API hands them over.
    return list(orjson.loads(orjson.dumps(list(module.realistic(n, days=1, seed=5)))))


def test_ingested_rollups_are_the_row_by_row_count_of_the_stored_events(tmp_path: Path) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/x.db", start_jobs=False))
    try:
        raw = _bench_events(1500)
        first = services.pipeline.ingest(raw[:900], tenant="default")
        # The second batch resends 300 stored events (duplicates add nothing) with 600 new ones.
        second = services.pipeline.ingest(raw[600:], tenant="default")
        assert (first.accepted, second.accepted, second.duplicates) == (900, 600, 300)
        with services.engine.connect() as conn:
            stored = [dict(r) for r in conn.execute(select(events)).mappings()]
            table: Counter[tuple[Any, ...]] = Counter()
            table_attempts: Counter[tuple[Any, ...]] = Counter()
            for row in conn.execute(select(rollups)).mappings():
                key = tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in ROLLUP_KEY)
                table[key] += row["count"]
                if row["attempt_sum"]:
                    table_attempts[key] += row["attempt_sum"]
        assert len(stored) == 1500
        assert (dict(table), dict(table_attempts)) == reference_deltas(stored)
    finally:
        services.engine.dispose()


# --- redaction ------------------------------------------------------------------------------------------


def reference_redact(text: str) -> str:
    """The redactor with every gate a substring test per needle, and every pattern run when a needle is there."""
    lower = text.lower()
    if not any(needle in lower for needle in redact._HINT):
        return text
    for needles, pattern, replacement in redact._STEPS:
        if not any(needle in lower for needle in needles):
            continue
        new = pattern.sub(replacement, text)
        if new != text:
            text = new
            lower = text.lower()
    return text


_PARTS = [
    *redact._HINT,
    *(needle.upper() for needle in redact._HINT),
    "password=hunter2",
    "Authorization: Bearer abcdefghijklmnop",
    "https://user:pw@host/x",
    "http://payments.internal:8080/v1/charges",
    "api_key: AKIAABCDEFGHIJKLMNOP",
    "<password>xyz</password>",
    "Cookie: a=b; c=d",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----",
    "ghp_" + "a" * 36,
    "sk_live_" + "a" * 24,
    " --password secret123",
    'DB_PASSWORD = "abc def"',
    "X-Api-Key: abc123XYZ",
    "token:=xyz987",
    '{\\"password\\":\\"x1\\"}',
    '{"api_key": "AbC123dEf"}',
    "secret => 'x9y'",
    "Session-Id: abc123",
    "\u017fession=abc123",  # long s: a case-insensitive pattern reads it as "s"
    "\u212aey=abc123",  # Kelvin sign: read as "k", and lower-cased to an ASCII "k"
    "KeyError: 'customer_1'",
    "token id f77b9afd776b9d19",
    "JWT expired at 2026-12-06T18:50:22.243Z",
    "task_key",
    "-----begin",
    "--",
]
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-=:/@.<>'\"~()\n\\\u0130\u00df\u212a"


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        pieces = []
        for _ in range(rng.randrange(1, 7)):
            if rng.random() < 0.45:
                pieces.append(rng.choice(_PARTS))
            else:
                pieces.append("".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 10))))
        texts.append("".join(pieces))
    return texts


@pytest.mark.parametrize("seed", range(3))
def test_the_needle_scan_finds_exactly_the_needles_a_text_holds(seed: int) -> None:
    for text in _texts(seed, 3000):
        lower = text.lower()
        held = {needle for needle in redact._HINT if needle in lower}
        assert redact._needles_in(lower) == held
        assert (redact._HINT_SEARCH(lower) is not None) == bool(held)


@pytest.mark.parametrize("seed", range(3))
def test_redaction_matches_the_needle_by_needle_reference(seed: int) -> None:
    texts = _texts(seed, 4000)
    changed = 0
    for text in texts:
        expected = reference_redact(text)
        assert redact._redact(text) == expected
        changed += expected != text
    assert changed > 200  # the texts hold secrets enough to exercise the patterns, not only the gates


_ASCII_TEXT = st.text(st.sampled_from("abkpstwyeoncrgiuljKPSTE0123456789 _-.=:'\"\\\t\n@/"), max_size=60) | st.lists(
    st.sampled_from(_PARTS), max_size=4
).map("".join)


@settings(max_examples=600, deadline=None)
@given(text=_ASCII_TEXT)
def test_a_pattern_skipped_for_lacking_what_it_needs_would_have_found_nothing(text: str) -> None:
    if not text.isascii():
        return
    for pattern, needs in redact._NEEDS.items():
        if pattern.search(text) is not None:
            assert needs(text.lower()) is not None, (pattern.pattern[:40], text)


def test_every_pattern_gate_names_a_compiled_step() -> None:
    patterns = {pattern for _, pattern, _ in redact._STEPS}
    assert set(redact._NEEDS) <= patterns
    assert all(isinstance(p, re.Pattern) for p in redact._NEEDS)
