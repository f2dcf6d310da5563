"""Shared fixtures: real SQLite and PostgreSQL databases, services and an ASGI client per test."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.services import Services, build_services
from faultlens.settings import Settings
from faultlens.store.db import create_db_engine, migrate

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A metric label value outside the metric dictionary's closed sets raises in tests (production folds it to "other").
os.environ.setdefault("FAULTLENS_OBS_METRICS_STRICT", "1")
PG_ADMIN_URL = os.environ.get("FAULTLENS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# Test files that own a whole Redis database (they flush it, and RQ and Celery workers run over it) get databases of
# their own per pytest-xdist worker: the task tests (tests/integration/task_support.py), the Celery and RQ
# integration tests (worker_support.py). Set before those modules are imported; worker processes they start inherit it.
_REDIS_DBS_BY_WORKER = [(13, 11, 10), (9, 8, 7), (6, 5, 4), (3, 2, 1)]
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_index = int(_worker[2:]) if _worker[2:].isdigit() else 0
if _index >= len(_REDIS_DBS_BY_WORKER):
    raise RuntimeError(f"at most {len(_REDIS_DBS_BY_WORKER)} pytest-xdist workers: Redis has 16 databases")
_tasks_db, _celery_db, _rq_db = _REDIS_DBS_BY_WORKER[_index]
_redis_base = os.environ.get("FAULTLENS_TEST_REDIS", "redis://127.0.0.1:6379")
_redis_dbs = {
    "FAULTLENS_TEST_TASK_DB": str(_tasks_db),
    "FAULTLENS_TEST_CELERY_URL": f"{_redis_base}/{_tasks_db}",
    "FAULTLENS_TEST_CELERY_DB": str(_celery_db),
    "FAULTLENS_TEST_INTEGRATIONS_CELERY_URL": f"{_redis_base}/{_celery_db}",
    "FAULTLENS_TEST_RQ_DB": str(_rq_db),
}
# A worker inherits the environment of the process that started it (which ran this file too): it sets its own.
_set = os.environ.__setitem__ if "PYTEST_XDIST_WORKER" in os.environ else os.environ.setdefault
for _name, _value in _redis_dbs.items():
    _set(_name, _value)


def missing_service(reason: str) -> None:
    """Under CI a missing service fails the test; on a laptop it skips with the reason."""
    if IN_CI:
        pytest.fail(f"required service missing under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'faultlens.db'}"


def _migrate_to_head(url: str) -> None:
    """The database at `url` migrated to head, with every connection of the migration closed."""
    engine = create_db_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


# A SQLite file migrated to head once per test session, copied for every test of `db_url` (as PostgreSQL's template
# below): a copy and Alembic's no-op check take about 10 ms, the migrations 50-120.
_sqlite_template: dict[str, Path] = {}


def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "path" not in _sqlite_template:
        path = tmp_path_factory.mktemp("sqlite-template") / "faultlens.db"
        # Closing its last connection checkpoints the write-ahead log into the file, which is then copied alone.
        _migrate_to_head(f"sqlite:///{path}")
        _sqlite_template["path"] = path
    return _sqlite_template["path"]


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file of its own, already at the migrations' head."""
    target = tmp_path / "faultlens.db"
    shutil.copyfile(_migrated_sqlite(tmp_path_factory), target)
    return f"sqlite:///{target}"


# A database migrated to head once per test session, cloned for every test that wants a migrated database:
# CREATE DATABASE .. TEMPLATE copies files, several times faster than running the migrations again.
_template: dict[str, str] = {}


def _admin() -> psycopg.Connection:  # type: ignore[type-arg]
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
        raise


def _drop_template() -> None:
    name = _template.pop("name", None)
    if name:
        with contextlib.suppress(psycopg.Error), psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrated_template() -> str:
    if "name" not in _template:
        name = f"faultlens_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with _admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        _template["name"] = name
        atexit.register(_drop_template)
        # A template must have no session when it is copied.
        _migrate_to_head(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    return _template["name"]


@contextmanager
def scratch_postgres(prefix: str = "faultlens_test", *, migrated: bool = True) -> Iterator[str]:
    """A PostgreSQL database of its own (at the migrations' head unless `migrated=False`), dropped afterwards; a
    missing server fails under CI and skips elsewhere."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    template = _migrated_template() if migrated else None
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with scratch_postgres() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL database no migration has touched (the migration tests start from nothing)."""
    with scratch_postgres(migrated=False) as url:
        yield url


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A port whose socket listens but never accepts nor answers: a database or Redis that hangs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    name = "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def make_services(url: str, **settings: object) -> Services:
    # The periodic Redis task sync would read the machine's Redis db 0; tests that want it turn it on.
    settings.setdefault("task_sync_interval_s", 0)
    # Alert evaluation and delivery run on their own clocks; the alerting tests start them or call passes by hand.
    settings.setdefault("start_alerting", False)
    # Rollouts are analysed on their own clock too; the release tests call the analyzer's pass by hand.
    settings.setdefault("start_release_analyzer", False)
    # Failure groups change status on their own clock too; the group tests call the lifecycle's pass by hand.
    settings.setdefault("start_group_lifecycle", False)
    # Partition upkeep and raw-event retention (hourly) would delete the old events some tests store on purpose.
    settings.setdefault("event_partition_interval_s", 0)
    # The ASGI test client sends Host "testserver" and calls itself "testclient"; no real server allows those.
    settings.setdefault("allowed_hosts", "testserver")
    settings.setdefault("loopback_client_names", "testclient")
    return build_services(Settings(database_url=url, **settings))  # type: ignore[arg-type]


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    svc = make_services(db_url)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


@pytest.fixture
def quiet(db_url: str) -> Iterator[Services]:
    """Services whose server starts no background job: the test runs jobs itself, step by step."""
    svc = make_services(db_url, start_jobs=False)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def api(quiet: Services) -> Iterator[TestClient]:
    with TestClient(create_app(quiet)) as c:
        yield c
