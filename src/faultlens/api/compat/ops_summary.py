"""The ops summary contract (seed document 004 §3): GET /api/v1/internal/ops/metrics/summary, shaped by
triage.ops_summary (docs/ops-summary.md).

Internal means the admin scope: the caller's own tenant only, as every tenant-scoped route (an admin key of one
tenant never sees another's figures; process-wide figures stay on /metrics for operator keys). It takes the
native window vocabulary (window=1h..90d or since/until, default 24h) and answers errors in the one error body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faultlens.api import schemas
from faultlens.api.deps import Admin, ServicesDep, WindowDep
from faultlens.timeutil import now_ms
from faultlens.triage import ops_summary, slo

PATH = "/api/v1/internal/ops/metrics/summary"
router = APIRouter(tags=["compat: ops summary"])


@router.get(
    PATH,
    response_model=schemas.OpsSummary,
    summary="The tenant's API, worker, quality, cost and SLO figures over the window, named as the metric dictionary",
)
def get_ops_summary(principal: Admin, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    settings = services.settings
    with services.engine.connect() as conn:
        return ops_summary.build_summary(
            conn,
            tenant=principal.tenant,
            window=window,
            config=slo.load_config(settings.slo_file),
            rule_version=services.classifier_for(principal.tenant).version,
            namespace=ops_summary.namespace(settings),
            now=now_ms(),
        )
