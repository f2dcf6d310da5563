"""Canary analysis as a service: resolve the window, read both arms, judge, store the judgement, and answer it
(the analysis dict), plus the Argo Rollouts gate shaped from it.

The analysis dict: {id, rollout_id, baseline, canary, environment, source, since, until, window, verdict, score,
metrics: [{name, verdict, baseline, canary, p_value, reason, baseline_samples, canary_samples, power}],
reasons: [...], expected: {...}, arms: {baseline: {...}, canary: {...}}, created_at, requested_by}, times RFC 3339.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from faultlens.errors import InvalidRequest, param_details
from faultlens.releases.canary import FAIL, INCONCLUSIVE, PASS, judge
from faultlens.settings import Settings
from faultlens.store import canary_analyses as store
from faultlens.store.release_samples import arm_stats
from faultlens.timeutil import LATEST_MS, ms_to_rfc3339, now_ms, parse_rfc3339_ms

MAX_WINDOW_MS = 24 * 3_600_000
_WINDOW = re.compile(r"(\d{1,5})(m|h)", re.ASCII)


@dataclass(frozen=True)
class CanaryWindow:
    label: str  # "30m", "2h", or "custom"
    since: int
    until: int


def _invalid(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, details=param_details(name, message, location="body"))


def parse_window(value: str) -> int:
    """'30m' / '2h' -> milliseconds (1 minute .. 24 hours); ValueError otherwise."""
    match = _WINDOW.fullmatch(value)
    if match is None:
        raise ValueError("window must be minutes or hours, e.g. 30m or 2h")
    ms = int(match.group(1)) * (60_000 if match.group(2) == "m" else 3_600_000)
    if not 0 < ms <= MAX_WINDOW_MS:
        raise ValueError("window must be between 1m and 24h")
    return ms


def _instant(name: str, value: str | int) -> int:
    if isinstance(value, int):
        ms = value
    else:
        try:
            ms = parse_rfc3339_ms(value)
        except ValueError as exc:
            raise _invalid(name, f"{name}: {exc}") from None
    if not 0 <= ms <= LATEST_MS:
        raise _invalid(name, f"{name} must be between 1970-01-01 and {ms_to_rfc3339(LATEST_MS)}")
    return ms


def resolve_window(
    settings: Settings,
    *,
    window: str | None = None,
    since: str | int | None = None,
    until: str | int | None = None,
    now: int | None = None,
) -> CanaryWindow:
    """The analysis window: `window` ending now, or since/until (RFC 3339 or epoch ms; either alone pairs with the
    default duration), or the default RELEASE_CANARY_DURATION_MIN ending now. At most 24 hours."""
    now = now_ms() if now is None else now
    default_ms = int(settings.release_canary_duration_min * 60_000)
    if window is not None:
        if since is not None or until is not None:
            raise _invalid("window", "use either window or since/until, not both")
        try:
            ms = parse_window(window)
        except ValueError as exc:
            raise _invalid("window", str(exc)) from None
        return CanaryWindow(window, now - ms, now)
    if since is None and until is None:
        return CanaryWindow(f"{settings.release_canary_duration_min:g}m", now - default_ms, now)
    end = _instant("until", until) if until is not None else now
    start = _instant("since", since) if since is not None else end - default_ms
    if start >= end:
        raise _invalid("since", "since must be before until")
    if end - start > MAX_WINDOW_MS:
        raise _invalid("since", "a canary window spans at most 24 hours")
    return CanaryWindow("custom", max(start, 0), end)


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the API answers it: times RFC 3339, the tenant left out."""
    out = {k: v for k, v in record.items() if k != "tenant"}
    for key in ("since", "until", "created_at"):
        out[key] = ms_to_rfc3339(record[key])
    return out


def analyze(
    engine: Engine,
    *,
    tenant: str,
    baseline: str,
    canary: str,
    environment: str,
    source: str | None,
    since: int,
    until: int,
    settings: Settings,
    requested_by: str,
    rollout_id: str | None = None,
    ratio: float | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Judge `canary` against `baseline` over [since, until) and store the judgement; the stored analysis dict.

    `ratio` is the canary's expected share of traffic (default RELEASE_CANARY_RATIO; a rollout passes its own).
    """
    if baseline == canary:
        raise _invalid("canary", "the canary and the baseline must be different releases")
    with engine.begin() as conn:
        arms = {
            name: arm_stats(
                conn, tenant=tenant, release=release, environment=environment, source=source, since=since, until=until
            )
            for name, release in (("baseline", baseline), ("canary", canary))
        }
        judgement = judge(
            arms["baseline"],
            arms["canary"],
            alpha=settings.release_canary_alpha,
            min_samples=settings.release_canary_min_samples,
            ratio=settings.release_canary_ratio if ratio is None else ratio,
        )
        result = {**judgement.as_dict(), "arms": {k: v.summary() for k, v in arms.items()}}
        record = store.create_analysis(
            conn,
            tenant=tenant,
            rollout_id=rollout_id,
            baseline=baseline,
            canary=canary,
            environment=environment,
            source=source,
            since=since,
            until=until,
            verdict=judgement.verdict,
            score=judgement.score,
            result=result,
            requested_by=requested_by,
            created_at=now_ms() if now is None else now,
        )
    return public(record)


def get_analysis(engine: Engine, *, tenant: str, analysis_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return public(store.get_analysis(conn, tenant=tenant, analysis_id=analysis_id))


def list_analyses(
    engine: Engine,
    *,
    tenant: str,
    canary: str | None = None,
    rollout_id: str | None = None,
    environment: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = store.list_analyses(
            conn, tenant=tenant, canary=canary, rollout_id=rollout_id, environment=environment, limit=limit
        )
    return [public(r) for r in found]


def _blocked_reason(conn: Connection, *, tenant: str, release: str, environment: str) -> str | None:
    # Imported here, not at the top: releases.rollouts (rollbacks and their replays) calls analyze() of this
    # module. No fallback when it is missing: a gate that cannot tell whether a release is blocked must not pass it.
    from faultlens.releases.rollouts import blocked_reason

    return blocked_reason(conn, tenant=tenant, release=release, environment=environment)


def argo_gate(
    engine: Engine,
    *,
    tenant: str,
    baseline: str,
    canary: str,
    environment: str,
    source: str | None,
    since: int,
    until: int,
    settings: Settings,
    requested_by: str,
) -> dict[str, Any]:
    """Run and store an analysis and answer it for Argo Rollouts' Web metric provider (successCondition
    `result.passed == true`, failureCondition `result.failed == true`). A canary release that was rolled back and
    has no passing replay since fails as "blocked" whatever its traffic says."""
    found = analyze(
        engine,
        tenant=tenant,
        baseline=baseline,
        canary=canary,
        environment=environment,
        source=source,
        since=since,
        until=until,
        settings=settings,
        requested_by=requested_by,
    )
    verdict, reasons = found["verdict"], list(found["reasons"])
    with engine.connect() as conn:
        blocked = _blocked_reason(conn, tenant=tenant, release=canary, environment=environment)
    if blocked is not None:
        verdict = FAIL
        reasons.insert(0, f"blocked: {blocked}")
    return {
        "verdict": verdict,
        "passed": verdict == PASS,
        "failed": verdict == FAIL,
        "inconclusive": verdict == INCONCLUSIVE,
        "blocked": blocked is not None,
        "score": found["score"],
        "analysis_id": found["id"],
        "reasons": reasons,
    }
