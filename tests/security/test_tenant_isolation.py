"""Tenant isolation over the whole route table: no route shows or changes one tenant's data to another."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient
from httpx import Response

from tests.helpers import event
from tests.security.conftest import (
    RouteSpec,
    TenantData,
    World,
    activate_pack,
    fill_path,
    query_fill,
    refresh_fingerprints,
    strip_echo,
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Views of its own data a tenant must find its marker in: proof the probe below looks at real data.
OWN_DATA_VIEWS = (
    "/api/v1/events",
    "/api/v1/events/{event_id}",
    "/api/v1/failures",
    "/api/v1/fingerprints",
    "/api/v1/jobs/{job_id}",
    "/api/v1/traces/{trace_id}",
    "/api/v1/correlations/{correlation_id}",
    "/api/v1/requests/{request_id}",
    "/api/invocations",
    "/api/v1/parallel-ops/doc-sync/failures",
    "/api/v1/parallel-ops/workflow/failures",
    "/api/v1/releases",
    "/api/v1/releases/timeline",
    "/api/v1/releases/canary/analyses/{analysis_id}",
    "/api/v1/releases/rollouts/{rollout_id}",
    "/api/v1/releases/rollbacks/{rollback_id}",
    "/api/v1/releases/replays/{report_id}",
    "/api/v1/releases/readiness/{evidence_id}",
)
# Views whose answers move with the clock or with process-wide counters, not with the tenant's data.
_VOLATILE_KEYS = frozenset(
    {"generated_at", "generatedAt", "since", "until", "from", "to", "window_since", "window_until", "request_id"}
)


def call(client: TestClient, route: RouteSpec, path: str, headers: dict[str, str], params: dict[str, str]) -> Response:
    """One request; writes carry a harmless JSON body."""
    body: dict[str, Any] = {"json": {}} if route.method in WRITE_METHODS else {}
    r: Response = client.request(route.method, path, params=params, headers=headers, **body)
    return r


def _code(r: Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else None


def probe(world: World, caller: TenantData, owner: TenantData, *, methods: frozenset[str] | None = None) -> list[str]:
    """Call every route as `caller` with `owner`'s identifiers; what leaked or looked wrong, one line each."""
    problems: list[str] = []
    markers = owner.markers(caller)
    for route in world.routes:
        if methods is not None and route.method not in methods:
            continue
        path = fill_path(route, owner)
        fill = query_fill(route, owner)
        for params in ({}, fill) if fill else ({},):
            r = call(world.client, route, path, caller.admin, params)
            where = f"{route.method} {path} params={params} as {caller.tenant.name}"
            if r.status_code >= 500:
                problems.append(f"{where}: answered {r.status_code}: {r.text[:200]}")
            lookup = bool(route.params) and not route.public
            if lookup and r.status_code not in (403, 404):
                problems.append(f"{where}: a lookup of {owner.tenant.name}'s id answered {r.status_code}, not 404")
            if lookup and not params:
                # No existence oracle: another tenant's id answers exactly as an id nobody has.
                for value in {v for v, t in zip(path.split("/"), route.path.split("/"), strict=True) if v != t}:
                    nobody = path.replace(value, "nobody-has-this-id")
                    other = call(world.client, route, nobody, caller.admin, {})
                    if (other.status_code, _code(other)) != (r.status_code, _code(r)):
                        problems.append(
                            f"{where}: answered {r.status_code} {_code(r)} but an unknown id answers "
                            f"{other.status_code} {_code(other)}: the answer tells the id exists"
                        )
            sent = [v for v, t in zip(path.split("/"), route.path.split("/"), strict=True) if v != t]
            text = strip_echo(r.text, [*sent, *params.values()])
            leaked = [m for m in markers if m in text]
            if leaked:
                at = text.find(leaked[0])
                problems.append(f"{where}: {r.status_code} shows {leaked}: ...{text[max(0, at - 80) : at + 120]!r}...")
    return problems


# A candidate pack matching both tenants' messages: its preview must move only the caller's events.
PROBE_PACK: dict[str, Any] = {
    "id": "probe@2026-12-01",
    "rules": [
        {
            "name": "refusals",
            "match": {"text": ["refused the connection", "lost connection"]},
            "failure_kind": "probe_refused",
            "failure_class": "client_failure",
            "category": "dependency_error",
            "examples": [{"error_message": "upstream db refused the connection"}],
        }
    ],
}


