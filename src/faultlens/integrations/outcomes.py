"""A task or job outcome as one faultlens event whose id is stable per (job, attempt), so it is stored once."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from faultlens.integrations.events import event, exception_text

_ID_CHARS = 128
_CODE_CHARS = 255


def source_name(given: str | None, fallback: str) -> str:
    """The `source=` argument, else FAULTLENS_SOURCE, else OTEL_SERVICE_NAME, else `fallback`."""
    for value in (given, os.environ.get("FAULTLENS_SOURCE"), os.environ.get("OTEL_SERVICE_NAME")):
        if value and value.strip():
            return value.strip()
    return fallback


def outcome_id(kind: str, job_id: str, attempt: int | None) -> str:
    """The same outcome reported twice (a re-delivered signal, a callback and a handler) gets the same id."""
    number = attempt if attempt is not None else 1
    value = f"{kind}:{job_id}:{number}"
    if len(value) <= _ID_CHARS:
        return value
    return f"{kind}:{hashlib.sha256(job_id.encode()).hexdigest()[:32]}:{number}"


def error_fields(exc: BaseException | None) -> dict[str, str]:
    """error_code (the exception's type) and error_message (type, message and traceback) of a failure."""
    if exc is None:
        return {}
    code = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    return {"error_code": code[:_CODE_CHARS], "error_message": exception_text(exc)}


def outcome(*, kind: str, job_id: str, attempt: int | None, **fields: Any) -> dict[str, Any]:
    """`events.event(**fields)` for a task or job, with its stable id (the trace comes from the current context)."""
    out = event(job_id=job_id, attempt=attempt, **fields)
    out["id"] = outcome_id(kind, job_id, attempt)
    return out
