"""The api_usage table: requests answered per tenant, minute and status class, with a latency histogram."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store.tables import api_usage

MINUTE_MS = 60_000
# Upper bounds of the latency buckets in milliseconds; the last bucket (le_inf) holds everything slower.
LATENCY_BUCKETS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKET_COLUMNS: tuple[str, ...] = (*(f"le_{b}" for b in LATENCY_BUCKETS_MS), "le_inf")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

# (tenant, minute start in epoch ms, status class)
UsageKey = tuple[str, int, str]


@dataclass
class Usage:
    """Requests of one key: how many, their summed duration and how many fell in each latency bucket."""

    requests: int = 0
    duration_ms_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_COLUMNS))

    def add(self, duration_ms: float) -> None:
        self.requests += 1
        self.duration_ms_sum += duration_ms
        self.buckets[bucket_index(duration_ms)] += 1

    def merge(self, other: Usage) -> None:
        self.requests += other.requests
        self.duration_ms_sum += other.duration_ms_sum
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n


def bucket_index(duration_ms: float) -> int:
    for i, bound in enumerate(LATENCY_BUCKETS_MS):
        if duration_ms <= bound:
            return i
    return len(LATENCY_BUCKETS_MS)


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


def add_usage(conn: Connection, rows: Mapping[UsageKey, Usage]) -> None:
    """Add `rows` to the table in one statement: a row already there (another replica's, an earlier flush's)
    gets the counts added, never replaced. Keys are written in sorted order, so two replicas lock alike."""
    if not rows:
        return
    values = [
        {
            "tenant": tenant,
            "minute": minute,
            "status_class": status_class,
            "requests": usage.requests,
            "duration_ms_sum": usage.duration_ms_sum,
            **dict(zip(BUCKET_COLUMNS, usage.buckets, strict=True)),
        }
        for (tenant, minute, status_class), usage in sorted(rows.items())
    ]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(api_usage).values(values)
    added = ("requests", "duration_ms_sum", *BUCKET_COLUMNS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "minute", "status_class"],
        set_={name: api_usage.c[name] + stmt.excluded[name] for name in added},
    )
    conn.execute(stmt)


@dataclass(frozen=True)
class UsageTotals:
    """A tenant's requests over a span of minutes: by status class, and the latency histogram of them all."""

    by_class: dict[str, int]
    buckets: tuple[int, ...]
    duration_ms_sum: float

    @property
    def requests(self) -> int:
        return sum(self.by_class.values())


def sum_usage(conn: Connection, *, tenant: str, start: int, end: int) -> UsageTotals:
    """The tenant's usage over the minutes that start in [minute_of(start), end)."""
    c = api_usage.c
    cols: list[Any] = [c.status_class, func.sum(c.requests), func.sum(c.duration_ms_sum)]
    cols += [func.sum(c[name]) for name in BUCKET_COLUMNS]
    stmt = (
        select(*cols).where(c.tenant == tenant, c.minute >= minute_of(start), c.minute < end).group_by(c.status_class)
    )
    by_class: dict[str, int] = {}
    buckets = [0] * len(BUCKET_COLUMNS)
    duration = 0.0
    for status_class, requests, duration_sum, *counts in conn.execute(stmt).all():
        by_class[str(status_class)] = int(requests or 0)
        duration += float(duration_sum or 0.0)
        for i, n in enumerate(counts):
            buckets[i] += int(n or 0)
    return UsageTotals(by_class, tuple(buckets), duration)


def quantile_s(buckets: tuple[int, ...], q: float) -> float | None:
    """The q-quantile in seconds estimated from the histogram, interpolated linearly inside its bucket (as
    Prometheus' histogram_quantile does); the largest finite bound when it falls in le_inf; None without data."""
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i == len(LATENCY_BUCKETS_MS):
                return LATENCY_BUCKETS_MS[-1] / 1000
            lower = 0 if i == 0 else LATENCY_BUCKETS_MS[i - 1]
            upper = LATENCY_BUCKETS_MS[i]
            value_ms = lower + (upper - lower) * max(0.0, rank - seen) / n
            return round(value_ms / 1000, 6)
        seen += n
    return LATENCY_BUCKETS_MS[-1] / 1000  # not reached: the ranks above cover the total
