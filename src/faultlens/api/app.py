"""The ASGI application: create_app(services) wires routes, the error handler and the request id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from faultlens import __version__, background
from faultlens.api import docs, errors, params, readiness
from faultlens.api import guard as browser_guard
from faultlens.api.access_log import AccessLog
from faultlens.api.body_deadline import BodyDeadline
from faultlens.api.compat import codebase_embedder, invocations, ops_summary, otlp, parallel_ops
from faultlens.api.compat import release as release_contracts
from faultlens.api.concurrency import ConcurrencyLimit, IngestLimit, IngestSlots
from faultlens.api.context import RequestIds
from faultlens.api.deps import _KeysPresent, nul_guard
from faultlens.api.head import HeadAsGet
from faultlens.api.http_metrics import HttpMetrics
from faultlens.api.routes import (
    alerting,
    events,
    fingerprints,
    jobs,
    metrics,
    overview,
    release_timeline,
    rules,
    stats,
    tasks,
    traces,
)
from faultlens.api.routes import canary as canary_routes
from faultlens.api.routes import evidence as evidence_routes
from faultlens.api.routes import groups as group_routes
from faultlens.api.routes import releases as release_routes
from faultlens.api.routes import rollouts as rollout_routes
from faultlens.api.security_signals import SignalRecorder
from faultlens.api.usage import UsageMiddleware, UsageRecorder
from faultlens.services import Services
from faultlens.web import routes as web


def create_app(services: Services) -> FastAPI:
    usage = UsageRecorder(services.engine, interval_s=services.settings.api_usage_flush_interval_s)
    signals = SignalRecorder(services.engine, interval_s=services.settings.api_usage_flush_interval_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stoppers = background.start_all(services) if services.settings.start_jobs else []
        usage.start()
        stoppers.insert(0, usage.stop)  # stopped last: the other stoppers' requests are answered by then
        signals.start()
        stoppers.insert(0, signals.stop)
        try:
            yield
        finally:
            for stop in reversed(stoppers):
                stop()
            services.save_fingerprints()

    contract_codes = {parallel_ops.router.prefix + "/": parallel_ops.CODE}
    guards = [Depends(nul_guard(contract_codes)), Depends(params.unknown_params_guard(contract_codes))]
    # /openapi.json and /docs are served by api.docs: offline assets, the API's auth; no CDN-hosted ReDoc.
    app = FastAPI(
        title="faultlens",
        version=__version__,
        lifespan=lifespan,
        dependencies=guards,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.keys_present = _KeysPresent()
    app.state.api_usage = usage
    app.state.security_signals = signals  # refusals counted for the P0 alerts (api/security_signals.py)
    errors.install(app)
    docs.install(app)

    @app.get("/healthz", tags=["health"], summary="Liveness: answers without touching event data")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    routers = (
        events.router,
        stats.router,
        overview.router,
        fingerprints.router,
        group_routes.router,
        rules.router,
        jobs.router,
        tasks.router,
        traces.router,
        alerting.router,
        release_timeline.router,
        canary_routes.router,
        release_routes.router,
        rollout_routes.router,
        evidence_routes.router,
        metrics.router,
        invocations.router,
        parallel_ops.router,
        ops_summary.router,
        release_contracts.router,
        codebase_embedder.router,
        otlp.router,
        web.router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(readiness.router)
    # Inside the body deadline: an ingest batch waits for one of the replica's ingest places (a short queue, then
    # 503 server_busy) once its whole body has arrived, so batches never run side by side past the bound.
    settings = services.settings
    slots = IngestSlots(
        limit=settings.ingest_concurrency, queue=settings.ingest_queue, wait_s=settings.ingest_queue_timeout_s
    )
    app.state.ingest_slots = slots
    app.add_middleware(
        IngestLimit,
        slots=slots,
        paths=frozenset({events.router.prefix + "/events", otlp.TRACES_PATH, otlp.LOGS_PATH}),
        retry_after_s=settings.busy_retry_after_s,
        error_bodies=dict.fromkeys(otlp.PATHS, otlp.status_response),
    )
    # Added last, so outermost: a slow sender is cut off whichever route reads the body.
    app.add_middleware(
        BodyDeadline,
        timeout_s=services.settings.request_body_timeout_s,
        counter=services.metrics.http_body_read_timeouts,
    )
    # HEAD runs as GET wherever GET is served; the codebase-embedder contract keeps its documented HEAD 405.
    app.add_middleware(HeadAsGet, routes_of=app, contract_paths={codebase_embedder.PATH})
    # Outside the body deadline: a request past the replica's cap answers 503 server_busy before its body is read
    # (inside the guard: a refused Host takes no place; inside the ids, metrics and access log: the 503 has them).
    app.add_middleware(
        ConcurrencyLimit,
        limit=services.settings.max_concurrent_requests,
        retry_after_s=services.settings.busy_retry_after_s,
        counter=services.metrics.http_requests_shed,
        envelopes={codebase_embedder.PATH: codebase_embedder.envelope},
        error_bodies=dict.fromkeys(otlp.PATHS, otlp.status_response),
    )
    # Outside even the body deadline: a wrong Host, Origin or write media type is refused before a body is read.
    browser_guard.install(
        app,
        services.settings,
        envelopes={codebase_embedder.PATH: codebase_embedder.envelope},
        error_bodies=dict.fromkeys(otlp.PATHS, otlp.status_response),
    )
    # Requests by route template, method and status class, and their latency (api/http_metrics.py): outside the
    # guard and the body deadline, so their refusals count too.
    app.add_middleware(
        HttpMetrics, requests=services.metrics.http_requests, seconds=services.metrics.http_request_seconds
    )
    # Per-tenant usage (api/usage.py): timed around everything but the access log; counted once a key's tenant is known.
    app.add_middleware(UsageMiddleware, recorder=usage)
    # Request, correlation and trace ids (api/context.py): bound for every log line inside, the access log's included,
    # and answered in the headers and error bodies of every answer, the guard's refusals included.
    app.add_middleware(RequestIds, tracing=services.tracing)
    # Outermost: every answer, the guard's refusals included, gets one access log line (no query string).
    app.add_middleware(AccessLog)
    if services.tracing is not None:
        # Around all of the above; the OTLP receiver's own requests are never traced (no export loop).
        services.tracing.instrument_app(app, excluded_paths=otlp.PATHS)
    return app
