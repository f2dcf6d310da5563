"""The canary_analyses table: every canary judgement with its inputs, written once and read by tenant.

Records are dicts with times as epoch ms: {id, tenant, rollout_id, baseline, canary, environment, source, since,
until, verdict, score, metrics, reasons, expected, arms, requested_by, created_at} (metrics/reasons/expected/arms
are the `result` JSON column's parts).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from faultlens.errors import AnalysisNotFound
from faultlens.store.tables import canary_analyses

_c = canary_analyses.c
_RESULT_KEYS = ("metrics", "reasons", "expected", "arms")


def create_analysis(
    conn: Connection,
    *,
    tenant: str,
    rollout_id: str | None,
    baseline: str,
    canary: str,
    environment: str,
    source: str | None,
    since: int,
    until: int,
    verdict: str,
    score: float,
    result: Mapping[str, Any],
    requested_by: str,
    created_at: int,
) -> dict[str, Any]:
    """Insert one analysis; `result` holds metrics, reasons, expected and arms. Returns the stored record."""
    row = {
        "id": str(uuid.uuid4()),
        "tenant": tenant,
        "rollout_id": rollout_id,
        "baseline": baseline,
        "canary": canary,
        "environment": environment,
        "source": source,
        "since": since,
        "until": until,
        "verdict": verdict,
        "score": score,
        "result": json.dumps({k: result.get(k) for k in _RESULT_KEYS}, ensure_ascii=False, sort_keys=True),
        "requested_by": requested_by,
        "created_at": created_at,
    }
    conn.execute(canary_analyses.insert().values(**row))
    return _record(row)


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "result"}
    out["score"] = float(out["score"])
    result = json.loads(row["result"])
    for key in _RESULT_KEYS:
        out[key] = result.get(key)
    return out


def get_analysis(conn: Connection, *, tenant: str, analysis_id: str) -> dict[str, Any]:
    """One analysis of the tenant; another tenant's id is as unknown as a missing one (AnalysisNotFound)."""
    r = conn.execute(select(canary_analyses).where(_c.tenant == tenant, _c.id == analysis_id)).first()
    if r is None:
        raise AnalysisNotFound(f"no canary analysis {analysis_id!r}")
    return _record(dict(r._mapping))


def list_analyses(
    conn: Connection,
    *,
    tenant: str,
    canary: str | None = None,
    rollout_id: str | None = None,
    environment: str | None = None,
    verdict: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The tenant's analyses, newest first, optionally of one canary release / rollout / environment / verdict."""
    q = select(canary_analyses).where(_c.tenant == tenant)
    if canary is not None:
        q = q.where(_c.canary == canary)
    if rollout_id is not None:
        q = q.where(_c.rollout_id == rollout_id)
    if environment is not None:
        q = q.where(_c.environment == environment)
    if verdict is not None:
        q = q.where(_c.verdict == verdict)
    q = q.order_by(_c.created_at.desc(), _c.id.desc()).limit(limit)
    return [_record(dict(r._mapping)) for r in conn.execute(q)]
