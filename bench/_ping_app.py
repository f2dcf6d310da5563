"""The trivial app of bench/otlp.py's middleware test: `uvicorn --factory _ping_app:create` (run from bench/).

BENCH_MIDDLEWARE non-empty wraps it in FaultlensMiddleware sending to FAULTLENS_URL.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from faultlens.integrations.asgi import FaultlensMiddleware
from faultlens.integrations.sender import Sender

SENDER: Sender | None = None


def create() -> Any:
    global SENDER
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ping/{n}")
    async def ping(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/sender-stats")
    def sender_stats() -> dict[str, int]:
        return SENDER.stats() if SENDER is not None else {}

    if not os.environ.get("BENCH_MIDDLEWARE"):
        return app
    SENDER = Sender(os.environ["FAULTLENS_URL"])
    return FaultlensMiddleware(app, SENDER, source="bench-ping", ignore_paths=("/healthz", "/sender-stats"))
