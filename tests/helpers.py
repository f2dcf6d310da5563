"""Test helpers: event builders and timestamps relative to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"source": "codex-proxy", "status": "failure", "occurred_at": ago(minutes=5)}
    base.update(fields)
    return base
