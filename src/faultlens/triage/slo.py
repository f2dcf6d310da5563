"""SLO hints: per-source objectives (Settings.slo_file), burn rates, and the hint engine every hint source uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection

from faultlens import config_files
from faultlens.errors import InvalidRequest, SloConfigError, param_details
from faultlens.store import rollup_reads
from faultlens.store.rollup_shapes import DAY_MS, HOUR_MS
from faultlens.triage import raw
from faultlens.triage.counts import BY, Counts
from faultlens.triage.counts import ratio as ratio  # the compatibility views read slo.ratio

MINUTE_MS = 60_000
LEVELS = ("info", "warn", "critical")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}
# The one spike window: every failure spike (per source, per task source) compares its last minutes with a baseline.
SPIKE_WINDOW_MS = 15 * MINUTE_MS
SPIKE_WINDOW = f"{SPIKE_WINDOW_MS // MINUTE_MS}m"
SPIKE_WINDOW_TEXT = f"the last {SPIKE_WINDOW_MS // MINUTE_MS} minutes"
# Windows counted back from now: the burn-rate pairs below and the failure-spike window.
RECENT_WINDOWS_MS: dict[str, int] = {
    "5m": 5 * MINUTE_MS,
    SPIKE_WINDOW: SPIKE_WINDOW_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
}


class Objective(BaseModel):
    """What one source promises; a hint fires when the observed value breaks it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Share of events that must not be actionable failures; the error budget is 1 - target.
    actionable_target: float = Field(0.99, gt=0, lt=1)
    success_rate_min: float = Field(0.90, ge=0, le=1)
    failure_rate_max: float = Field(0.20, ge=0, le=1)
    dead_letter_rate_max: float = Field(0.05, ge=0, le=1)
    retry_rate_max: float = Field(0.20, ge=0, le=1)
    category_share_max: float = Field(0.60, gt=0, le=1)
    category_min_failures: int = Field(50, ge=1)
    spike_factor: float = Field(3.0, gt=1)
    spike_min_failures: int = Field(10, ge=1)
    # Below this many events in a window nothing is judged, so one failure among three events does not page.
    min_events: int = Field(20, ge=1)

    @property
    def budget(self) -> float:
        return 1.0 - self.actionable_target


class PartitionObjectives(BaseModel):
    """What the parallel-ops partitions that are not sources promise (triage/partition_hints.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # breakage_open_rate_high: open failure groups / groups of the window above this (critical at 0.9).
    breakage_open_rate_max: float = Field(0.5, ge=0, lt=1)
    breakage_min_groups: int = Field(5, ge=1)
    # overlay_cache_hit_rate_low: the classifier's and fingerprinter's cache hit rate below this (critical at half).
    cache_hit_rate_min: float = Field(0.5, gt=0, le=1)
    cache_min_requests: int = Field(200, ge=1)


class SloConfig(BaseModel):
    """A default objective and per-source overrides (each override is merged onto the default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Objective = Objective()
    sources: dict[str, Objective] = Field(default_factory=dict)
    partitions: PartitionObjectives = PartitionObjectives()

    @model_validator(mode="before")
    @classmethod
    def _merge_overrides(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        default = data.get("default") or {}
        sources = data.get("sources") or {}
        if isinstance(default, dict) and isinstance(sources, dict):
            merged = {name: {**default, **o} if isinstance(o, dict) else o for name, o in sources.items()}
            data = {**data, "sources": merged}
        return data

    def for_source(self, source: str) -> Objective:
        return self.sources.get(source, self.default)


def parse_config(data: Any, *, origin: str) -> SloConfig:
    if data is None:
        data = {}
    try:
        return SloConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()]
        raise SloConfigError(f"{origin}: {'; '.join(problems)}", details={"problems": problems}) from exc


_SLO_FILE = config_files.FileKind("SLO file", SloConfigError, lambda data, origin: parse_config(data, origin=origin))


def load_config(path: Path | None) -> SloConfig:
    """The objectives in `path` (YAML or JSON), re-read when the file changes; defaults without a file."""
    return SloConfig() if path is None else config_files.load(path, _SLO_FILE)


@dataclass(frozen=True, slots=True)
class Hint:
    """One finding of the hint engine; `window` is what it was judged over ("7d", "1h/5m", SPIKE_WINDOW)."""

    code: str
    level: str
    source: str
    observed: float
    threshold: float
    message: str
    window: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "level": self.level,
            "source": self.source,
            "observed": self.observed,
            "threshold": self.threshold,
            "window": self.window,
            "message": self.message,
        }


