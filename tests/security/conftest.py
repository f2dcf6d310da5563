"""Security-suite fixtures: two tenants with marked data, their keys, and the app's route table, generated."""

from __future__ import annotations

import inspect
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from faultlens.api.app import create_app
from faultlens.connectors import native
from faultlens.releases import rollouts
from faultlens.services import Services
from faultlens.store import keys, replays, traces
from faultlens.store.tables import fingerprints
from faultlens.timeutil import ms_to_rfc3339
from tests.conftest import make_services, missing_service, scratch_postgres
from tests.helpers import ago, event

# A Redis DB of its own (the task tests own 13); keys live under a per-test prefix and are deleted after.
SECURITY_REDIS_URL = os.environ.get(
    "FAULTLENS_TEST_SECURITY_REDIS", f"{os.environ.get('FAULTLENS_TEST_REDIS', 'redis://127.0.0.1:6379')}/12"
)

# Routes that carry no tenant data and need no key. Keep this small: every entry says why. A route missing
# from here must require a key and is probed as every other route is. Keys are (path, method); "*" = any method.
PUBLIC: dict[tuple[str, str], str] = {
    ("/healthz", "*"): "liveness: status and version only",
    ("/readyz", "*"): "readiness: dependency states only, no event data",
    ("/docs-assets/{name}", "*"): "self-hosted Swagger UI assets (the /docs page itself needs a key)",
    ("/", "*"): "dashboard shell; its data comes from the keyed API",
    ("/events/{event_id}", "*"): "event page shell; the page fetches /api/v1/events/{id} with the key",
    ("/traces/{trace_id}", "*"): "pivot page shell; the page fetches /api/v1/traces/{id} with the key",
    ("/correlations/{correlation_id}", "*"): "pivot page shell; it fetches /api/v1/correlations/{id} with the key",
    ("/requests/{request_id}", "*"): "pivot page shell; the page fetches /api/v1/requests/{id} with the key",
    ("/alerts", "*"): "page shell; its data comes from /api/v1/alerting/* with the key",
    ("/releases", "*"): "page shell; its data comes from /api/v1/releases/* with the key",
    ("/groups", "*"): "page shell; its data comes from /api/v1/groups with the key",
    ("/groups/{group_id}", "*"): "page shell; the page fetches /api/v1/groups/{id} with the key",
    ("/static/{name}", "*"): "dashboard assets",
    ("/static/{version}/{name}", "*"): "dashboard assets",
    # The codebase-embedder contract answers any method but GET with its own 405 envelope, before auth.
    ("/codebase-embedder/api/v1/tasks/failed", "POST"): "contract 405 answer",
    ("/codebase-embedder/api/v1/tasks/failed", "PUT"): "contract 405 answer",
    ("/codebase-embedder/api/v1/tasks/failed", "PATCH"): "contract 405 answer",
    ("/codebase-embedder/api/v1/tasks/failed", "DELETE"): "contract 405 answer",
    ("/codebase-embedder/api/v1/tasks/failed", "HEAD"): "contract 405 answer",
    ("/codebase-embedder/api/v1/tasks/failed", "OPTIONS"): "contract 405 answer",
    ("/codebase-embedder/api/v1/tasks/failed", "TRACE"): "contract 405 answer",
}
# Keyed routes that check their scope inside the handler, where the route table cannot see it: the scope a key
# needs at the least. A keyed route whose scope is neither declared nor listed here fails the suite.
HANDLER_SCOPES: dict[tuple[str, str], frozenset[str]] = {
    # ?scope=tenant (the default) needs admin; ?scope=global needs operator, which admin never implies.
    ("/api/v1/rules/activate", "POST"): frozenset({"admin"}),
}
# Path prefixes of mounted static files and self-hosted docs assets (Mount routes): no tenant data.
PUBLIC_PREFIXES: dict[str, str] = {
    "/docs-assets/": "self-hosted Swagger UI assets",
    "/static/": "dashboard assets",
}
# Values for the path parameters of public routes.
PUBLIC_PARAMS = {"name": "swagger-ui.css", "version": "0", "path": "swagger-ui.css"}

