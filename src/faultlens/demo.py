"""The demo data set: realistic traffic from several sources over the last D days, fed through the pipeline."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from faultlens.timeutil import now_ms

# (message, http_status, error_code, status, weight): what each kind of source really sees.
_FAILURES: dict[str, list[tuple[str, int | None, str | None, str, int]]] = {
    "codex-proxy": [
        ("downstream_closed", 499, "downstream_closed", "failure", 30),
        (
            "failed_contact_upstream: dial tcp 10.0.3.7:443: connect: connection refused",
            502,
            "failed_contact_upstream",
            "failure",
            8,
        ),
        ("upstream_stream_error: stream disconnected before completion", 502, "upstream_stream_error", "failure", 6),
        ("request_body_read_timeout after 30s", 408, "request_body_read_timeout", "failure", 3),
        ("Incorrect API key provided: sk-proj-A1b2C3d4E5f6G7h8I9j0KkLl", 401, "invalid_api_key", "failure", 10),
        (
            "Rate limit reached for requests per min (RPM): Limit 500, Used 500",
            429,
            "rate_limit_exceeded",
            "failure",
            6,
        ),
        ("upstream request timeout", 504, None, "failure", 4),
    ],
    "billing-api": [
        ("canceling statement due to statement timeout", 500, "57014", "failure", 5),
        ("deadlock detected", 500, "40P01", "failure", 3),
        ("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00", 500, None, "failure", 4),
        ('duplicate key value violates unique constraint "invoices_pkey"', 409, "23505", "failure", 4),
        ("validation error: amount must be a positive number", 422, "validation_error", "failure", 8),
        ("client disconnected before the response was sent", 499, None, "failure", 5),
        ("JWT expired at 2026-11-20T10:00:00Z", 401, "token_expired", "failure", 6),
    ],
    "doc_sync": [
        ("连接超时: 同步文档到站点失败", None, "timeout", "failure", 6),
        ("权限不足，无法写入目标对象", None, "permission_denied", "failure", 4),
        ("OSError: [Errno 28] No space left on device", None, None, "dead_letter", 2),
        ("数据格式错误: 字段 title 缺失", None, "bad_data", "failure", 5),
        (
            "redis.exceptions.ConnectionError: Error 111 connecting to 10.0.8.2:6379. Connection refused.",
            None,
            None,
            "retry",
            4,
        ),
    ],
    "workflow_actions": [
        ("celery.exceptions.SoftTimeLimitExceeded: SoftTimeLimitExceeded()", None, None, "failure", 5),
        ("WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL)", None, None, "dead_letter", 2),
        ("PermissionError: [Errno 13] Permission denied: '/srv/flows/out.json'", None, None, "failure", 3),
        ("ValueError: invalid literal for int() with base 10: 'abc'", None, None, "failure", 4),
        ("TimeoutError: timed out waiting for approval service", None, None, "retry", 6),
    ],
    "embedder-worker": [
        ("MemoryError: Unable to allocate 2.00 GiB for an array", None, None, "failure", 3),
        ("OOMKilled", None, None, "dead_letter", 1),
        ("JobTimeoutException: Task exceeded maximum timeout value (180 seconds)", None, None, "failure", 4),
        ("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0", None, None, "failure", 3),
        ("httpx.ConnectTimeout: timed out connecting to embeddings service", None, None, "retry", 5),
    ],
    "checkout-web": [
        ("no healthy upstream", 503, "UH", "failure", 3),
        (
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            503,
            "UF",
            "failure",
            3,
        ),
        ("client prematurely closed connection while reading response header", 499, None, "failure", 8),
        ("404 Not Found: /api/cart/items/991", 404, None, "failure", 6),
        ("429 Too Many Requests", 429, None, "failure", 3),
    ],
}
_OPERATIONS = {
    "codex-proxy": ["POST /v1/responses", "POST /v1/chat/completions", "GET /v1/models"],
    "billing-api": ["POST /invoices", "GET /invoices/{id}", "POST /payments"],
    "doc_sync": ["sync_document", "sync_attachment"],
    "workflow_actions": ["run_action", "approve_step"],
    "embedder-worker": ["embed_codebase", "embed_file"],
    "checkout-web": ["GET /cart", "POST /checkout"],
}
_ITEM_TYPE = {"doc_sync": "task", "workflow_actions": "job", "embedder-worker": "task"}
_FAILURE_RATE = {
    "codex-proxy": 0.08,
    "billing-api": 0.04,
    "doc_sync": 0.10,
    "workflow_actions": 0.07,
    "embedder-worker": 0.12,
    "checkout-web": 0.05,
}
_SOURCE_WEIGHTS = {
    "codex-proxy": 35,
    "billing-api": 20,
    "doc_sync": 12,
    "workflow_actions": 10,
    "embedder-worker": 8,
    "checkout-web": 15,
}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate(n: int, *, days: float, seed: int = 7, end_ms: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield `n` events over the last `days` days, oldest first, busier in working hours."""
    rng = random.Random(seed)
    end = end_ms if end_ms is not None else now_ms()
    span = int(days * 86_400_000)
    sources = list(_SOURCE_WEIGHTS)
    weights = list(_SOURCE_WEIGHTS.values())
    failure_choices = {s: ([f[:4] for f in fs], [f[4] for f in fs]) for s, fs in _FAILURES.items()}
    produced = 0
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:8]
    while produced < n:
        source = rng.choices(sources, weights)[0]
        # Oldest first, as real traffic arrives: event i falls in the i-th of n equal slices of the span.
        at = end - span + int((produced + rng.random()) * span / n)
        # A diurnal shape: half of the night-time (UTC 00-06) events move to the morning after.
        if (at // 3_600_000) % 24 < 6 and rng.random() < 0.5:
            at = min(at + 6 * 3_600_000, end - 1)
        failed = rng.random() < _FAILURE_RATE[source]
        event: dict[str, Any] = {
            "id": f"demo-{run}-{produced}",
            "source": source,
            "operation": rng.choice(_OPERATIONS[source]),
            "item_type": _ITEM_TYPE.get(source, "request"),
            "occurred_at": _iso(at),
            "duration_ms": round(rng.lognormvariate(4.5, 0.8), 1),
            "trace_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "environment": "production",
            "release": rng.choice(["2026.11.1", "2026.11.2"]),
        }
        if source in ("doc_sync", "workflow_actions"):
            event["attributes"] = {
                "site_id": f"site-{rng.randint(1, 12)}",
                "target_object": rng.choice(["page", "attachment", "workflow", "approval"]),
                "template_key": rng.choice(["default", "contract", "invoice"]),
            }
        if failed:
            choices, fweights = failure_choices[source]
            message, http_status, code, status = rng.choices(choices, fweights)[0]
            event.update(status=status, error_message=message)
            if http_status:
                event["http_status"] = http_status
            if code:
                event["error_code"] = code
            if status in ("retry", "dead_letter") or event["item_type"] != "request":
                event["attempt"] = rng.randint(1, 5)
                event["max_attempts"] = 5
        else:
            event["status"] = "success"
            if event["item_type"] == "request":
                event["http_status"] = 200
        yield event
        produced += 1
