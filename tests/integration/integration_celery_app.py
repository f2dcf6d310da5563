"""The Celery app of the integration tests: faultlens.integrations.celery installed, reporting to FAULTLENS_URL."""

from __future__ import annotations

import os

from celery import Celery

from faultlens.integrations import celery as faultlens_celery

URL = os.environ.get("FAULTLENS_TEST_INTEGRATIONS_CELERY_URL", "redis://127.0.0.1:6379/11")
SOURCE = "billing-worker"

app = Celery("faultlens_integration_tests", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
)
faultlens_celery.install(app, source=SOURCE)


@app.task(name="billing.charge")
def charge(amount: int) -> int:
    return amount * 2


@app.task(name="billing.fetch_rates")
def fetch_rates(provider: str) -> None:
    raise TimeoutError(f"rates provider {provider} did not answer within 30s")


@app.task(name="billing.reconcile", autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0)
def reconcile(batch: str) -> None:
    raise ConnectionError(f"ledger at 10.0.0.7:5432 refused the connection (batch {batch})")