# What a path parameter names, by its name. A new name fails the suite until someone adds it here and
# thinks about whose data the route shows.
PATH_PARAM_KINDS = {
    "event_id": "event",
    "id": "event",
    "job_id": "job",
    "fingerprint_id": "fingerprint",
    "group_id": "fingerprint",  # a failure group is named by a template id
    "task_id": "task",
    "trace_id": "trace",
    "correlation_id": "correlation",
    "request_id": "request",
    "alert_id": "alert",
    "silence_id": "silence",
    "notification_id": "notification",
    "analysis_id": "canary_analysis",
    "rollout_id": "rollout",
    "rollback_id": "rollback",
    "report_id": "replay_report",
    "evidence_id": "readiness_evidence",
}

CODEBASE_EMBEDDER_PREFIX = "/codebase-embedder/"
PARALLEL_OPS_PREFIX = "/api/v1/parallel-ops/"
PARALLEL_OPS_CODE = "parallel_ops_invalid_request"
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass(frozen=True)
class RouteSpec:
    """One path and method of the app, with what the suite needs to call it."""

    path: str  # as declared, convertors stripped: /api/v1/events/{event_id}
    method: str
    kind: str  # class name of the route (APIRoute, Route, Mount, ...)
    query: tuple[str, ...]  # declared query parameter names (aliases)
    scopes: frozenset[str]  # scopes its require() dependencies ask for; empty = no key needed
    authenticated: bool  # a dependency reads the caller's principal

    @property
    def params(self) -> list[str]:
        return [str(name) for name in _PARAM.findall(self.path)]

    @property
    def public(self) -> bool:
        return is_public(self.path, self.method)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def is_public(path: str, method: str) -> bool:
    if (path, "*") in PUBLIC or (path, method) in PUBLIC:
        return True
    return any(path.startswith(prefix) for prefix in PUBLIC_PREFIXES)


def _walk(dependant: Any) -> Iterator[Any]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _required_scope(call: Any) -> str | None:
    """The scope a `require(scope)` (or `require_operator`) dependency checks, read from its closure."""
    name = getattr(call, "__qualname__", "")
    if name == "require_operator":
        return "operator"
    if call is None or name != "require.<locals>.check":
        return None
    scope = inspect.getclosurevars(call).nonlocals.get("scope")
    return str(scope) if scope is not None else None


def route_table(app: FastAPI) -> list[RouteSpec]:
    """Every (path, method) of the app's route table, included routers flattened."""
    out: list[RouteSpec] = []
    for rc in iter_route_contexts(app.routes):
        kind = type(rc.original_route).__name__
        raw_path = rc.path or ""
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", raw_path)
        dependant = getattr(rc, "dependant", None)
        query: list[str] = []
        scopes: set[str] = set()
        authenticated = False
        if dependant is not None:
            for dep in _walk(dependant):
                query.extend(str(p.alias) for p in dep.query_params)
                scope = _required_scope(dep.call)
                if scope is not None:
                    scopes.add(scope)
                if getattr(dep.call, "__name__", "") == "get_principal":
                    authenticated = True
        methods = sorted(rc.methods or []) or ["GET"]  # a Mount has no methods: it is read with GET
        if kind == "Mount":
            path = path.rstrip("/") + "/{path}"
        for method in methods:
            needs = frozenset(scopes) or HANDLER_SCOPES.get((path, method), frozenset())
            out.append(RouteSpec(path, method, kind, tuple(dict.fromkeys(query)), needs, authenticated))
    return out