def preview_probe(world: World, caller: TenantData, owner: TenantData) -> list[str]:
    """The caller previews a pack that would move both tenants' events: it sees only its own."""
    r = world.client.post("/api/v1/rules/preview", params={"window": "7d"}, json=PROBE_PACK, headers=caller.admin)
    if r.status_code != 200:
        return [f"{caller.tenant.name}'s preview answered {r.status_code}: {r.text[:300]}"]
    problems = []
    samples = [i for m in r.json()["moves"] for i in m["sample_ids"]]
    if not any(i.startswith(caller.tenant.prefix) for i in samples):
        problems.append(f"{caller.tenant.name}'s preview moves none of its own events: {r.text[:300]}")
    leaked = [m for m in owner.markers(caller) if m in r.text]
    if leaked:
        problems.append(f"POST /api/v1/rules/preview as {caller.tenant.name} shows {leaked}: {r.text[:300]}")
    return problems


# The ops summary's api figures count the tenant's own requests (the snapshot's calls among them) and its job lag
# grows with the clock; their isolation is checked by value in tests/integration/test_ops_summary.py.
_SELF_COUNTING = (
    "_http_requests_total",
    "_http_request_error_ratio",
    "_http_request_duration_seconds_p95",
    "_jobs_lag_seconds",
)


def _stable(value: Any) -> Any:
    if isinstance(value, dict) and str(value.get("name", "")).endswith(_SELF_COUNTING):
        value = {k: v for k, v in value.items() if k != "value"}
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _view(r: Response) -> Any:
    if r.headers.get("content-type", "").startswith("application/json"):
        doc = orjson.loads(r.content)
        if isinstance(doc, dict) and "error" in doc:
            # An error body names the request it answered: new ids every call, whoever wrote what.
            doc = {k: v for k, v in doc.items() if k not in ("correlation_id", "trace_id")}
        return _stable(doc)
    # Text exports and metrics: only the lines that name the tenant's own data.
    return sorted(line for line in r.text.splitlines() if not line.startswith("#") and "generated" not in line)


def snapshot(world: World, data: TenantData) -> dict[str, Any]:
    """Every keyed GET view of the tenant, with its own identifiers: what another tenant's writes must not move."""
    out: dict[str, Any] = {}
    for route in world.routes:
        if route.method != "GET" or route.public or route.path == "/metrics":
            continue
        path = fill_path(route, data)
        fill = query_fill(route, data)
        for params in ({}, fill) if fill else ({},):
            r = world.client.get(path, params=params, headers=data.admin)
            out[f"GET {path} {sorted(params.items())}"] = (r.status_code, _view(r))
    return out


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) != after.get(key):
            out.append(f"{key}: before {str(before.get(key))[:300]} / after {str(after.get(key))[:300]}")
    return out


def _own_data_visible(world: World, data: TenantData) -> list[str]:
    """The owner finds its own marker in its own views, so the probe's silence means isolation, not emptiness."""
    routes = {r.path: r for r in world.routes if r.method == "GET"}
    missing = []
    for view in OWN_DATA_VIEWS:
        route = routes.get(view)
        if route is None:
            missing.append(f"{view} is gone from the route table; update OWN_DATA_VIEWS")
            continue
        if "{job_id}" in view and not data.jobs:
            continue  # the setup problem says why there is no job
        r = world.client.get(fill_path(route, data), params=query_fill(route, data), headers=data.admin)
        own = [m for m in data.markers(data) if m in r.text]
        if r.status_code != 200 or not own:
            missing.append(f"{data.tenant.name} does not see its own data in {view}: {r.status_code} {r.text[:200]}")
    return missing


def test_globex_sees_nothing_of_acme(world: World) -> None:
    problems = world.setup_problems + _own_data_visible(world, world.acme)
    r = world.client.get("/api/v1/tasks/failed", headers=world.acme.admin)
    assert r.status_code == 200 and world.acme.tenant.marker in r.text, r.text
    problems += probe(world, world.globex, world.acme)
    problems += preview_probe(world, world.globex, world.acme)
    assert not problems, f"{len(problems)} isolation problems:\n" + "\n".join(problems)


def test_acme_sees_nothing_of_globex(world: World) -> None:
    problem = activate_pack(world, world.globex)  # globex gets a job of its own
    refresh_fingerprints(world)
    problems = world.setup_problems + ([problem] if problem else []) + _own_data_visible(world, world.globex)
    problems += probe(world, world.acme, world.globex)
    problems += preview_probe(world, world.acme, world.globex)
    assert not problems, f"{len(problems)} isolation problems:\n" + "\n".join(problems)


