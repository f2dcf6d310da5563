"""Drill `partial`: half a batch invalid; the valid half stored, the rejected listed by index and reason, a re-send
of the same batch stores nothing twice."""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

from faultlens.drills.harness import Drill, DrillContext
from faultlens.drills.scenarios._evidence import (
    check_answer_ids,
    check_logged,
    delta,
    ids_of_source,
    now_rfc3339,
    stored,
    traced_headers,
)

SOURCE = "drill-partial"
# The series this drill reads (the report shows their deltas).
_SERIES = ("faultlens_ingest_events_total", "faultlens_ingest_rejections_total")
VALID = 10
# One invalid event per way ingest refuses a single event, each with the reason it must be refused for.
_INVALID: list[tuple[str, Any]] = [
    ("missing_field", {"status": "failure"}),  # no source
    ("invalid_status", {"source": SOURCE, "status": "exploded"}),
    ("unknown_field", {"source": SOURCE, "status": "failure", "colour": "red"}),
    ("invalid_timestamp", {"source": SOURCE, "status": "failure", "occurred_at": "yesterday"}),
    ("invalid_field", {"source": SOURCE, "status": "failure", "http_status": 9999}),
    ("missing_field", {"source": SOURCE}),  # no status
    ("invalid_field", {"source": SOURCE, "status": "failure", "duration_ms": -5}),
    ("invalid_timestamp", {"source": SOURCE, "status": "failure", "occurred_at": "2999-01-01T00:00:00Z"}),
    ("invalid_field", {"source": SOURCE, "status": "failure", "attributes": ["not", "flat"]}),
    ("invalid_event", "not an event object"),
]


def build_batch(run: str, occurred_at: str) -> tuple[list[Any], list[str], dict[int, str], list[str]]:
    """(batch, valid ids, invalid index -> expected reason, invalid ids): valid and invalid events alternate."""
    batch: list[Any] = []
    valid_ids: list[str] = []
    invalid_ids: list[str] = []
    expected: dict[int, str] = {}
    for n in range(VALID):
        event_id = f"partial-{run}-ok-{n}"
        valid_ids.append(event_id)
        batch.append(
            {
                "id": event_id,
                "source": SOURCE,
                "status": "failure" if n % 2 else "success",
                "occurred_at": occurred_at,
                "error_message": f"payment gateway timeout after 30s (order {n})" if n % 2 else None,
            }
        )
        reason, shape = _INVALID[n]
        expected[len(batch)] = reason
        if isinstance(shape, dict):
            bad_id = f"partial-{run}-bad-{n}"
            invalid_ids.append(bad_id)
            batch.append({"id": bad_id, "occurred_at": occurred_at, **shape})
        else:
            batch.append(shape)
    return batch, valid_ids, expected, invalid_ids


def _rejected_by_index(answer: dict[str, Any]) -> dict[int, str]:
    return {int(item["index"]): str(item["error"]["code"]) for item in answer.get("rejected", [])}


def run(ctx: DrillContext) -> None:
    server = ctx.start_server()
    run_id = secrets.token_hex(3)
    batch, valid_ids, expected, invalid_ids = build_batch(run_id, now_rfc3339())
    reasons = Counter(expected.values())
    ctx.note(f"batch of {len(batch)}: {len(valid_ids)} valid, {len(expected)} invalid ({dict(reasons)})")

    for attempt in ("first send", "re-send"):
        before = server.metrics()
        headers, request_id, trace_id = traced_headers("partial")
        answer = server.post("/api/v1/events", json=batch, headers=headers)
        after = server.metrics()
        deltas = ctx.record_deltas(before, after, _SERIES)
        body = answer.json() if answer.status_code == 200 else {}
        ctx.note(f"{attempt}: HTTP {answer.status_code} {body or answer.text[:200]}")
        ctx.check(f"{attempt}: answered 200 (a partly invalid batch is not refused whole)", answer.status_code == 200)
        check_answer_ids(ctx, attempt, answer, request_id, trace_id)
        rejected = _rejected_by_index(body)
        ctx.check(
            f"{attempt}: every invalid event listed by its index with its reason",
            rejected == expected,
            f"rejected {rejected}",
        )
        want_accepted, want_duplicates = (VALID, 0) if attempt == "first send" else (0, VALID)
        ctx.check(
            f"{attempt}: accepted {want_accepted}, duplicates {want_duplicates}",
            body.get("accepted") == want_accepted and body.get("duplicates") == want_duplicates,
            f"accepted {body.get('accepted')}, duplicates {body.get('duplicates')}",
        )
        by_reason = {r: delta(deltas, "faultlens_ingest_rejections_total", reason=r) for r in reasons}
        ctx.check(
            f"{attempt}: faultlens_ingest_rejections_total moved by reason exactly as refused",
            by_reason == {r: float(n) for r, n in reasons.items()},
            f"{by_reason}",
        )
        outcomes = {
            o: delta(deltas, "faultlens_ingest_events_total", outcome=o) for o in ("accepted", "duplicate", "rejected")
        }
        want = {"accepted": want_accepted, "duplicate": want_duplicates, "rejected": len(expected)}
        ctx.check(
            f"{attempt}: faultlens_ingest_events_total by outcome",
            outcomes == {k: float(v) for k, v in want.items()},
            f"{outcomes}",
        )
        check_logged(ctx, server, attempt, request_id, trace_id, status=200)

        found = stored(server, valid_ids + invalid_ids)
        missing = [i for i in valid_ids if not found[i]]
        leaked = [i for i in invalid_ids if found[i]]
        ctx.check(f"{attempt}: the valid half stored (by id)", not missing, f"missing {missing}")
        ctx.check(f"{attempt}: no invalid event stored", not leaked, f"stored {leaked}")
        listed = ids_of_source(server, SOURCE)
        twice = sorted(i for i, n in Counter(listed).items() if n > 1)
        ctx.check(
            f"{attempt}: each valid id stored exactly once",
            sorted(listed) == sorted(valid_ids) and not twice,
            f"{len(listed)} listed for {SOURCE}, twice: {twice}",
        )
        if attempt == "re-send":
            ctx.lost += len(missing)


DRILL = Drill(
    name="partial",
    title="Half a batch invalid, then re-sent",
    shows=(
        "A batch whose every other event is invalid stores the valid half, lists each rejected event by index and "
        "reason (answer and faultlens_ingest_rejections_total by reason), and an idempotent re-send stores nothing "
        "twice (count by ids)."
    ),
    run=run,
)