@dataclass(frozen=True)
class Tenant:
    name: str
    marker: str  # in every error message of this tenant's events
    prefix: str  # starts every identifier this tenant's data carries

    def events(self) -> list[dict[str, Any]]:
        p, m = self.prefix, self.marker
        attrs = {"site_id": f"{p}site", "target_object": f"{p}obj", "template_key": f"{p}tpl", "note": f"{m} note"}
        common = {"trace_id": f"{p}trace-1", "correlation_id": f"{p}corr-1", "release": f"{p}rel-1"}
        return [
            event(
                id=f"{p}evt-1",
                source=f"{p}src",
                operation=f"{p}op",
                error_message=f"{m} upstream {p}db-7 refused the connection",
                error_code=f"{p}ERR",
                request_id=f"{p}req-1",
                job_id=f"{p}job-1",
                http_status=502,
                environment=f"{p}env",
                attributes=attrs,
                **common,
            ),
            event(id=f"{p}evt-2", source=f"{p}src", operation=f"{p}op", status="success", attributes=attrs, **common),
            event(
                id=f"{p}evt-3",
                source="doc_sync",
                error_message=f"{m} doc sync lost {p}doc-9",
                error_code=f"{p}SYNC",
                attributes=attrs,
                **common,
            ),
            event(
                id=f"{p}evt-4",
                source="workflow_actions",
                operation=f"{p}flow",
                error_message=f"{m} workflow step {p}step-3 failed",
                attributes=attrs,
                **common,
            ),
            event(
                id=f"{p}evt-5",
                source=f"{p}worker",
                item_type="task",
                status="retry",
                operation=f"{p}task-type",
                attempt=5,
                max_attempts=3,
                error_message=f"{m} task retry for {p}task-1",
                **common,
            ),
            event(
                id=f"{p}evt-6",
                source=f"{p}src",
                occurred_at=ago(days=3),
                error_message=f"{m} old failure at {p}host-2",
                attributes=attrs,
            ),
            # Same shape in both tenants: the shared fingerprinter must not show one tenant's words to the other.
            event(id=f"{p}evt-7", source=f"{p}src", error_message=f"{m} lost connection to {p}cache-1"),
            # One token apart between the tenants: the likeliest pair to share one template.
            event(id=f"{p}evt-8", source=f"{p}src", error_message=f"payment gateway timeout after 30s for {m}"),
        ]

    def evidence_span(self) -> dict[str, Any]:
        """A failed downstream call in the tenant's trace, as the OTLP receiver stores it."""
        p, m = self.prefix, self.marker
        start = int(time.time() * 1000) - 60_000
        return {
            "trace_id": f"{p}trace-1",
            "span_id": f"{p}span-1",
            "parent_span_id": None,
            "name": f"{p}SELECT",
            "kind": "client",
            "source": f"{p}src",
            "started_at": start,
            "ended_at": start + 40,
            "duration_ms": 40.0,
            "status": "error",
            "http_status": None,
            "error_message": f"{m} span {p}db-7 timed out",
            "attributes": {"db.name": f"{p}db"},
        }

    def pack(self) -> dict[str, Any]:
        p, m = self.prefix, self.marker
        return {
            "id": f"{p}pack@2026-12-01",
            "description": f"{m} rules of {p}team",
            "rules": [
                {
                    "name": f"{p}refused".replace("-", "_"),
                    "match": {"text": [f"{p}db-7 refused"]},
                    "failure_kind": f"{p}db_refused".replace("-", "_"),
                    "failure_class": "service_failure",
                    "category": "dependency_error",
                    "examples": [{"error_message": f"upstream {p}db-7 refused the connection"}],
                }
            ],
        }


ACME = Tenant("acme", "ACME-SECRET-MARKER", "acme-")
GLOBEX = Tenant("globex", "GLOBEX-MARKER", "globex-")


@dataclass
class TenantData:
    """What one tenant owns in the world: its keys' headers and the identifiers of its data."""

    tenant: Tenant
    admin: dict[str, str]  # every scope
    read: dict[str, str]  # read only
    ingest: dict[str, str]  # ingest only
    key_ids: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # kind -> an identifier of this tenant's data
    fingerprints: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)

    def markers(self, other: TenantData) -> list[str]:
        """Strings that only this tenant's data holds: none may appear in the other tenant's answers."""
        t = self.tenant
        out = [t.marker, t.prefix, t.prefix.replace("-", "_"), *sorted(self.jobs)]
        out.extend(sorted(self.fingerprints - other.fingerprints))
        return out