def level_past(observed: float, limit: float, *, critical_at: float | None = None) -> str | None:
    """A value past its maximum: warn, critical from `critical_at` (twice the maximum unless given); None within."""
    if observed <= limit:
        return None
    return "critical" if observed >= (2 * limit if critical_at is None else critical_at) else "warn"


def judge_spike(now: float, base: float, *, factor: float, floor: float = 0.0) -> tuple[str, float] | None:
    """(level, limit) when the spike window's value reaches `factor` times its baseline value and `floor`:
    warn, critical at twice the limit. Rates or counts per spike window, as long as both are the same."""
    limit = max(floor, base * factor)
    if now < limit or now <= base:
        return None
    return ("critical" if now >= 2 * limit else "warn"), limit


def dominant(categories: Mapping[str, int]) -> tuple[str, int]:
    """The category with the most failures; of equals, the first by name."""
    return min(categories.items(), key=lambda kv: (-kv[1], kv[0]))


def pct(value: float) -> str:
    return f"{value * 100:.3g}%"


@dataclass(frozen=True, slots=True)
class BurnRule:
    level: str
    long: str
    short: str
    factor: float


# The multi-window, multi-burn-rate rules of the Google SRE workbook: both windows must burn at the factor.
BURN_RULES = (
    BurnRule("critical", "1h", "5m", 14.4),
    BurnRule("critical", "6h", "30m", 6.0),
    BurnRule("warn", "1d", "2h", 3.0),
    BurnRule("warn", "3d", "6h", 1.0),
)


def burn_rate(counts: Counts, budget: float) -> float:
    return counts.actionable_rate / budget


def judge_burn(
    windows: Mapping[str, Counts], *, budget: float, min_events: int
) -> tuple[BurnRule, float, float] | None:
    """The most severe rule whose long and short windows both burn at its factor: (rule, long burn, short burn)."""
    empty = Counts()
    for rule in BURN_RULES:
        long, short = windows.get(rule.long, empty), windows.get(rule.short, empty)
        if long.total < min_events or short.total < min_events:
            continue
        long_burn, short_burn = burn_rate(long, budget), burn_rate(short, budget)
        if long_burn >= rule.factor and short_burn >= rule.factor:
            return rule, long_burn, short_burn
    return None


def _above(source: str, code: str, what: str, observed: float, limit: float, window: str) -> Hint | None:
    """A rate-above-its-maximum hint: warn past the maximum, critical at twice it."""
    level = level_past(observed, limit)
    if level is None:
        return None
    return Hint(
        code,
        level,
        source,
        observed,
        limit,
        f"{source}: {what} {pct(observed)} over {window} is above the objective of {pct(limit)}",
        window,
    )


def threshold_hints(source: str, counts: Counts, objective: Objective, *, window: str) -> list[Hint]:
    """Hints judged over the whole query window; nothing below the objective's minimum volume."""
    o = objective
    if counts.total < o.min_events:
        return []
    hints: list[Hint] = []
    success = counts.success_rate
    if success < o.success_rate_min:
        shortfall, allowed = 1 - success, 1 - o.success_rate_min
        level = "critical" if shortfall >= 2 * allowed else "warn"
        hints.append(
            Hint(
                "success_rate_low",
                level,
                source,
                success,
                o.success_rate_min,
                f"{source}: success rate {pct(success)} over {window} is below the objective of "
                f"{pct(o.success_rate_min)}",
                window,
            )
        )
    for code, what, rate, limit in (
        ("failure_rate_high", "failure rate", counts.failure_rate, o.failure_rate_max),
        ("dead_letter_rate_high", "dead-letter rate", counts.dead_letter_rate, o.dead_letter_rate_max),
        ("retry_rate_high", "retry rate", counts.retry_rate, o.retry_rate_max),
    ):
        hint = _above(source, code, what, rate, limit, window)
        if hint is not None:
            hints.append(hint)
    if counts.failures >= o.category_min_failures and counts.categories:
        category, n = dominant(counts.categories)
        share = ratio(n, counts.failures)
        if share > o.category_share_max:
            hints.append(
                Hint(
                    "category_dominant",
                    "info",
                    source,
                    share,
                    o.category_share_max,
                    f"{source}: {pct(share)} of {counts.failures} failures over {window} are "
                    f"{category}; look there first",
                    window,
                )
            )
    return hints


def burn_hint(source: str, windows: Mapping[str, Counts], objective: Objective) -> Hint | None:
    verdict = judge_burn(windows, budget=objective.budget, min_events=objective.min_events)
    if verdict is None:
        return None
    rule, long_burn, short_burn = verdict
    return Hint(
        "actionable_failure_rate_high",
        rule.level,
        source,
        round(long_burn, 3),
        rule.factor,
        f"{source}: actionable failures burn the {pct(objective.budget)} error budget {long_burn:.1f}x over "
        f"{rule.long} and {short_burn:.1f}x over {rule.short} (threshold {rule.factor:g}x)",
        f"{rule.long}/{rule.short}",
    )


