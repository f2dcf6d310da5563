"""Task SLO hints: retries past max, silent retry loops, failure spikes, a dominating category, failure rate."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Connection, func, select

from faultlens.connectors.retry_policy import RetryPolicies
from faultlens.connectors.service import task_category
from faultlens.store.tables import events

SPIKE_WINDOW_MS = 15 * 60_000
_FAILED = ("failure", "dead_letter")
_COUNTED = ("success", "failure", "dead_letter", "cancelled")
_MAX_RETRY_ROWS = 50_000


def _hint(code: str, level: str, observed: float, threshold: float, source: str, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "level": level,
        "observed": observed,
        "threshold": threshold,
        "source": source,
        "message": message,
    }


def _retry_hints(
    conn: Connection, *, tenant: str, start: int, end: int, policies: RetryPolicies
) -> list[dict[str, Any]]:
    c = events.c
    rows = conn.execute(
        select(c.source, c.job_id, c.operation, c.attempt, c.max_attempts)
        .where(
            c.tenant == tenant,
            c.item_type == "task",
            c.status == "retry",
            c.occurred_at >= start,
            c.occurred_at < end,
            c.job_id.is_not(None),
        )
        .order_by(c.occurred_at, c.pk)
        .limit(_MAX_RETRY_ROWS)
    ).all()
    items: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        items[(row.source, row.job_id)].append(row)
    out: list[dict[str, Any]] = []
    loop_after = policies.hints.silent_loop_retries
    for (source, job_id), retries in sorted(items.items()):
        top = max((r.attempt or 0) for r in retries)
        declared = [r.max_attempts for r in retries if r.max_attempts is not None]
        limit = max(declared) if declared else policies.for_type(retries[-1].operation or "").max_retries
        if top > limit:
            out.append(
                _hint(
                    "task_retries_past_max",
                    "critical",
                    top,
                    limit,
                    source,
                    f"task {job_id} is at attempt {top}, past its max_attempts {limit}",
                )
            )
        # A silent loop: retries keep arriving but the attempt counter stopped increasing.
        stuck, best = 0, -1
        for r in retries:
            attempt = r.attempt or 0
            if attempt > best:
                best, stuck = attempt, 1
            else:
                stuck += 1
        if stuck >= loop_after:
            out.append(
                _hint(
                    "task_silent_retry_loop",
                    "warn",
                    stuck,
                    loop_after,
                    source,
                    f"task {job_id} retried {stuck} times without its attempt counter passing {best}",
                )
            )
    return out


def _counts(conn: Connection, *, tenant: str, start: int, end: int) -> list[Any]:
    c = events.c
    return list(
        conn.execute(
            select(c.source, c.status, c.category, func.count().label("n"))
            .where(c.tenant == tenant, c.item_type == "task", c.occurred_at >= start, c.occurred_at < end)
            .group_by(c.source, c.status, c.category)
        ).all()
    )


def task_hints(
    conn: Connection, *, tenant: str, start_ms: int, end_ms: int, policies: RetryPolicies
) -> list[dict[str, Any]]:
    """Hints over the task events of [start_ms, end_ms): dicts of code, level, observed, threshold, source, message.

    The spike compares the last 15 minutes with the rest of the window scaled to 15 minutes.
    """
    t = policies.hints
    out = _retry_hints(conn, tenant=tenant, start=start_ms, end=end_ms, policies=policies)
    recent_start = max(start_ms, end_ms - SPIKE_WINDOW_MS)
    whole = _counts(conn, tenant=tenant, start=start_ms, end=end_ms)
    recent = _counts(conn, tenant=tenant, start=recent_start, end=end_ms)

    failed: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for row in whole:
        if row.status in _COUNTED:
            counted[row.source] += row.n
        if row.status in _FAILED:
            failed[row.source] += row.n
            by_category[row.source][task_category(row.category)] += row.n
    recent_failed: Counter[str] = Counter()
    for row in recent:
        if row.status in _FAILED:
            recent_failed[row.source] += row.n

    baseline_ms = recent_start - start_ms
    for source in sorted(set(failed) | set(counted)):
        now_n = recent_failed[source]
        if baseline_ms > 0:
            per_window = (failed[source] - now_n) * SPIKE_WINDOW_MS / baseline_ms
            threshold = max(float(t.spike_min_failures), t.spike_factor * per_window)
            if now_n >= threshold:
                level = "critical" if now_n >= 2 * threshold else "warn"
                out.append(
                    _hint(
                        "task_failure_spike",
                        level,
                        now_n,
                        round(threshold, 2),
                        source,
                        f"{now_n} task failures in the last 15 minutes against a baseline of "
                        f"{per_window:.1f} per 15 minutes",
                    )
                )
        cats = by_category.get(source)
        total_failed = failed[source]
        if cats and total_failed >= t.dominant_min_failures:
            category, n = max(sorted(cats.items()), key=lambda kv: kv[1])
            share = n / total_failed
            if share >= t.dominant_share:
                out.append(
                    _hint(
                        "task_category_dominates",
                        "warn" if share < 0.9 else "critical",
                        round(share, 4),
                        t.dominant_share,
                        source,
                        f"{category} is {share:.0%} of {total_failed} task failures",
                    )
                )
        total = counted[source]
        if total >= t.failure_rate_min_events:
            rate = total_failed / total
            if rate > t.failure_rate:
                level = "critical" if rate >= min(1.0, 2 * t.failure_rate) else "warn"
                out.append(
                    _hint(
                        "task_failure_rate",
                        level,
                        round(rate, 4),
                        t.failure_rate,
                        source,
                        f"{rate:.0%} of {total} tasks failed (threshold {t.failure_rate:.0%})",
                    )
                )
    return out
