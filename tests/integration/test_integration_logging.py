"""The logging handler against a real faultlens: ERROR records with exc_info become events with their trace."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faultlens.integrations.context import TraceContext, trace_scope
from faultlens.integrations.logs import FaultlensHandler
from faultlens.integrations.sender import Sender
from tests.integration.integration_support import Faultlens, running_faultlens


@pytest.fixture
def faultlens(tmp_path: Path) -> Iterator[Faultlens]:
    with running_faultlens(tmp_path) as fl:
        yield fl


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"billing.invoices.{uuid.uuid4().hex[:8]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


def _close_invoice(number: int) -> None:
    raise ValueError(f"invoice {number} has no lines")


def test_error_records_with_an_exception_become_events(faultlens: Faultlens, logger: logging.Logger) -> None:
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=0.05)
    handler = FaultlensHandler(sender, source="billing")
    logger.addHandler(handler)
    trace = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", None, "req-5", "order-5")
    with trace_scope(trace):
        try:
            _close_invoice(7)
        except ValueError:
            logger.exception("could not close invoice %s", 7)
            logger.warning("a warning with an exception is below the level", exc_info=True)
        logger.error("an error without an exception is not sent by default")
        logger.info("nor is info")
    handler.flush()
    items = faultlens.wait_for(1, source="billing")
    assert len(items) == 1 and handler.errors == 0 and sender.sent == 1
    sent = faultlens.event(items[0]["id"])
    assert sent["operation"] == logger.name and sent["status"] == "failure" and sent["item_type"] == "job"
    assert sent["error_message"].startswith("could not close invoice 7\nValueError: invoice 7 has no lines\n")
    assert "in _close_invoice" in sent["error_message"] and sent["error_code"] == "ValueError"
    assert (sent["trace_id"], sent["span_id"], sent["request_id"], sent["correlation_id"]) == (
        trace.trace_id,
        trace.span_id,
        "req-5",
        "order-5",
    )
    assert sent["attributes"]["log.level"] == "ERROR"
    assert sent["failure_class"] != "none"  # classified as a failure by the shipped rules
    sender.close(2)


def test_every_error_record_when_configured(faultlens: Faultlens, logger: logging.Logger) -> None:
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=0.05)
    logger.addHandler(FaultlensHandler(sender, source="payments", require_exc_info=False))
    logger.error("payment provider answered %d", 502)
    logger.critical("ledger is read-only")
    logger.warning("retrying soon")
    assert sender.flush(10)
    messages = sorted(i["error_message"] for i in faultlens.wait_for(2, source="payments"))
    assert messages == ["ledger is read-only", "payment provider answered 502"]
    sender.close(2)


def test_the_handler_never_raises_into_the_app(logger: logging.Logger) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: faultlens is down
    sender = Sender(f"http://127.0.0.1:{port}", "k", flush_interval_s=0.01, max_retries=1, backoff_s=0.01)
    handler = FaultlensHandler(sender, source="down", require_exc_info=False)
    logger.addHandler(handler)
    # A message that cannot be formatted: counted, not raised (handed straight to the handler, as pytest's own
    # capture handler would raise on it).
    bad = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "count %d", ("not a number",), None)
    handler.handle(bad)
    for n in range(5):
        logger.error("failure %d", n)
    assert sender.flush(10)
    assert handler.errors == 1 and sender.dropped == 5 and sender.sent == 0
    sender.close(1)