def spike_hint(source: str, baseline: Counts, recent: Counts, objective: Objective, *, window: str) -> Hint | None:
    """The failure rate of the spike window against the rate of the whole window."""
    o = objective
    if recent.failures < o.spike_min_failures or baseline.total < o.min_events:
        return None
    base, now = baseline.failure_rate, recent.failure_rate
    verdict = judge_spike(now, base, factor=o.spike_factor)
    if verdict is None:
        return None
    level, limit = verdict
    times = f"{now / base:.1f}x" if base else "far above"
    return Hint(
        "failure_spike",
        level,
        source,
        now,
        limit,
        f"{source}: {pct(now)} of events failed in {SPIKE_WINDOW_TEXT}, {times} the {window} rate of {pct(base)}",
        SPIKE_WINDOW,
    )


def build_hints(
    *,
    window_counts: Mapping[str, Counts],
    recent: Mapping[str, Mapping[str, Counts]],
    config: SloConfig,
    window: str,
) -> list[Hint]:
    """All hints for the given sources, most severe first."""
    hints: list[Hint] = []
    empty = Counts()
    for source, counts in window_counts.items():
        objective = config.for_source(source)
        windows = recent.get(source, {})
        hints += threshold_hints(source, counts, objective, window=window)
        for hint in (
            burn_hint(source, windows, objective),
            spike_hint(source, counts, windows.get(SPIKE_WINDOW, empty), objective, window=window),
        ):
            if hint is not None:
                hints.append(hint)
    hints.sort(key=lambda h: (-LEVEL_RANK[h.level], h.source, h.code))
    return hints


def check_level(level: str | None) -> None:
    if level is not None and level not in LEVEL_RANK:
        message = f"level must be one of {', '.join(LEVELS)}"
        raise InvalidRequest(message, details=param_details("level", message))


def summarize(hints: Iterable[Hint], *, level: str | None = None) -> dict[str, Any]:
    """The alerts view: status is the worst level of all hints (info counts as ok); the rest respects `level`."""
    check_level(level)
    hints = list(hints)
    worst = max((LEVEL_RANK[h.level] for h in hints), default=0)
    status = "ok" if worst == 0 else LEVELS[worst]
    floor = LEVEL_RANK[level] if level else 0
    kept = [h for h in hints if LEVEL_RANK[h.level] >= floor]
    by_code: dict[str, int] = {}
    for h in kept:
        by_code[h.code] = by_code.get(h.code, 0) + 1
    return {"status": status, "total": len(kept), "by_code": by_code, "hints": [h.as_dict() for h in kept]}


def count_recent(
    conn: Connection,
    *,
    tenant: str,
    now: int,
    attrs: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Counts]]:
    """Counts per source for each of RECENT_WINDOWS_MS, ending now.

    Windows up to an hour are exact: minute rollups back from now with raw edges under a minute (raw events
    back from now under attribute filters, or where minute rows are missing). Longer ones add up hourly rollups
    (the current hour's row holds the events so far) from the hour boundary nearest to their start, so they are
    within 30 minutes of their nominal length. Each group is a query of conditional sums, a row per source and
    status. `where` narrows them by rollup dimensions (release, environment), like the window's counts.
    """
    end = now + 1
    hour_end = now // HOUR_MS * HOUR_MS + HOUR_MS
    short = {label: end - width for label, width in RECENT_WINDOWS_MS.items() if width <= HOUR_MS}
    long = {
        label: (end - width + HOUR_MS // 2) // HOUR_MS * HOUR_MS
        for label, width in RECENT_WINDOWS_MS.items()
        if width > HOUR_MS
    }
    by = ("source", *BY)
    out: dict[str, dict[str, Counts]] = {}
    for starts, until in ((short, end), (long, hour_end)):
        labels = list(starts)
        if attrs:
            rows = raw.count_since(
                conn, tenant=tenant, starts=list(starts.values()), end=until, by=by, where=where, attrs=attrs
            )
        else:
            rows = rollup_reads.count_since(
                conn, tenant=tenant, starts=list(starts.values()), end=until, by=by, where=where
            )
        for (source, status, failure_class, is_actionable), counts in rows.items():
            windows = out.setdefault(source, {})
            for label, n in zip(labels, counts, strict=True):
                if n:
                    windows.setdefault(label, Counts()).add(
                        status=status, failure_class=failure_class, is_actionable=is_actionable, n=n
                    )
    return out
