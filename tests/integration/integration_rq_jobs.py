"""RQ job functions of the integration tests; importing this module configures faultlens.integrations.rq."""

from __future__ import annotations

import time

from faultlens.integrations import context
from faultlens.integrations import rq as faultlens_rq

SOURCE = "invoice-worker"
faultlens_rq.configure(source=SOURCE)


def render_invoice(order_id: int) -> str:
    return f"invoice-{order_id}.pdf"


def seen_trace() -> str | None:
    """The trace id the job itself runs under (set by TracedJob)."""
    trace = context.current_trace()
    return trace.trace_id if trace is not None else None


def send_invoice(order_id: int) -> None:
    raise ConnectionRefusedError(f"smtp.example.com:587 refused the connection (order {order_id})")


def hang(seconds: float) -> None:
    """Outlives its job_timeout: the work horse's death penalty raises JobTimeoutException."""
    time.sleep(seconds)
