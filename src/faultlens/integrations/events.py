"""Builds one native faultlens event (the shape POST /api/v1/events accepts) for the integrations."""

from __future__ import annotations

import os
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from faultlens.integrations.context import TraceContext, current_trace

# The server keeps this much of a message (FAULTLENS_MAX_MESSAGE_CHARS default); cutting here saves the bytes.
MAX_MESSAGE_CHARS = 16_384
# The stored column sizes: longer values are cut here rather than refused there.
_MAX_SHORT = 256
_MAX_ID = 128
_MAX_ENVIRONMENT = 64
_CUT = "\n[... cut by faultlens ...]\n"


def rfc3339(epoch_s: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds, e.g. 2026-12-06T08:42:12.123Z."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` within `limit` characters: its head and tail kept (a traceback's last lines say the most)."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(_CUT))
    head = keep // 2
    return text[:head] + _CUT + text[len(text) - (keep - head) :]


def exception_text(exc: BaseException) -> str:
    """`Type: message` then the formatted traceback, as the classifier and fingerprints read it."""
    head = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    message = str(exc)
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return f"{head}: {message}\n{''.join(lines)}" if message else f"{head}\n{''.join(lines)}"


def event(
    *,
    source: str,
    operation: str | None,
    status: str,
    item_type: str = "request",
    http_status: int | None = None,
    started_s: float | None = None,
    ended_s: float | None = None,
    duration_ms: float | None = None,
    error_message: str | None = None,
    error_code: str | None = None,
    trace: TraceContext | None = None,
    job_id: str | None = None,
    attempt: int | None = None,
    max_attempts: int | None = None,
    attributes: dict[str, str | int | float | bool | None] | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """One event: a fresh id (a retried batch is stored once), occurred_at = `ended_s` or now, times in UTC.

    `started_s`/`ended_s` are epoch seconds (time.time()); `duration_ms` defaults to their difference.
    `trace` defaults to the current trace context; release and environment default to FAULTLENS_RELEASE and
    FAULTLENS_ENVIRONMENT.
    """
    ended = time.time() if ended_s is None else ended_s
    out: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "source": source[:_MAX_ID],
        "status": status,
        "item_type": item_type,
        "occurred_at": rfc3339(ended),
    }
    if operation:
        out["operation"] = cut(operation, _MAX_SHORT)
    if started_s is not None:
        out["started_at"] = rfc3339(started_s)
        if duration_ms is None:
            duration_ms = max(0.0, (ended - started_s) * 1000.0)
    if duration_ms is not None:
        out["duration_ms"] = round(max(0.0, duration_ms), 3)
    if http_status is not None and 100 <= http_status <= 599:
        out["http_status"] = http_status
    if error_message:
        out["error_message"] = cut(error_message)
    if error_code:
        out["error_code"] = cut(error_code, _MAX_SHORT)
    ctx = current_trace() if trace is None else trace
    if ctx is not None:
        out.update({k: v[:_MAX_ID] for k, v in ctx.as_event_fields().items()})
    if job_id:
        out["job_id"] = job_id[:_MAX_ID]
    if attempt is not None:
        out["attempt"] = attempt
    if max_attempts is not None:
        out["max_attempts"] = max_attempts
    release = release or os.environ.get("FAULTLENS_RELEASE")
    environment = environment or os.environ.get("FAULTLENS_ENVIRONMENT")
    if release:
        out["release"] = cut(release, _MAX_ID)
    if environment:
        out["environment"] = cut(environment, _MAX_ENVIRONMENT)
    if attributes:
        out["attributes"] = {str(k)[:128]: v for k, v in attributes.items()}
    return out
