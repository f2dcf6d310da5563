"""The Prometheus endpoint: process metrics plus the scrape-time overview collector, text format 0.0.4."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from faultlens.api.deps import Reader, ServicesDep
from faultlens.triage import metrics_collector

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics (text format 0.0.4) for the caller's tenant")
def metrics(principal: Reader, services: ServicesDep) -> Response:
    registry = services.metrics.registry
    metrics_collector.install(registry, engine=services.engine, settings=services.settings)
    token = metrics_collector.SCRAPE_TENANT.set(principal.tenant)
    try:
        body = generate_latest(registry)
    finally:
        metrics_collector.SCRAPE_TENANT.reset(token)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
