"""HTTP probe regressions: HEAD beside GET, Content-Type and Content-Encoding honoured, BOMs, the access log."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.services import Services
from tests.conftest import make_services
from tests.helpers import event
from tests.integration.test_rules_preview import CANDIDATE

LIMIT = 64 * 1024
BOM = b"\xef\xbb\xbf"
EMBEDDER = "/codebase-embedder/api/v1/tasks/failed"


@pytest.fixture
def small(sqlite_url: str) -> Iterator[Services]:
    """SQLite services with a small body limit, so a zip bomb is cheap to build."""
    svc = make_services(sqlite_url, start_jobs=False, max_body_bytes=LIMIT)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def web(small: Services) -> Iterator[TestClient]:
    with TestClient(create_app(small)) as c:
        yield c


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and body["error"]["code"] == code, body
    assert body["request_id"] == r.headers["x-request-id"]
    return body["error"]  # type: ignore[no-any-return]


# --- HEAD ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/", "/api/v1/events", "/api/v1/stats/summary"])
def test_head_answers_like_get_without_a_body(web: TestClient, path: str) -> None:
    got = web.get(path)
    head = web.head(path)
    assert got.status_code == 200 and head.status_code == 200, (head.status_code, head.text)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if path == "/healthz":  # the same representation: the same length
        assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    assert head.headers["x-request-id"] and head.headers["x-content-type-options"] == "nosniff"


def test_head_on_readyz_and_unknown_paths(web: TestClient) -> None:
    ready = web.get("/readyz")
    head = web.head("/readyz")
    assert head.status_code == ready.status_code and head.content == b""
    assert web.head("/no/such/page").status_code == 404


def test_head_still_needs_what_get_needs(small: Services) -> None:
    from faultlens.store import keys

    with small.engine.begin() as conn:
        keys.create_key(conn, tenant="acme", scopes=["read"], name="probe")
    with TestClient(create_app(small)) as web:
        assert web.head("/api/v1/events").status_code == 401
    assert web.head("/healthz").status_code == 200


def test_405_allow_names_head_beside_get(web: TestClient) -> None:
    r = web.put("/healthz", json={})
    err = _error(r, 405, "method_not_allowed")
    assert [m.strip() for m in r.headers["allow"].split(",")] == ["GET", "HEAD"]
    assert err["details"]["allowed_methods"] == ["GET", "HEAD"]
    r = web.delete("/api/v1/events")
    allowed = [m.strip() for m in r.headers["allow"].split(",")]
    assert r.status_code == 405 and allowed == ["GET", "HEAD", "POST"], r.headers
    assert int(r.headers["content-length"]) == len(r.content)


def test_codebase_embedder_keeps_its_documented_head_405(web: TestClient) -> None:
    r = web.head(EMBEDDER)
    assert r.status_code == 405 and r.headers["allow"] == "GET"


# --- Content-Type --------------------------------------------------------------------------------------------


def test_ingest_refuses_protobuf_and_types_it_does_not_parse(web: TestClient) -> None:
    body = orjson.dumps([event(id="pb1")])
    err = _error(
        web.post("/api/v1/events", content=body, headers={"content-type": "application/x-protobuf"}),
        415,
        "unsupported_media_type",
    )
    assert "application/json" in err["message"] and "application/x-protobuf" not in err["details"]["accepted"]
    assert web.get("/api/v1/events").json()["items"] == []


def test_protobuf_passes_the_guard_only_on_otlp_paths(web: TestClient) -> None:
    r = web.post("/v1/traces", content=b"\x0a\x00", headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 200, r.content  # admitted by the guard and read by the OTLP receiver (one empty resource)
    r = web.post("/api/v1/rules/preview", content=b"\x0a\x00", headers={"content-type": "application/x-protobuf"})
    _error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("route", ["/api/v1/rules/preview", "/api/v1/rules/activate"])
def test_rule_routes_read_json_only(web: TestClient, route: str) -> None:
    r = web.post(route, content=orjson.dumps(CANDIDATE), headers={"content-type": "application/x-ndjson"})
    err = _error(r, 415, "unsupported_media_type")
    assert "application/json" in err["message"] and err["details"]["accepted"] == ["application/json"]


def test_ndjson_and_json_types_parse_as_their_type(web: TestClient) -> None:
    nd = orjson.dumps(event(id="t1")) + b"\n" + orjson.dumps(event(id="t2")) + b"\n"
    r = web.post("/api/v1/events", content=nd, headers={"content-type": "application/jsonl"})
    assert r.json()["accepted"] == 2
    # NDJSON sent as application/json is not valid JSON: 400, not silently accepted.
    _error(web.post("/api/v1/events", content=nd, headers={"content-type": "application/json"}), 400, "invalid_json")


# --- Content-Encoding ----------------------------------------------------------------------------------------


def test_gzip_bodies_are_decompressed(web: TestClient) -> None:
    r = web.post(
        "/api/v1/events",
        content=gzip.compress(orjson.dumps([event(id="gz1"), event(id="gz2")])),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    nd = gzip.compress(orjson.dumps(event(id="gz3")) + b"\n") + gzip.compress(orjson.dumps(event(id="gz4")))
    r = web.post(
        "/api/v1/events", content=nd, headers={"content-type": "application/x-ndjson", "content-encoding": "x-gzip"}
    )
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": []}, r.text
    r = web.post(
        "/api/v1/events",
        content=orjson.dumps([event(id="id1")]),
        headers={"content-type": "application/json", "content-encoding": "identity"},
    )
    assert r.json()["accepted"] == 1
    r = web.post(
        "/api/v1/rules/preview",
        content=gzip.compress(orjson.dumps(CANDIDATE)),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200, r.text


def test_a_zip_bomb_is_413_by_its_decompressed_size(web: TestClient) -> None:
    bomb = gzip.compress(b"[" + b" " * (LIMIT * 50) + b"]")
    assert len(bomb) < LIMIT
    for route in ("/api/v1/events", "/api/v1/rules/preview"):
        r = web.post(route, content=bomb, headers={"content-type": "application/json", "content-encoding": "gzip"})
        err = _error(r, 413, "payload_too_large")
        assert err["details"]["limit_bytes"] == LIMIT and "decompressed" in err["message"]


def test_corrupt_or_truncated_gzip_is_400_invalid_body(web: TestClient) -> None:
    whole = gzip.compress(orjson.dumps([event(id="c1")]))
    for body in (b"not gzip at all", whole[: len(whole) // 2]):
        r = web.post(
            "/api/v1/events", content=body, headers={"content-type": "application/json", "content-encoding": "gzip"}
        )
        _error(r, 400, "invalid_body")


@pytest.mark.parametrize("coding", ["br", "deflate", "compress", "zstd", "gzip, gzip"])
def test_other_encodings_are_415(web: TestClient, coding: str) -> None:
    for route in ("/api/v1/events", "/api/v1/rules/activate"):
        r = web.post(route, content=b"[]", headers={"content-type": "application/json", "content-encoding": coding})
        err = _error(r, 415, "unsupported_content_encoding")
        assert "gzip" in err["message"] and err["details"]["accepted"] == ["gzip", "identity"]


# --- BOM -----------------------------------------------------------------------------------------------------


def test_a_leading_bom_is_not_part_of_the_body(web: TestClient) -> None:
    r = web.post(
        "/api/v1/events", content=BOM + orjson.dumps([event(id="b1")]), headers={"content-type": "application/json"}
    )
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": []}, r.text
    nd = BOM + orjson.dumps(event(id="b2")) + b"\n" + orjson.dumps(event(id="b3"))
    r = web.post("/api/v1/events", content=nd, headers={"content-type": "application/x-ndjson"})
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": []}, r.text
    r = web.post(
        "/api/v1/rules/preview", content=BOM + orjson.dumps(CANDIDATE), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text


# --- access log ----------------------------------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_access_log_has_no_query_string(web: TestClient) -> None:
    logger = logging.getLogger("faultlens.access")
    lines = _Lines()
    logger.addHandler(lines)
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        r = web.get("/api/v1/events", params={"q": "password=QuerySecret42"})
        web.get("/api/v1/events/%0Aforged%20line")
    finally:
        logger.removeHandler(lines)
        logger.setLevel(before)
    assert r.status_code == 200
    assert not any("QuerySecret42" in line for line in lines.lines), lines.lines
    first = lines.lines[0].split()
    assert first[1:4] == ["GET", "/api/v1/events", "200"], first
    assert first[4].endswith("ms") and first[5] == f"request_id={r.headers['x-request-id']}"
    assert "\n" not in lines.lines[1] and "/api/v1/events/%0Aforged%20line" in lines.lines[1]
