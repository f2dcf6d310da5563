"""Task SLO hints: what they measure (retries past max, silent retry loops, task failures by source and category).

The judgements (levels, the spike window and rule, a dominating category) are the hint engine's, in triage/slo.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Connection

from faultlens.connectors.categories import task_category
from faultlens.connectors.retry_policy import RetryPolicies
from faultlens.store import rollup_reads, task_retries
from faultlens.triage import slo

_FAILED = ("failure", "dead_letter")
_ENDED = ("success", "failure", "dead_letter", "cancelled")
_DOMINANT_CRITICAL = 0.9  # a category holding this share of task failures is critical, not a warning
_MAX_RETRY_ROWS = 50_000


def _shown(hint: slo.Hint) -> dict[str, Any]:
    """The task hint as the API shows it: without the judged window."""
    return {
        "code": hint.code,
        "level": hint.level,
        "observed": hint.observed,
        "threshold": hint.threshold,
        "source": hint.source,
        "message": hint.message,
    }


def _retry_hints(
    conn: Connection, *, tenant: str, start: int, end: int, policies: RetryPolicies, window: str
) -> list[slo.Hint]:
    rows = task_retries.list_task_retries(conn, tenant=tenant, start=start, end=end, limit=_MAX_RETRY_ROWS)
    items: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        items[(row.source, row.job_id)].append(row)
    out: list[slo.Hint] = []
    loop_after = policies.hints.silent_loop_retries
    for (source, job_id), retries in sorted(items.items()):
        top = max((r.attempt or 0) for r in retries)
        declared = [r.max_attempts for r in retries if r.max_attempts is not None]
        limit = max(declared) if declared else policies.for_type(retries[-1].operation or "").max_retries
        if top > limit:
            out.append(
                slo.Hint(
                    "task_retries_past_max",
                    "critical",
                    source,
                    top,
                    limit,
                    f"task {job_id} is at attempt {top}, past its max_attempts {limit}",
                    window,
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
                slo.Hint(
                    "task_silent_retry_loop",
                    "warn",
                    source,
                    stuck,
                    loop_after,
                    f"task {job_id} retried {stuck} times without its attempt counter passing {best}",
                    window,
                )
            )
    return out


def _task_failures(conn: Connection, *, tenant: str, start: int, end: int) -> dict[str, tuple[int, int, Counter[str]]]:
    """Per source: (tasks that ended, failed tasks, failed tasks by task category) over [start, end).

    Tasks count by status, whatever their failure class: a retry has not ended, a cancellation is no failure.
    """
    rows = rollup_reads.aggregate(
        conn, tenant=tenant, start=start, end=end, by=("source", "status", "category"), where={"item_type": "task"}
    )
    out: dict[str, tuple[int, int, Counter[str]]] = {}
    for (source, status, category), (n, _attempts) in rows.items():
        ended, failed, categories = out.get(source, (0, 0, Counter()))
        if status in _FAILED:
            failed += n
            categories[task_category(category)] += n
        out[source] = (ended + n if status in _ENDED else ended, failed, categories)
    return out


def task_hints(
    conn: Connection, *, tenant: str, start_ms: int, end_ms: int, policies: RetryPolicies
) -> list[dict[str, Any]]:
    """Hints over the task events of [start_ms, end_ms): dicts of code, level, observed, threshold, source, message.

    The spike compares the failures of the spike window (slo.SPIKE_WINDOW_MS) with the rest of the window's,
    scaled to the same length.
    """
    t = policies.hints
    window = f"{(end_ms - start_ms) // 1000}s"
    hints = _retry_hints(conn, tenant=tenant, start=start_ms, end=end_ms, policies=policies, window=window)
    recent_start = max(start_ms, end_ms - slo.SPIKE_WINDOW_MS)
    whole = _task_failures(conn, tenant=tenant, start=start_ms, end=end_ms)
    recent = _task_failures(conn, tenant=tenant, start=recent_start, end=end_ms)
    baseline_ms = recent_start - start_ms
    for source in sorted(whole):
        total, failed, categories = whole[source]
        if baseline_ms > 0:
            now_n = recent[source][1] if source in recent else 0
            per_window = (failed - now_n) * slo.SPIKE_WINDOW_MS / baseline_ms
            spike = slo.judge_spike(now_n, per_window, factor=t.spike_factor, floor=float(t.spike_min_failures))
            if spike is not None:
                level, threshold = spike
                hints.append(
                    slo.Hint(
                        "task_failure_spike",
                        level,
                        source,
                        now_n,
                        round(threshold, 2),
                        f"{now_n} task failures in {slo.SPIKE_WINDOW_TEXT} against a baseline of "
                        f"{per_window:.1f} per {slo.SPIKE_WINDOW_MS // slo.MINUTE_MS} minutes",
                        slo.SPIKE_WINDOW,
                    )
                )
        if categories and failed >= t.dominant_min_failures:
            category, n = slo.dominant(categories)
            share = n / failed
            if share >= t.dominant_share:
                hints.append(
                    slo.Hint(
                        "task_category_dominates",
                        "warn" if share < _DOMINANT_CRITICAL else "critical",
                        source,
                        round(share, 4),
                        t.dominant_share,
                        f"{category} is {share:.0%} of {failed} task failures",
                        window,
                    )
                )
        if total >= t.failure_rate_min_events:
            rate = failed / total
            rate_level = slo.level_past(rate, t.failure_rate, critical_at=min(1.0, 2 * t.failure_rate))
            if rate_level is not None:
                hints.append(
                    slo.Hint(
                        "task_failure_rate",
                        rate_level,
                        source,
                        round(rate, 4),
                        t.failure_rate,
                        f"{rate:.0%} of {total} tasks failed (threshold {t.failure_rate:.0%})",
                        window,
                    )
                )
    return [_shown(h) for h in hints]
