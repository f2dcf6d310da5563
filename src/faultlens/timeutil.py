"""Time helpers: RFC 3339 parsing, epoch milliseconds, query windows."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from faultlens.errors import InvalidRequest, param_details

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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# The latest instant a window may reach. Every time an answer prints is an RFC 3339 date-time of years 1-9999, and
# some are derived from a bound (a trend's last bucket runs up to 7 days past the window's end), so the bounds stop
# a month short of the last printable instant.
LATEST_MS = (datetime(9999, 12, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# RFC 3339 section 5.6 date-time, nothing looser: calendar date, "T" (or a space, as the RFC allows), a time
# with seconds, an optional fraction and a mandatory offset. ISO 8601's week and ordinal dates, basic format
# and missing seconds all parse in datetime.fromisoformat and are refused here.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def parse_rfc3339_ms(value: str) -> int:
    """Parse an RFC 3339 timestamp (offset required) into epoch milliseconds; ValueError when it is not one."""
    match = _RFC3339.fullmatch(value) if len(value) <= 40 else None
    if match is None:
        raise ValueError("not an RFC 3339 timestamp (expected e.g. 2026-11-22T10:00:00Z)")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset in ("Z", "z"):
        tz = UTC
    else:
        off_h, off_m = int(offset[1:3]), int(offset[4:6])
        if off_h > 23 or off_m > 59:
            raise ValueError("timestamp offset is out of range")
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=off_h, minutes=off_m))
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"not a valid date-time: {exc}") from exc
    # Exact integer arithmetic: timestamp() * 1000 in floating point lands 1 ms early for some instants.
    return (parsed - _EPOCH) // _ONE_MS


def ms_to_rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resolve_window(
    window: str | None,
    since: str | None,
    until: str | None,
    *,
    now: int | None = None,
    default: str = DEFAULT_WINDOW,
) -> tuple[str, int, int]:
    """Turn window/since/until query parameters into (label, start_ms, end_ms); end is exclusive.

    `default` is the window when none of them is given; since alone runs to now, until alone starts `default`
    before it.
    """
    now = now_ms() if now is None else now
    # An empty value is the parameter left out (the OpenAPI document admits "" for all three).
    window, since, until = window or None, since or None, until or None
    if since is not None or until is not None:
        if window is not None:
            raise _invalid("window", "use either window or since/until, not both")
        try:
            end = parse_rfc3339_ms(until) if until else now
        except ValueError as exc:
            raise _invalid("until", f"until: {exc}") from exc
        try:
            start = parse_rfc3339_ms(since) if since else end - WINDOWS_MS[default]
        except ValueError as exc:
            raise _invalid("since", f"since: {exc}") from exc
        # Stored times are epoch milliseconds: a window reaching before 1970 holds nothing and breaks bucket maths.
        # Checked on the UTC instant, after the offset: 0001-01-01T00:00:00+23:59 is in year 0.
        if start < 0:
            raise _invalid("since" if since else "until", "the window must not start before 1970-01-01T00:00:00Z")
        for name, bound in (("until", end), ("since", start)):
            if bound > LATEST_MS:
                message = f"{name} must not be later than {ms_to_rfc3339(LATEST_MS)}"
                raise _invalid(name, message)
        if start >= end:
            message = "since must be before until (both are read to the millisecond)"
            raise _invalid("since", message if until else "since must be in the past when until is not given")
        return "custom", start, end
    label = default if window is None else window
    if label not in WINDOWS_MS:
        raise _invalid("window", f"window must be one of {', '.join(WINDOWS_MS)}")
    return label, now - WINDOWS_MS[label], now + 1


def _invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, details=param_details(param, message))


@dataclass(frozen=True)
class Window:
    """A resolved query window: label (e.g. "24h" or "custom") and [start_ms, end_ms)."""

    label: str
    start_ms: int
    end_ms: int
