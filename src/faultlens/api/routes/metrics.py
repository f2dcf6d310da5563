"""The Prometheus endpoint: process metrics plus the scrape-time overview collector, text format 0.0.4."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from faultlens.api.deps import Reader, ServicesDep
from faultlens.triage import metrics_collector

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (text format 0.0.4): the caller's tenant; process-wide series with operator scope",
)
def metrics(principal: Reader, services: ServicesDep) -> Response:
    tenant_registry = services.metrics.tenant_registry
    metrics_collector.install(tenant_registry, engine=services.engine, settings=services.settings)
    token = metrics_collector.SCRAPE_TENANT.set(principal.tenant)
    try:
        body = generate_latest(tenant_registry)
    finally:
        metrics_collector.SCRAPE_TENANT.reset(token)
    # Ingest volume, jobs and HTTP series are shared by all tenants: a tenant's key must not see the others'
    # traffic in them, so they are served to an operator key (and in open mode, where there is one tenant).
    if "operator" in principal.scopes:
        body += generate_latest(services.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
