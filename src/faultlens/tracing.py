"""faultlens' own traces: the OpenTelemetry SDK, on only when an OTLP endpoint is set (docs/tracing.md).

Off (no endpoint): `start` returns None and nothing is installed: no provider, no middleware, no library patched.
On: one TracerProvider (service.name, service.version), a BatchSpanProcessor exporting over OTLP/HTTP with a
deadline, and instrumentation of the app (server spans named by route template; the OTLP receiver's paths are
left out, so exports to faultlens itself never trace themselves), the SQLAlchemy engines, redis-py and httpx.
Set up by the composition root (services.build_services) and the app (api/app.create_app).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, format_span_id, format_trace_id

from faultlens import __version__, request_context
from faultlens.settings import Settings

# The SDK, the exporter and the instrumentations are imported when tracing starts, never by a process that leaves
# it off: every CLI command imports this module, and they would cost it half a second of start-up.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy import Engine

log = logging.getLogger("faultlens.tracing")

DEFAULT_SERVICE_NAME = "faultlens"
# The server span's own send/receive child spans say nothing the server span does not, at a cost per message.
_EXCLUDED_SPANS: list[Any] = ["receive", "send"]
_active: Tracing | None = None


def traces_endpoint(settings: Settings) -> str | None:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces."""
    exact = settings.otel_exporter_otlp_traces_endpoint.strip()
    if exact:
        return exact
    base = settings.otel_exporter_otlp_endpoint.strip()
    return base.rstrip("/") + "/v1/traces" if base else None


def excluded_urls(paths: Iterable[str]) -> str:
    """The ASGI instrumentation's exclusion patterns (matched against scheme://host/path, no query) for `paths`."""
    return ",".join(rf"^[a-z]+://[^/]*{re.escape(path)}$" for path in paths)


# Span attributes that carry the request's URL or target; the query string is cut from them, as from the access
# log: its values (filters, cursors, a key pasted into a URL) do not belong in a tracing backend.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")


def _without_query(span: Span, _scope: dict[str, Any]) -> None:
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def _active_span_ids() -> tuple[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format_trace_id(ctx.trace_id), format_span_id(ctx.span_id)


class Tracing:
    """The process' tracing while it is on: its provider and what it instrumented, undone by `shutdown`."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.engines: list[Engine] = []
        self.apps: list[FastAPI] = []
        self.libraries: list[Any] = []
        self.untraced_paths: frozenset[str] = frozenset()

    def instrument_engine(self, engine: Engine) -> None:
        """Spans for this engine's statements (as parameterised SQL, never their values) and connections."""
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        instrumentor = SQLAlchemyInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        self.engines.append(engine)
        # The instrumentation declares sqlalchemy < 2.1 only; what it uses (engine events) is unchanged in 2.1,
        # and tests/integration/test_tracing.py checks that statements do get their spans.
        instrumentor.instrument(engines=list(self.engines), tracer_provider=self.provider, skip_dep_check=True)

    def instrument_app(self, app: FastAPI, *, excluded_paths: Iterable[str]) -> None:
        """A server span per request, named by route template, except on `excluded_paths`."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=excluded_urls(excluded_paths),
            exclude_spans=_EXCLUDED_SPANS,
            server_request_hook=_without_query,
        )
        self.apps.append(app)
        self.untraced_paths |= frozenset(excluded_paths)

    @staticmethod
    def untraced() -> AbstractContextManager[object]:
        """No span at all inside (SQL, redis, httpx included): an untraced path's statements must not become root
        spans, or exporting to faultlens itself would trace the export's own writes, and so on without end."""
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        return suppress_instrumentation()

    def _instrument_libraries(self) -> None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        redis = RedisInstrumentor()
        redis.instrument(tracer_provider=self.provider)
        self.libraries.append(redis)
        # httpx is an optional dependency of the server (the integrations' extra): traced when it is installed.
        if importlib.util.find_spec("httpx") is not None:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            httpx = HTTPXClientInstrumentor()
            httpx.instrument(tracer_provider=self.provider)
            self.libraries.append(httpx)

    @staticmethod
    def server_span() -> Span | None:
        """The span of the request being served (the current one), None on an untraced path."""
        span = trace.get_current_span()
        return span if span.get_span_context().is_valid else None

    @staticmethod
    def traceparent(span: Span) -> str:
        """A W3C traceparent header naming `span` as the parent."""
        ctx = span.get_span_context()
        return f"00-{format_trace_id(ctx.trace_id)}-{format_span_id(ctx.span_id)}-{int(ctx.trace_flags):02x}"

    @staticmethod
    def trace_id_of(span: Span) -> str:
        return format_trace_id(span.get_span_context().trace_id)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export the spans ended so far; False when the deadline passed first."""
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        """Undo every instrumentation, export what is left (within the export deadline) and stop."""
        global _active
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        for app in self.apps:
            FastAPIInstrumentor.uninstrument_app(app)
        if self.engines:
            SQLAlchemyInstrumentor().uninstrument()
        for library in self.libraries:
            library.uninstrument()
        self.apps, self.engines, self.libraries = [], [], []
        request_context.set_span_ids_provider(None)
        self.provider.shutdown()
        if _active is self:
            _active = None


def start(settings: Settings, *, exporter: SpanExporter | None = None) -> Tracing | None:
    """Turn tracing on when an OTLP endpoint is set (or an exporter is given, for tests); None when it is off.

    One at a time per process: instrumentation patches libraries process-wide.
    """
    global _active
    endpoint = traces_endpoint(settings)
    if exporter is None and endpoint is None:
        return None
    if _active is not None:
        raise RuntimeError("tracing is already on in this process; shut it down first")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=settings.tracing_export_timeout_s)
    name = settings.otel_service_name.strip() or DEFAULT_SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name, SERVICE_VERSION: __version__}))
    deadline_ms = settings.tracing_export_timeout_s * 1000
    provider.add_span_processor(BatchSpanProcessor(exporter, export_timeout_millis=deadline_ms))
    tracing = Tracing(provider)
    tracing._instrument_libraries()
    request_context.set_span_ids_provider(_active_span_ids)
    _active = tracing
    log.info("tracing on: spans exported to %s", _without_credentials(endpoint) or type(exporter).__name__)
    return tracing


def _without_credentials(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def active() -> Tracing | None:
    """The tracing that is on in this process, if any."""
    return _active
