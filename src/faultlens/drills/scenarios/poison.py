"""Drill `poison`: one malformed event in a batch is rejected with its reason while the rest is stored; one task
that always fails is retried to its limit and ends dead-lettered with its reason."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import redis

from faultlens.connectors import native
from faultlens.drills.harness import Drill, DrillContext, Server, metric_delta
from faultlens.drills.scenarios._evidence import (
    check_answer_ids,
    check_logged,
    delta,
    ids_of_source,
    now_rfc3339,
    stored,
    traced_headers,
)

TENANT = "drill"
SOURCE = "drill-poison"
WORKER_SOURCE = "drill-poison-worker"
TASK_TYPE = "drill.embed"
BATCH = 6
POISON_INDEX = 3
MAX_RETRIES = 2
# A transient-looking failure (the shipped rules call it retryable), so faultlens retries it until the limit.
TASK_ERROR = "ConnectionRefusedError: [Errno 111] Connection refused (vector-store:6333)"
_SERIES = ("faultlens_ingest_events_total", "faultlens_ingest_rejections_total", "faultlens_tasks_requeued_total")


def _ndjson_batch(run: str) -> tuple[bytes, list[str], str]:
    """An NDJSON batch whose line POISON_INDEX is cut off mid-object: (body, the good ids, the poison's id)."""
    at = now_rfc3339()
    lines: list[bytes] = []
    good: list[str] = []
    poison_id = f"poison-{run}-{POISON_INDEX}"
    for n in range(BATCH):
        event_id = f"poison-{run}-{n}"
        event = {"id": event_id, "source": SOURCE, "status": "success", "occurred_at": at, "operation": "GET /cart"}
        if n == POISON_INDEX:
            lines.append(orjson.dumps(event)[:-12])  # a writer that died mid-line
            continue
        good.append(event_id)
        lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n", good, poison_id


def _poison_event(ctx: DrillContext, server: Server) -> None:
    body, good, poison_id = _ndjson_batch(secrets.token_hex(3))
    headers, request_id, trace_id = traced_headers("poison-batch")
    before = server.metrics()
    answer = server.post("/api/v1/events", content=body, headers={**headers, "content-type": "application/x-ndjson"})
    deltas = ctx.record_deltas(before, server.metrics(), _SERIES[:2])
    result = answer.json() if answer.status_code == 200 else {}
    ctx.note(f"NDJSON batch of {BATCH}, line {POISON_INDEX} malformed: HTTP {answer.status_code} {result}")
    rejected = [(r["index"], r["error"]["code"]) for r in result.get("rejected", [])]
    ctx.check(
        "batch: answered 200, the malformed line rejected by index with reason invalid_json",
        answer.status_code == 200 and rejected == [(POISON_INDEX, "invalid_json")],
        f"HTTP {answer.status_code}, rejected {rejected}",
    )
    ctx.check(
        f"batch: the other {len(good)} events accepted",
        result.get("accepted") == len(good),
        f"accepted {result.get('accepted')}",
    )
    check_answer_ids(ctx, "batch", answer, request_id, trace_id)
    by_reason = delta(deltas, "faultlens_ingest_rejections_total", reason="invalid_json")
    others = {k: v for k, v in deltas.items() if "rejections" in k and 'reason="invalid_json"' not in k}
    ctx.check(
        'batch: faultlens_ingest_rejections_total{reason="invalid_json"} +1, no other reason',
        by_reason == 1.0 and not others,
        f"invalid_json +{by_reason:g}, others {others}",
    )
    ctx.check(
        'batch: faultlens_ingest_events_total{outcome="accepted"} moved by the rest of the batch',
        delta(deltas, "faultlens_ingest_events_total", outcome="accepted") == len(good),
        f"+{delta(deltas, 'faultlens_ingest_events_total', outcome='accepted'):g}",
    )
    check_logged(ctx, server, "batch", request_id, trace_id, status=200)
    found = stored(server, [*good, poison_id])
    missing = [i for i in good if not found[i]]
    listed = ids_of_source(server, SOURCE)
    ctx.check(
        "batch: the rest stored (each good id once), the poison not",
        not missing and not found[poison_id] and sorted(listed) == sorted(good),
        f"missing {missing}, poison stored {found[poison_id]}, listed {len(listed)}",
    )
    ctx.lost += len(missing)


class _Worker:
    """The service's own worker on the native layout: it runs the one task, which always fails."""

    def __init__(self, r: redis.Redis, prefix: str, task_id: str) -> None:
        self.redis, self.prefix, self.task_id = r, prefix, task_id
        self.runs = 0

    def run_once(self) -> None:
        self.runs += 1
        native.record_start(
            self.redis, task_id=self.task_id, task_type=TASK_TYPE, prefix=self.prefix, source=WORKER_SOURCE
        )
        native.record_failure(
            self.redis,
            task_id=self.task_id,
            task_type=TASK_TYPE,
            prefix=self.prefix,
            error_message=TASK_ERROR,
            exception_type="ConnectionRefusedError",
        )

    def run_due(self) -> int:
        """Claim the requeued runs that are due (as the worker would) and run them; how many ran."""
        due = native.claim_due(self.redis, prefix=self.prefix)
        for _ in due:
            self.run_once()
        return len(due)


def _failed_item(server: Server) -> dict[str, Any] | None:
    answer = server.get("/api/v1/tasks/failed", params={"source": WORKER_SOURCE})
    answer.raise_for_status()
    items = answer.json()["items"]
    return items[0] if items else None


def _task_events(server: Server) -> list[dict[str, Any]]:
    answer = server.get("/api/v1/events", params={"source": WORKER_SOURCE, "window": "24h", "limit": 1000})
    answer.raise_for_status()
    return list(answer.json()["items"])


def _poison_task(ctx: DrillContext, server: Server, prefix: str, sync_s: float) -> None:
    r = redis.Redis.from_url(ctx.cfg.redis_url, socket_timeout=5)
    ctx.on_cleanup(r.close)
    task_id = f"poison-task-{secrets.token_hex(3)}"
    worker = _Worker(r, prefix, task_id)
    before = server.metrics()
    worker.run_once()
    ctx.note(f"task {task_id} ({TASK_TYPE}) failed its first run: {TASK_ERROR}")

    def dead_letter() -> dict[str, Any]:
        worker.run_due()  # the worker runs whatever faultlens requeued; every run fails the same way
        item = _failed_item(server)
        return item if item is not None and item["status"] == "dead_letter" else {}

    budget = ctx.cfg.seconds(150, at_least=10.0)
    item = ctx.wait_until(dead_letter, budget, f"task {task_id} dead-lettered", every_s=0.05)
    ctx.note(f"task dead-lettered after {worker.runs} runs: {item}")
    ctx.check(
        f"task: dead-lettered with its reason after {MAX_RETRIES} automatic retries",
        item["not_retryable_reason"] == "retries_exhausted"
        and item["retry_allowed"] is False
        and item["retry_count"] == MAX_RETRIES == item["max_retries"]
        and worker.runs == MAX_RETRIES + 1,
        f"status {item['status']}, not_retryable_reason {item['not_retryable_reason']}, retry_count "
        f"{item['retry_count']}/{item['max_retries']}, runs {worker.runs}",
    )
    ctx.check(
        "task: its error and category shown with it",
        item["error_message"] == TASK_ERROR and item["retryable"] is True and bool(item["category"]),
        f"error {item['error_message']!r}, category {item['category']} ({item['classifier_category']})",
    )

    # A dead letter stays dead: over several sync rounds nothing requeues it.
    requeued = ctx.try_wait(lambda: worker.run_due(), max(3 * sync_s, 1.0))
    ctx.check("task: not requeued again after the dead letter", not requeued, f"{requeued or 0} further runs")

    def synced() -> list[dict[str, Any]]:
        found = _task_events(server)
        return found if any(e["status"] == "dead_letter" for e in found) else []

    events = ctx.wait_until(synced, ctx.cfg.seconds(100, at_least=5.0), "the dead_letter event synced")
    dead = [e for e in events if e["status"] == "dead_letter"]
    failures = sorted(e["attempt"] for e in events if e["status"] == "failure")
    retries = [e for e in events if e["status"] == "retry"]
    ctx.check(
        "task: synced as events: failures at attempts 0..n-1, one dead_letter event with the error",
        len(dead) == 1
        and dead[0]["job_id"] == task_id
        and dead[0]["attempt"] == MAX_RETRIES
        and dead[0]["error_message"] == TASK_ERROR
        and failures == list(range(MAX_RETRIES)),
        f"dead_letter {[(e['id'], e['attempt']) for e in dead]}, failure attempts {failures}",
    )
    attempts = sorted(e["attempt"] for e in retries)
    ctx.note(f"retry events: {len(retries)} for attempts {attempts} ({[e['id'] for e in retries]})")
    ctx.check(
        "task: every retry recorded as exactly one retry event",
        attempts == list(range(1, MAX_RETRIES + 1)),
        f"attempts {attempts}",
    )

    deltas = ctx.record_deltas(before, server.metrics(), _SERIES[2:])
    auto = delta(deltas, "faultlens_tasks_requeued_total", store="native", trigger="auto")
    ctx.check(
        'task: faultlens_tasks_requeued_total{store="native",trigger="auto"} counts the retries',
        auto == MAX_RETRIES,
        f"+{auto:g} ({metric_delta(before, server.metrics(), 'faultlens_tasks_requeued_total')})",
    )
    lines = [
        line
        for line in server.logs()
        if line.get("logger") == "faultlens.connectors" and f"native:{task_id}" in str(line.get("msg"))
    ]
    ctx.check(
        "task: each requeue logged (JSON, job_id sync:native) with the task id",
        len(lines) == MAX_RETRIES and all(line.get("job_id") == "sync:native" for line in lines),
        "; ".join(str(line.get("msg")) for line in lines),
    )
    ctx.add_log_lines(lines)

    # An operator's manual retry is refused with the same reason, in the one error body, traced.
    headers, request_id, trace_id = traced_headers("poison-retry")
    answer = server.post(f"/api/v1/tasks/native:{task_id}/retry", headers=headers)
    error = (
        answer.json().get("error", {}) if answer.headers.get("content-type", "").startswith("application/json") else {}
    )
    ctx.check(
        "task: a manual retry answers 409 task_not_retryable, reason retries_exhausted",
        answer.status_code == 409
        and error.get("code") == "task_not_retryable"
        and error.get("details", {}).get("reason") == "retries_exhausted",
        f"HTTP {answer.status_code} {error}",
    )
    check_answer_ids(ctx, "manual retry", answer, request_id, trace_id)
    check_logged(ctx, server, "manual retry", request_id, trace_id, status=409, error_code="task_not_retryable")


def run(ctx: DrillContext) -> None:
    prefix = ctx.redis_prefix()
    sync_s = ctx.cfg.seconds(5, at_least=0.2)
    policy = ctx.work_dir / "retry-policy.yaml"
    # Short backoff and auto retry of the native store: faultlens itself requeues the task until its limit.
    policy.write_text(
        f"default: {{max_retries: {MAX_RETRIES}, base_delay_s: {ctx.cfg.seconds(2, at_least=0.05)}, "
        "multiplier: 1, max_delay_s: 60, jitter: 0}\nauto_retry: [native]\n"
    )
    server = ctx.start_server(
        tenant=TENANT,
        default_tenant=TENANT,  # the task routes and synced events belong to the deployment's default tenant
        redis_url=ctx.cfg.redis_url,
        redis_prefix=prefix,
        retry_policy_file=str(policy),
        task_sync_interval_s=sync_s,
    )
    _poison_event(ctx, server)
    _poison_task(ctx, server, prefix, sync_s)


DRILL = Drill(
    name="poison",
    title="Poison event and poison task",
    shows=(
        "A malformed line in an NDJSON batch is rejected by index with reason invalid_json (answer and "
        "faultlens_ingest_rejections_total by reason) while the rest is stored, and a task that always fails is "
        "requeued by faultlens to its limit, then dead-lettered with reason retries_exhausted (tasks API, events, "
        "requeue metric and JSON log lines), and a manual retry is refused with the same reason."
    ),
    run=run,
)
