"""The OpenAPI document and /docs: offline assets, the API's auth, 400 (not 422) errors, models, bodies, formats."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

from faultlens.api import schemas
from faultlens.api.app import create_app
from faultlens.api.docs import to_openapi_30
from faultlens.services import Services
from faultlens.store import keys
from tests.conftest import make_services
from tests.helpers import event
from tests.integration.test_rules_preview import CANDIDATE

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    services = make_services(f"sqlite:///{tmp_path / 'docs.db'}", start_jobs=False)
    with TestClient(create_app(services)) as c:
        yield c
    services.engine.dispose()


@pytest.fixture
def doc(app_client: TestClient) -> dict[str, Any]:
    r = app_client.get("/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def _param(op: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in op["parameters"] if p["name"] == name)


def test_docs_page_references_only_local_assets(app_client: TestClient) -> None:
    r = app_client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"https?://", r.text), "the page must not load anything from another origin"
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sorted(refs) == [
        "/docs-assets/faultlens-docs.js",
        "/docs-assets/favicon-32x32.png",
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
    ]
    assert "<script>" not in r.text  # no inline script: the page runs under script-src 'self'
    expected = {
        "faultlens-docs.js": "text/javascript",
        "favicon-32x32.png": "image/png",
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-ui.css": "text/css",
    }
    for ref in refs:
        asset = app_client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["content-type"].split(";")[0] == expected[ref.rsplit("/", 1)[1]]
        assert asset.headers["x-content-type-options"] == "nosniff"
        again = app_client.get(ref, headers={"if-none-match": asset.headers["etag"]})
        assert again.status_code == 304
    assert b"SwaggerUIBundle" in app_client.get("/docs-assets/swagger-ui-bundle.js").content


def test_unknown_asset_and_cdn_pages_are_gone(app_client: TestClient) -> None:
    for path in ("/docs-assets/index.html", "/docs-assets/..%2Fswagger-initializer.js", "/redoc"):
        r = app_client.get(path)
        assert r.status_code == 404, path
        assert set(r.json()) == {"error", "request_id", "correlation_id", "trace_id"}


def test_docs_and_document_need_a_read_key_once_keys_exist(tmp_path: Path) -> None:
    services: Services = make_services(f"sqlite:///{tmp_path / 'auth.db'}", start_jobs=False)
    with services.engine.begin() as conn:
        _, read_key = keys.create_key(conn, tenant="default", scopes=["read"], name="reader")
        _, ingest_key = keys.create_key(conn, tenant="default", scopes=["ingest"], name="sender")
    try:
        with TestClient(create_app(services)) as c:
            for path in ("/docs", "/openapi.json"):
                anonymous = c.get(path)
                assert anonymous.status_code == 401, path
                assert anonymous.json()["error"]["code"] == "unauthorized"
                wrong_scope = c.get(path, headers={"Authorization": f"Bearer {ingest_key}"})
                assert wrong_scope.status_code == 403, path
                assert c.get(path, headers={"Authorization": f"Bearer {read_key}"}).status_code == 200, path
            # The Swagger UI release itself holds no data: its files load before the key is typed in.
            assert c.get("/docs-assets/swagger-ui.css").status_code == 200
    finally:
        services.engine.dispose()


def test_document_is_openapi_30_with_the_one_error_body(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.0.3"
    problems = [f"{e.instance_path}: {e.message}"[:300] for e in OPENAPI_30_VALIDATOR.iter_errors(doc)]
    assert problems == []  # valid against the OpenAPI 3.0 meta-schema: the bundled Swagger UI 4 renders it
    text = repr(doc)
    assert "'422'" not in text and "HTTPValidationError" not in text
    assert "{'type': 'null'}" not in text and "'const'" not in text
    error = doc["components"]["schemas"]["ErrorBody"]
    assert sorted(error["required"]) == ["correlation_id", "error", "request_id", "trace_id"]
    ops = list(_operations(doc))
    assert len(ops) >= 20
    for path, method, op in ops:
        for status in ("400", "401", "403", "503"):
            ref = op["responses"][status]["content"]["application/json"]["schema"]
            if path.startswith("/codebase-embedder/"):  # the contract's envelope, or the guards' error body
                assert ref["anyOf"][1] == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
            else:
                assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
        if method == "post":
            assert {"408", "413", "415"} <= set(op["responses"]), path


def test_native_routes_declare_response_models(doc: dict[str, Any]) -> None:
    expected = {
        ("/api/v1/events", "post"): "IngestResult",
        ("/api/v1/events", "get"): "EventPage",
        ("/api/v1/events/{event_id}", "get"): "EventDetail",
        ("/api/v1/fingerprints", "get"): "FingerprintList",
        ("/api/v1/stats/errors", "get"): "ErrorDistribution",
        ("/api/v1/stats/summary", "get"): "Summary",
        ("/api/v1/overview", "get"): "Overview",
        ("/api/v1/trends", "get"): "Trends",
        ("/api/v1/alerts", "get"): "Alerts",
        ("/api/v1/failures", "get"): "FailurePage",
        ("/api/v1/rules", "get"): "Rules",
        ("/api/v1/rules/preview", "post"): "Preview",
        ("/api/v1/rules/activate", "post"): "Activation",
        ("/api/v1/jobs", "get"): "JobList",
        ("/api/v1/jobs/{job_id}", "get"): "Job",
        ("/api/v1/tasks/failed", "get"): "TaskPage",
        ("/api/v1/tasks/hints", "get"): "TaskHints",
        ("/api/v1/tasks/sync", "post"): "SyncResult",
        ("/api/v1/tasks/{task_id}/retry", "post"): "Retried",
    }
    for (path, method), model in expected.items():
        schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, (path, method)
        assert doc["components"]["schemas"][model]["properties"], model
    assert set(doc["components"]["securitySchemes"]) == {"bearerKey", "headerKey"}
    listing = doc["paths"]["/api/v1/events"]
    assert listing["get"]["security"] == [{"bearerKey": []}, {"headerKey": []}]
    assert "`read` scope" in listing["get"]["description"]
    assert "`ingest` scope" in listing["post"]["description"]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    event = doc["components"]["schemas"]["Event"]
    assert event["properties"]["operation"]["nullable"] is True
    assert "operation" in event["required"] and "is_actionable" in event["required"]
    assert "404" in doc["paths"]["/api/v1/events/{event_id}"]["get"]["responses"]
    assert "409" in doc["paths"]["/api/v1/rules/activate"]["post"]["responses"]


def test_request_bodies_are_declared(doc: dict[str, Any]) -> None:
    ingest = doc["paths"]["/api/v1/events"]["post"]["requestBody"]
    assert ingest["required"] is True
    assert set(ingest["content"]) == {"application/json", "application/x-ndjson"}
    shapes = ingest["content"]["application/json"]["schema"]["oneOf"]
    assert [s["type"] for s in shapes] == ["array", "object"]
    assert shapes[1]["required"] == ["events"]
    for path in ("/api/v1/rules/preview", "/api/v1/rules/activate"):
        pack = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert pack["required"] == ["id", "rules"], path


def test_window_formats_cursor_and_metrics(doc: dict[str, Any]) -> None:
    listing = doc["paths"]["/api/v1/events"]["get"]
    assert _param(listing, "window")["schema"]["enum"] == ["", "1h", "6h", "24h", "7d", "14d", "30d", "90d"]
    for name in ("since", "until"):
        assert _param(listing, name)["schema"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert "opaque" in _param(listing, "cursor")["description"].lower()
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert metrics["text/plain"]["schema"]["type"] == "string"


def test_validation_error_answers_400_as_documented(app_client: TestClient) -> None:
    r = app_client.get("/api/v1/events", params={"limit": "many"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"


def test_to_openapi_30_rewrites_json_schema_2020_constructs() -> None:
    assert to_openapi_30({"anyOf": [{"type": "string"}, {"type": "null"}], "title": "T"}) == {
        "type": "string",
        "title": "T",
        "nullable": True,
    }
    assert to_openapi_30({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}) == {
        "allOf": [{"$ref": "#/x"}],
        "nullable": True,
    }
    assert to_openapi_30({"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "null"}]}) == {
        "anyOf": [{"type": "integer"}, {"type": "number"}],
        "nullable": True,
    }
    assert to_openapi_30({"const": "a"}) == {"enum": ["a"]}
    assert to_openapi_30({"exclusiveMinimum": 0}) == {"minimum": 0, "exclusiveMinimum": True}
    assert to_openapi_30({"examples": [1, 2]}) == {"example": 1}
    # Names in a properties map are not keywords: a property called "const" or "type" stays as it is.
    named = {"properties": {"const": {"type": "string"}, "type": {"const": 1}}, "example": {"type": None}}
    assert to_openapi_30(named) == {
        "properties": {"const": {"type": "string"}, "type": {"enum": [1]}},
        "example": {"type": None},  # data, not a schema
    }


def _undocumented(value: Any, path: str = "") -> list[str]:
    """Keys a response holds that its model does not declare (models keep them, but /docs would not show them)."""
    if isinstance(value, BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += _undocumented(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [key for item in value for key in _undocumented(item, f"{path}[]")]
    return []


def test_responses_hold_exactly_the_documented_fields(app_client: TestClient) -> None:
    batch = [
        event(id="d1", error_message="upstream timeout after 30s", http_status=504, trace_id="t-1", duration_ms=12.5),
        event(id="d2", error_message="invalid api key", http_status=401, trace_id="t-1", attributes={"site_id": "s"}),
        event(id="d3", status="retry", item_type="task", source="worker", attempt=2, max_attempts=3),
        event(id="d4", status="success", source="worker"),
        event(id="d5", error_message="deadlock detected"),  # the candidate pack moves this one
    ]
    ingested = app_client.post("/api/v1/events", json=[*batch, "not an event"])
    assert ingested.status_code == 200
    preview = app_client.post("/api/v1/rules/preview", json=CANDIDATE)
    activated = app_client.post("/api/v1/rules/activate", json=CANDIDATE)
    job_id = activated.json()["backfill"]["id"]
    responses: list[tuple[httpx.Response, type[BaseModel]]] = [
        (ingested, schemas.IngestResult),
        (preview, schemas.Preview),
        (activated, schemas.Activation),
        (app_client.get("/api/v1/events"), schemas.EventPage),
        (app_client.get("/api/v1/events/d1"), schemas.EventDetail),
        (app_client.get("/api/v1/fingerprints"), schemas.FingerprintList),
        (app_client.get("/api/v1/stats/errors"), schemas.ErrorDistribution),
        (app_client.get("/api/v1/stats/summary"), schemas.Summary),
        (app_client.get("/api/v1/overview"), schemas.Overview),
        (app_client.get("/api/v1/trends"), schemas.Trends),
        (app_client.get("/api/v1/alerts"), schemas.Alerts),
        (app_client.get("/api/v1/failures"), schemas.FailurePage),
        (app_client.get("/api/v1/rules"), schemas.Rules),
        (app_client.get("/api/v1/jobs"), schemas.JobList),
        (app_client.get(f"/api/v1/jobs/{job_id}"), schemas.Job),
        (app_client.get("/healthz"), schemas.Health),
    ]
    for response, model in responses:
        assert response.status_code == 200, (response.request.url, response.text)
        body = response.json()
        parsed = model.model_validate(body)
        assert _undocumented(parsed) == [], (model.__name__, _undocumented(parsed))
        # The model describes the body; serializing through it gives back the very same JSON.
        assert parsed.model_dump(mode="json", by_alias=True) == body, model.__name__
    assert responses[1][0].json()["moves"], "the candidate moves events, so Move is exercised"
    assert responses[4][0].json()["related"], "d2 shares the trace, so related events are exercised"
