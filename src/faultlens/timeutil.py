"""Time helpers: RFC 3339 parsing, epoch milliseconds, query windows."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from faultlens.errors import InvalidRequest

WINDOWS_MS: dict[str, int] = {
    "1h": 3_600_000,
    "6h": 6 * 3_600_000,
    "24h": 24 * 3_600_000,
    "7d": 7 * 86_400_000,
    "14d": 14 * 86_400_000,
    "30d": 30 * 86_400_000,
    "90d": 90 * 86_400_000,
}
DEFAULT_WINDOW = "24h"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_rfc3339_ms(value: str) -> int:
    """Parse an RFC 3339 timestamp (offset required) into epoch milliseconds; ValueError when it is not one."""
    if len(value) < 20 or len(value) > 40 or value[10] not in "Tt ":
        raise ValueError("not an RFC 3339 timestamp")
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no timezone offset (use Z or +hh:mm)")
    return int(parsed.timestamp() * 1000)


def ms_to_rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resolve_window(
    window: str | None, since: str | None, until: str | None, *, now: int | None = None
) -> tuple[str, int, int]:
    """Turn window/since/until query parameters into (label, start_ms, end_ms); end is exclusive."""
    now = now_ms() if now is None else now
    if since is not None or until is not None:
        if window is not None:
            raise InvalidRequest("use either window or since/until, not both", details={"param": "window"})
        try:
            end = parse_rfc3339_ms(until) if until else now
        except ValueError as exc:
            raise InvalidRequest(f"until: {exc}", details={"param": "until"}) from exc
        try:
            start = parse_rfc3339_ms(since) if since else end - WINDOWS_MS[DEFAULT_WINDOW]
        except ValueError as exc:
            raise InvalidRequest(f"since: {exc}", details={"param": "since"}) from exc
        if start >= end:
            raise InvalidRequest("since must be before until", details={"param": "since"})
        return "custom", start, end
    label = window or DEFAULT_WINDOW
    if label not in WINDOWS_MS:
        raise InvalidRequest(
            f"window must be one of {', '.join(WINDOWS_MS)}", details={"param": "window", "value": label}
        )
    return label, now - WINDOWS_MS[label], now + 1