@dataclass
class World:
    services: Services
    client: TestClient
    routes: list[RouteSpec]
    tenants: dict[str, TenantData]
    redis_prefix: str
    setup_problems: list[str] = field(default_factory=list)

    @property
    def acme(self) -> TenantData:
        return self.tenants["acme"]

    @property
    def globex(self) -> TenantData:
        return self.tenants["globex"]


# A tenant's own full key: every tenant scope, never the operator's (which changes what every tenant gets).
TENANT_SCOPES = ["ingest", "read", "admin"]


def _key(services: Services, tenant: str, scopes: list[str]) -> tuple[str, dict[str, str]]:
    with services.engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant=tenant, scopes=scopes)
    return key.id, {"Authorization": f"Bearer {secret}"}


def _tenant_data(services: Services, tenant: Tenant) -> TenantData:
    admin_id, admin = _key(services, tenant.name, TENANT_SCOPES)
    read_id, read = _key(services, tenant.name, ["read"])
    ingest_id, ingest = _key(services, tenant.name, ["ingest"])
    data = TenantData(tenant, admin, read, ingest, [admin_id, read_id, ingest_id])
    p = tenant.prefix
    data.ids = {"event": f"{p}evt-1", "task": f"native:{p}task-1", "job": f"{p}no-job", "fingerprint": f"{p}no-fp"}
    data.ids |= {"trace": f"{p}trace-1", "correlation": f"{p}corr-1", "request": f"{p}req-1"}
    return data


def refresh_fingerprints(world: World) -> None:
    with world.services.engine.connect() as conn:
        for data in world.tenants.values():
            rows = conn.execute(select(fingerprints.c.id).where(fingerprints.c.tenant == data.tenant.name))
            data.fingerprints = {r[0] for r in rows}
    for data in world.tenants.values():
        r = world.client.get(f"/api/v1/events/{data.ids['event']}", headers=data.admin)
        assert r.status_code == 200, r.text
        fp = r.json().get("fingerprint_id")
        if fp:
            data.ids["fingerprint"] = fp
            data.fingerprints.add(fp)


def raise_alerts(world: World) -> str | None:
    """Each tenant's retry past its max_attempts fires an alert (two evaluations a minute apart), whose
    notification waits in the outbox; each tenant silences something. Their ids become the tenants' ids."""
    alerting = world.services.alerting
    assert alerting is not None
    now = int(time.time() * 1000)
    alerting.evaluate_once(now=now)
    alerting.evaluate_once(now=now + 61_000)
    for data in world.tenants.values():
        alerts = world.client.get("/api/v1/alerting/alerts", params={"state": "firing"}, headers=data.admin).json()
        mine = [a for a in alerts.get("alerts", []) if a["labels"].get("source", "").startswith(data.tenant.prefix)]
        if not mine:
            return f"{data.tenant.name} has no firing alert of its own: {alerts}"
        data.ids["alert"] = mine[0]["id"]
        sent = world.client.get("/api/v1/alerting/notifications", headers=data.admin).json().get("items", [])
        if not sent:
            return f"{data.tenant.name} has no notification in the outbox"
        data.ids["notification"] = sent[0]["id"]
        body = {"matchers": [f"source={data.tenant.prefix}src"], "duration": "1h", "comment": f"{data.tenant.marker}"}
        r = world.client.post("/api/v1/alerting/silences", json=body, headers=data.admin)
        if r.status_code != 201:
            return f"{data.tenant.name} could not create a silence: {r.status_code} {r.text[:300]}"
        data.ids["silence"] = r.json()["id"]
    return None


