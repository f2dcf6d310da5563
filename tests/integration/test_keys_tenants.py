"""API keys and tenants: scopes are enforced and a key of tenant A never sees tenant B's data."""

from __future__ import annotations

from fastapi.testclient import TestClient

from faultlens.services import Services
from faultlens.store import keys
from tests.helpers import event


def _key(services: Services, tenant: str, *scopes: str) -> dict[str, str]:
    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return {"Authorization": f"Bearer {secret}"}


def test_tenant_isolation_and_scopes(services: Services, client: TestClient) -> None:
    a_ingest = _key(services, "alpha", "ingest")
    a_read = _key(services, "alpha", "read")
    b_all = _key(services, "beta", "admin")

    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/api/v1/events", headers={"X-API-Key": "flk_wrong"}).status_code == 401
    r = client.post("/api/v1/events", json=[event(id="shared-id", error_message="alpha secret")], headers=a_ingest)
    assert r.json()["accepted"] == 1
    r = client.post("/api/v1/events", json=[event(id="shared-id", error_message="beta thing")], headers=b_all)
    assert r.json()["accepted"] == 1, "ids are unique per tenant, not globally"

    assert client.get("/api/v1/events", headers=a_ingest).status_code == 403
    assert client.post("/api/v1/events", json=[event()], headers=a_read).json()["error"]["code"] == "forbidden"
    alpha = client.get("/api/v1/events", headers=a_read).json()["items"]
    beta = client.get("/api/v1/events", headers=b_all).json()["items"]
    assert [e["error_message"] for e in alpha] == ["alpha secret"]
    assert [e["error_message"] for e in beta] == ["beta thing"]
    assert client.get("/api/v1/events/shared-id", headers=a_read).json()["error_message"] == "alpha secret"
    assert client.get("/api/v1/stats/summary", headers=a_read).json()["total"] == 1
    assert client.get("/api/stats/failures/summary", headers=b_all).json()["total"] == 1
