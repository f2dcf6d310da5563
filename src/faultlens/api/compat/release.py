"""The release contract paths of seed document 004 §3/§7: POST /api/v1/internal/release/replay/e2e and
POST /api/v1/internal/release/readiness/evaluate, thin over the native evidence routes (api/routes/evidence.py).

Internal means the admin scope, the caller's own tenant; the bodies and answers are the native ones, which carry
the document's names: admitted, failed_checks, replay_passed and checks quality/performance/security/cost/rollout/
rollback/ops. Errors answer in the one error body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faultlens.api.deps import Admin, ServicesDep
from faultlens.api.routes import evidence
from faultlens.api.schemas import error_responses
from faultlens.api.schemas import evidence as s

REPLAY_PATH = "/api/v1/internal/release/replay/e2e"
READINESS_PATH = "/api/v1/internal/release/readiness/evaluate"
router = APIRouter(tags=["compat: release"])


@router.post(
    REPLAY_PATH,
    response_model=s.ReplayReport,
    responses=error_responses(400, 403),
    summary="Run a replay suite against an allow-listed target (as POST /api/v1/releases/replays)",
)
def replay_e2e(body: s.ReplayBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return evidence.run_replay(body, principal, services)


@router.post(
    READINESS_PATH,
    response_model=s.ReadinessRecord,
    responses=error_responses(400, 404),
    summary="Evaluate a release's readiness (as POST /api/v1/releases/readiness)",
)
def readiness_evaluate(body: s.ReadinessBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return evidence.evaluate(body, principal, services)