def release_gates(world: World) -> str | None:
    """Each tenant's release gates hold one of each record (a canary analysis, a rollout, a rollback drill, a
    replay report, a readiness evaluation); their ids become the tenant's ids."""
    for data in world.tenants.values():
        p = data.tenant.prefix
        arms = {"baseline": f"{p}rel-0", "canary": f"{p}rel-1", "environment": f"{p}env", "window": "1h"}
        r = world.client.post("/api/v1/releases/canary/analyze", json=arms, headers=data.admin)
        if r.status_code != 200:
            return f"{data.tenant.name} could not analyse a canary: {r.status_code} {r.text[:300]}"
        data.ids["canary_analysis"] = r.json()["id"]
        body = {"release": f"{p}rel-1", "baseline": f"{p}rel-0", "environment": f"{p}env"}
        r = world.client.post("/api/v1/releases/rollouts", json=body, headers=data.admin)
        if r.status_code != 201:
            return f"{data.tenant.name} could not start a rollout: {r.status_code} {r.text[:300]}"
        data.ids["rollout"] = r.json()["id"]
        now = int(time.time() * 1000)
        drill = rollouts.record_drill(
            world.services.engine,
            tenant=data.tenant.name,
            release=f"{p}rel-1",
            environment=f"{p}env",
            source=f"{p}src",
            created_by=f"{p}drill",
            decided_at=now - 60_000,
            completed_at=now,
            recovered=True,
            detail=f"{data.tenant.marker} drill",
            report=f"# {data.tenant.marker} rollback drill report",  # GET /rollbacks/{id}/report shows tenant data
        )
        data.ids["rollback"] = drill["id"]
        report_id = str(uuid.uuid4())
        report = {
            "id": report_id,
            "release": f"{p}rel-1",
            "environment": f"{p}env",
            "suite": f"{p}suite",
            "suite_version": "1",
            "target": f"http://127.0.0.1:9/{p}target",
            "passed": True,
            "total": 0,
            "counts": {"passed": 0, "failed": 0, "not_run": 0, "by_failure_class": {}},
            "failures": [],
            "not_run": [],
            "results": [],
            "p95_ms": None,
            "rule_version": "probe",
            "requested_by": f"{p}key",
            "started_at": ms_to_rfc3339(now),
            "finished_at": ms_to_rfc3339(now),
        }
        with world.services.engine.begin() as conn:
            replays.insert_report(conn, tenant=data.tenant.name, report=report, started_at=now, finished_at=now)
        data.ids["replay_report"] = report_id
        body = {"release": f"{p}rel-1", "environment": f"{p}env"}
        r = world.client.post("/api/v1/releases/readiness", json=body, headers=data.admin)
        if r.status_code != 200:
            return f"{data.tenant.name} could not evaluate readiness: {r.status_code} {r.text[:300]}"
        data.ids["readiness_evidence"] = r.json()["id"]
    return None


def activate_pack(world: World, data: TenantData) -> str | None:
    """The tenant activates its own rule pack through the API; the backfill job it starts is the tenant's.

    Returns what went wrong, or None: the world is still built, and the tests that need the job say so.
    """
    r = world.client.post("/api/v1/rules/activate", json=data.tenant.pack(), headers=data.admin)
    if r.status_code != 200:
        return f"{data.tenant.name} could not activate its own pack: {r.status_code} {r.text[:300]}"
    job = (r.json().get("backfill") or {}).get("id")
    if not job:
        return f"activating {data.tenant.name}'s pack started no backfill job: {r.text[:300]}"
    data.ids["job"] = job
    data.jobs.add(job)
    return None


