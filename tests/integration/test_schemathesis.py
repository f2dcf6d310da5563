"""Schemathesis over the ASGI app: every operation, positive and negative data, all checks, bounded and derandomized
(FAULTLENS_FUZZ_EXAMPLES cases per operation and mode: 8 in `make test`, 100 in `make fuzz`).

The document is the contract: a 500, a status or content type it does not declare, or a body that does not match
its schema fails here. SQLite with a few seeded events and one API key (so authentication is on and checked); the task
routes read an empty store under a Redis key prefix of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, CheckFunction, is_check_class, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from faultlens.api.app import create_app
from faultlens.store import keys
from tests.conftest import missing_service
from tests.helpers import ago, event
from tests.integration.task_support import TASK_REDIS_URL, build_task_services

# Cases per operation and mode: a few in `make test`, many more in `make fuzz`, its own step of .ci/run
# (DECISIONS.md "Test time": long fuzzing runs apart from `make test`).
MAX_EXAMPLES = int(os.environ.get("FAULTLENS_FUZZ_EXAMPLES", "8"))

load_all_checks()
# Every registered check (all are functions; class-based ones would run through the schema's own registry).
ALL_CHECKS: list[CheckFunction] = [check for check in CHECKS.get_all() if not is_check_class(check)]
# A request valid by the document may still be refused with 400 for what OpenAPI 3.0 cannot say: window together
# with since/until, since not before until, a cursor this server never issued, a rule pack whose rules do not
# compile. Those answers are the documented error body; every other check keeps its default.
CHECKS_CONFIG = {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}}
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


def _require_redis() -> None:
    probe = redis.Redis.from_url(TASK_REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        probe.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {TASK_REDIS_URL} is not reachable: {exc}")
    finally:
        probe.close()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    _require_redis()
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    services = build_task_services(f"sqlite:///{tmp / 'st.db'}", tmp)
    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant="default", scopes=list(keys.SCOPES), name="schemathesis")
    # A key with every scope, given to schemathesis as the document's bearer scheme: each operation runs
    # authenticated, and ignored_auth checks that each operation declaring security refuses a request without it.
    auth = {"Authorization": f"Bearer {secret}"}
    config = SchemathesisConfig.from_dict(
        {"checks": CHECKS_CONFIG, "auth": {"openapi": {"bearerKey": {"bearer": secret}}}}
    )
    app = create_app(services)
    with TestClient(app, headers=auth) as client:
        seed = [
            event(id="st-timeout", error_message="upstream timeout after 30s", http_status=504, trace_id="t-1"),
            event(id="st-key", error_message="invalid api key", http_status=401, trace_id="t-1"),
            event(id="st-ok", status="success", source="worker", occurred_at=ago(hours=3)),
            event(id="st-retry", status="retry", item_type="task", source="worker", attempt=2, max_attempts=3),
        ]
        assert client.post("/api/v1/events", json=seed).json()["accepted"] == len(seed)
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config, headers=auth)
    services.engine.dispose()


def _failures(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode) -> list[str]:
    """Run one operation's generated cases; the first failure (with its curl reproduction) or nothing."""

    @SETTINGS
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        try:
            case.call_and_validate(checks=ALL_CHECKS)
        except Exception as exc:  # an exception the app raised has no reproduction of its own: add it
            if not isinstance(exc, BaseExceptionGroup):
                exc.add_note(f"Reproduce with: {case.as_curl_command()}")
            raise

    try:
        run()
    except Unsatisfiable:
        return []  # nothing to break: no parameter and no body, so there is no negative case
    except (Exception, BaseExceptionGroup) as exc:  # reported with the others; the run goes on
        notes = "\n".join(getattr(exc, "__notes__", ()))
        return [f"{type(exc).__name__}: {str(exc)[:3000]}\n{notes}"]
    return []


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_document(api_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the document has an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        operations += 1
        failures += [f"{operation.label}: {f}" for f in _failures(operation, mode)]
    assert operations >= 20
    assert not failures, f"{len(failures)} failing operation(s):\n" + "\n\n".join(failures)


def test_retry_of_an_id_no_queue_can_hold_is_not_found(tmp_path: Path) -> None:
    # Found by the run above: RQ refuses non-ASCII job ids with a ValueError, which answered 500.
    _require_redis()
    services = build_task_services(f"sqlite:///{tmp_path / 'retry.db'}", tmp_path)
    try:
        with TestClient(create_app(services)) as client:
            for path in ("/api/v1/tasks/%C3%AC/retry", "/api/v1/tasks/%C3%AC/retry?kind=rq"):
                r = client.post(path)
                assert r.status_code == 404, (path, r.text)
                assert r.json()["error"]["code"] == "task_not_found"
    finally:
        services.engine.dispose()