def test_globex_writes_leave_acme_unchanged(world: World) -> None:
    acme, globex = world.acme, world.globex
    before = snapshot(world, acme)
    # Every write route, as globex, aimed at acme's identifiers.
    problems = probe(world, globex, acme, methods=WRITE_METHODS)
    # Globex's own data under acme's identifiers: ids are per tenant, so this is a new globex event.
    impostor = event(
        id=acme.ids["event"],
        source="acme-src",
        operation="acme-op",
        trace_id="acme-trace-1",
        correlation_id="acme-corr-1",
        error_message=f"{globex.tenant.marker} impostor at acme-db-7",
        attributes={"site_id": "acme-site", "target_object": "acme-obj", "template_key": "acme-tpl"},
    )
    # And a second copy of globex's own batch (every source, item type and status), so any count acme's views
    # would borrow from globex moves.
    more = [{**e, "id": f"{e['id']}-again"} for e in globex.tenant.events()]
    r = world.client.post("/api/v1/events", json=[impostor, *more], headers=globex.admin)
    assert r.status_code == 200 and r.json()["accepted"] == 1 + len(more), r.text
    # The global pack sits under every tenant's: a tenant's admin key may not replace it.
    r = world.client.post(
        "/api/v1/rules/activate", params={"scope": "global"}, json=globex.tenant.pack(), headers=globex.admin
    )
    if r.status_code != 403:
        problems.append(f"globex's admin key activating a global pack answered {r.status_code}, not 403: {r.text}")
    # Globex's own rule pack, and attempts on acme's task.
    r = world.client.post("/api/v1/rules/activate", json=globex.tenant.pack(), headers=globex.admin)
    assert r.status_code == 200, r.text
    r = world.client.post(f"/api/v1/tasks/{acme.ids['task']}/retry", headers=globex.admin)
    assert r.status_code in (403, 404), r.text
    r = world.client.post("/api/v1/tasks/sync", headers=globex.admin)
    assert r.status_code == 403, r.text

    after = snapshot(world, acme)
    problems += [f"acme's view changed: {d}" for d in _diff(before, after)]
    globex_markers = [globex.tenant.marker, globex.tenant.prefix, *sorted(globex.jobs)]
    problems += [
        f"acme's view {k} shows globex data" for k, v in after.items() if any(m in str(v) for m in globex_markers)
    ]
    assert not problems, f"{len(problems)} write-isolation problems:\n" + "\n".join(problems)


def test_redis_task_sources_answer_only_their_tenant(world: World) -> None:
    """The configured Redis belongs to the default tenant (acme here); globex gets 403 on every task route."""
    acme, globex = world.acme, world.globex
    r = world.client.get("/api/v1/tasks/failed", headers=acme.read)
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [acme.ids["task"]]
    r = world.client.get("/codebase-embedder/api/v1/tasks/failed", headers=acme.read)
    assert r.status_code == 200 and r.json()["Data"]["Tasks"][0]["TaskId"] == "acme-task-1", r.text

    for method, path in (
        ("GET", "/api/v1/tasks/failed"),
        ("POST", f"/api/v1/tasks/{acme.ids['task']}/retry"),
        ("POST", "/api/v1/tasks/sync"),
    ):
        r = world.client.request(method, path, headers=globex.admin)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden" and acme.tenant.marker not in r.text
    r = world.client.get("/codebase-embedder/api/v1/tasks/failed", headers=globex.admin)
    assert r.status_code == 403 and r.json()["Code"] == 403 and r.json()["Data"] is None, r.text
    # The task is still there and untouched.
    r = world.client.get("/api/v1/tasks/failed", headers=acme.read)
    assert r.json()["items"][0]["retry_count"] == 0, r.text


def test_metrics_do_not_count_other_tenants_activity(world: World) -> None:
    """/metrics answers "for the caller's tenant": globex's ingest must not move a series acme scrapes.

    Only the runtime's own series (process_*, python_*) and the *_created timestamps are left out.
    """

    def scrape() -> dict[str, str]:
        r = world.client.get("/metrics", headers=world.acme.read)
        assert r.status_code == 200, r.text
        series = {}
        for line in r.text.splitlines():
            if line.startswith(("#", "process_", "python_")) or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            if "_created" not in name:
                series[name] = value
        return series

    before = scrape()
    more = [{**e, "id": f"{e['id']}-again"} for e in world.globex.tenant.events()]
    r = world.client.post("/api/v1/events", json=more, headers=world.globex.admin)
    assert r.status_code == 200 and r.json()["accepted"] == len(more), r.text
    after = scrape()
    moved = sorted(
        f"{name}: {before.get(name)} -> {after.get(name)}"
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name)
    )
    assert not moved, "acme's /metrics counts globex's ingest:\n" + "\n".join(moved)