def _redis_url() -> str:
    client = redis.Redis.from_url(SECURITY_REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {SECURITY_REDIS_URL} is not reachable: {exc}")
    finally:
        client.close()
    return SECURITY_REDIS_URL


@pytest.fixture
def security_redis_url() -> str:
    return _redis_url()


@contextmanager
def build_world(db_url: str, tmp_path: Path, security_redis_url: str) -> Iterator[World]:
    """acme (the default tenant, so it owns the Redis task sources) and globex, each with marked data."""
    prefix = f"flsec:{uuid.uuid4().hex[:10]}"
    services = make_services(
        db_url,
        start_jobs=False,
        default_tenant=ACME.name,
        redis_url=security_redis_url,
        redis_prefix=prefix,
        task_archive_dir=tmp_path / "archive",
        # Notifications are written to the outbox and never sent (nothing listens there): each tenant owns some.
        obs_alert_webhook="http://127.0.0.1:9/never-called",
    )
    r = redis.Redis.from_url(security_redis_url, socket_timeout=5)
    try:
        tenants = {t.name: _tenant_data(services, t) for t in (ACME, GLOBEX)}
        for data in tenants.values():
            result = services.pipeline.ingest(data.tenant.events(), tenant=data.tenant.name)
            assert result.accepted == len(data.tenant.events()), result.as_dict()
            stored = traces.insert_spans(
                services.engine, [data.tenant.evidence_span()], tenant=data.tenant.name, max_per_trace=8
            )
            assert stored == (1, 0), stored
        native.record_failure(
            r,
            prefix=prefix,
            task_id="acme-task-1",
            task_type="acme-task-type",
            client_id="acme-client",
            codebase_path="/srv/acme-repo",
            error_message=f"{ACME.marker} embedding failed for acme-repo",
            error_code="ACME_TASK_ERR",
            retry_count=0,
            max_retries=3,
        )
        app = create_app(services)
        with TestClient(app) as client:
            w = World(services, client, route_table(app), tenants, prefix)
            problem = activate_pack(w, w.acme)
            if problem:
                w.setup_problems.append(problem)
            refresh_fingerprints(w)
            problem = raise_alerts(w)
            if problem:
                w.setup_problems.append(problem)
            problem = release_gates(w)
            if problem:
                w.setup_problems.append(problem)
            yield w
    finally:
        for k in r.scan_iter(match=f"{prefix}*", count=500):
            r.delete(k)
        r.close()
        services.engine.dispose()


@pytest.fixture
def world(db_url: str, tmp_path: Path, security_redis_url: str) -> Iterator[World]:
    """The world on SQLite and on PostgreSQL."""
    with build_world(db_url, tmp_path, security_redis_url) as w:
        yield w


@contextmanager
def _scratch_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own, dropped afterwards (what tests/conftest.py's db_url gives, for a module)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'faultlens.db'}"
        return
    with scratch_postgres("faultlens_sec") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world per module and database, for tests that only read it (or write nothing a later test reads)."""
    tmp_path = tmp_path_factory.mktemp("security")
    with _scratch_database(str(request.param), tmp_path) as url, build_world(url, tmp_path, _redis_url()) as w:
        yield w


# Query values a caller sends: the other tenant's identifiers wherever a parameter names one.
def query_fill(route: RouteSpec, data: TenantData) -> dict[str, str]:
    p, m = data.tenant.prefix, data.tenant.marker
    values: Mapping[str, str] = {
        "source": f"{p}src",
        "operation": f"{p}op",
        "trace_id": f"{p}trace-1",
        "correlation_id": f"{p}corr-1",
        "fingerprint_id": data.ids["fingerprint"],
        "q": m,
        "site_id": f"{p}site",
        "target_object": f"{p}obj",
        "template_key": f"{p}tpl",
        "task_type": f"{p}task-type",
        "client_id": f"{p}client",
        "window": "7d",
        "window_days": "7",
        "release": f"{p}rel-1",
        "canary": f"{p}rel-1",
        "environment": f"{p}env",
        "rollout_id": data.ids.get("rollout", f"{p}no-rollout"),
    }
    out = {name: values[name] for name in route.query if name in values}
    if "window" in out:
        out.pop("window_days", None)  # the deprecated alias and window are one or the other
    return out


def fill_path(route: RouteSpec, data: TenantData) -> str:
    """The route's path with `data`'s identifiers; an unknown parameter name fails loudly."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if route.public and name in PUBLIC_PARAMS:
            return PUBLIC_PARAMS[name]
        kind = PATH_PARAM_KINDS.get(name)
        if kind is None:
            raise AssertionError(
                f"{route}: path parameter {name!r} names nothing the security suite knows; add it to "
                "PATH_PARAM_KINDS in tests/security/conftest.py (whose identifier is it?)"
            )
        return data.ids[kind]

    return _PARAM.sub(value, route.path)


def strip_echo(text: str, sent: list[str]) -> str:
    """The answer without the values the caller itself sent (a 404 may quote the id it was asked for)."""
    for value in sorted(sent, key=len, reverse=True):
        if value:
            text = text.replace(value, "")
    return text
