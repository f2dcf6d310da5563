"""The operations overview: per-source partitions over a 1/7/14/30/90-day window, with SLO hints and alerts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from faultlens.errors import InvalidRequest, param_details
from faultlens.model import Status
from faultlens.store.rollup_shapes import DAY_MS
from faultlens.timeutil import Window, ms_to_rfc3339, now_ms
from faultlens.triage import raw, slo
from faultlens.triage.counts import Counts, window_rows

WINDOW_DAYS = (1, 7, 14, 30, 90)
DEFAULT_WINDOW_DAYS = 7
TOP_N = 5
_BY = ("source", "status", "failure_class", "is_actionable", "failure_kind", "category", "error_code")


def window_of(days: int, *, now: int | None = None) -> Window:
    """The last `days` days up to now (end exclusive, so an event stamped now counts)."""
    if days not in WINDOW_DAYS:
        message = f"window_days must be one of {', '.join(map(str, WINDOW_DAYS))}"
        raise InvalidRequest(message, details=param_details("window_days", message))
    now = now_ms() if now is None else now
    return Window(f"{days}d", now - days * DAY_MS, now + 1)


def release_where(release: str | None, environment: str | None) -> dict[str, str]:
    """The rollup filter of a release and/or an environment (neither: every event)."""
    return {k: v for k, v in (("release", release), ("environment", environment)) if v is not None}


def describe_window(window: Window) -> dict[str, Any]:
    return {
        "label": window.label,
        "days": (window.end_ms - 1 - window.start_ms) // DAY_MS,
        "from": ms_to_rfc3339(window.start_ms),
        "to": ms_to_rfc3339(window.end_ms),
    }


@dataclass
class Partition:
    """What the overview knows of one source (or of all of them) over the window."""

    counts: Counts = field(default_factory=Counts)
    kinds: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, key: tuple[Any, ...], n: int, attempts: int) -> None:
        fields = dict(zip(_BY, key, strict=True))
        self.counts.add_row(fields, n, attempts)
        if fields["failure_class"] != "none":
            self.kinds[fields["failure_kind"]] += n
            if fields["error_code"]:
                self.codes[fields["error_code"]] += n

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "total": c.total,
            "status_counts": {s.value: c.of_status(s.value) for s in Status},
            "success_count": c.success,
            "failure_count": c.failures,
            "actionable_failure_count": c.actionable,
            "dead_letter_count": c.dead_letter,
            "retry_count": c.retry,
            "success_rate": c.success_rate,
            "failure_rate": c.failure_rate,
            "actionable_failure_rate": c.actionable_rate,
            "dead_letter_rate": c.dead_letter_rate,
            # Events without an attempt number count as 0: rollups keep the sum, not how many carried one.
            "avg_attempts": c.avg_attempts,
            "top_failure_kinds": [{"failure_kind": k, "count": n} for k, n in _top(self.kinds)],
            "top_error_codes": [{"error_code": k, "count": n} for k, n in _top(self.codes)],
        }


def _top(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]


@dataclass(frozen=True)
class Overview:
    window: Window
    generated_at: int
    filters: dict[str, Any]
    totals: Partition
    sources: dict[str, Partition]
    hints: list[slo.Hint]

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.sources.items(), key=lambda kv: (-kv[1].counts.total, kv[0]))
        return {
            "window": describe_window(self.window),
            "generated_at": ms_to_rfc3339(self.generated_at),
            "filters": self.filters,
            "totals": self.totals.as_dict(),
            "sources": [{"source": name, **p.as_dict()} for name, p in ordered],
            "slo_hints": [h.as_dict() for h in self.hints],
        }


def build_overview(
    conn: Connection,
    *,
    tenant: str,
    days: int | None = None,
    window: Window | None = None,
    config: slo.SloConfig,
    sources: Sequence[str] | None = None,
    attrs: Mapping[str, str] | None = None,
    release: str | None = None,
    environment: str | None = None,
    now: int | None = None,
) -> Overview:
    """Partitions for every source seen in the window (`window`, else the last `days` days), or exactly for
    `sources` (present even when empty); only the events of `release` and `environment` when given."""
    now = now_ms() if now is None else now
    if window is None:
        window = window_of(days if days is not None else DEFAULT_WINDOW_DAYS, now=now)
    attrs = dict(attrs or {})
    scope = release_where(release, environment)
    where = {**scope, "source": sources[0]} if sources is not None and len(sources) == 1 else scope
    rows = window_rows(conn, tenant=tenant, window=window, by=_BY, where=where, attrs=attrs)
    wanted = set(sources) if sources is not None else None
    parts: dict[str, Partition] = {name: Partition() for name in sources or ()}
    totals = Partition()
    for key, (n, attempts) in rows.items():
        if wanted is not None and key[0] not in wanted:
            continue
        parts.setdefault(key[0], Partition()).add(key, n, attempts)
        totals.add(key, n, attempts)
    recent = slo.count_recent(conn, tenant=tenant, now=now, attrs=attrs, where=scope)
    hints = slo.build_hints(
        window_counts={name: p.counts for name, p in parts.items()}, recent=recent, config=config, window=window.label
    )
    filters: dict[str, Any] = {
        "sources": list(sources) if sources is not None else None,
        **{k: attrs.get(k) for k in raw.ATTRIBUTE_FILTERS},
        "release": release,
        "environment": environment,
    }
    return Overview(window, now, filters, totals, parts, hints)


def alerts(
    conn: Connection,
    *,
    tenant: str,
    days: int | None = None,
    window: Window | None = None,
    config: slo.SloConfig,
    level: str | None = None,
    sources: Sequence[str] | None = None,
    attrs: Mapping[str, str] | None = None,
    release: str | None = None,
    environment: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The hints of the overview as an alert view: worst status, counts by code, hints at or above `level`."""
    ov = build_overview(
        conn,
        tenant=tenant,
        days=days,
        window=window,
        config=config,
        sources=sources,
        attrs=attrs,
        release=release,
        environment=environment,
        now=now,
    )
    return {
        "window": describe_window(ov.window),
        "generated_at": ms_to_rfc3339(ov.generated_at),
        "level": level,
        **slo.summarize(ov.hints, level=level),
    }
