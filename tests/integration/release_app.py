"""A small two-version service for the release-gate proof: one checkout API, a good and a bad build of it.

The good build answers quickly and refuses callers with a bad API key (client failures, never actionable). The bad
build also loses its database on a share of requests (502 "upstream db refused the connection": actionable service
failures) and is slower. Both report every request to faultlens through the ASGI integration, stamped with their
release and environment.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from faultlens.integrations.asgi import ASGIApp, FaultlensMiddleware, Receive, Scope, Send
from faultlens.integrations.sender import Sender


def checkout_app(*, bad: bool, seed: int) -> FastAPI:
    app = FastAPI()
    rng = random.Random(seed)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders")
    async def create_order(request: Request) -> Any:
        if request.headers.get("x-api-key") == "wrong":
            return JSONResponse({"error": "invalid API key"}, status_code=401)
        # The good build takes 1-4 ms; the bad one 40-80 ms, and one request in ten loses its database.
        await asyncio.sleep(rng.uniform(0.040, 0.080) if bad else rng.uniform(0.001, 0.004))
        if bad and rng.random() < 0.10:
            return JSONResponse({"error": "upstream db refused the connection"}, status_code=502)
        return JSONResponse({"order": rng.randrange(1_000_000)}, status_code=201)

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, Any]:
        return {"order": order_id, "state": "paid"}

    return app


def reporting(app: FastAPI, sender: Sender, *, release: str, environment: str) -> FaultlensMiddleware:
    """`app` reporting each request to faultlens as the `checkout` source of `release` in `environment`."""
    return FaultlensMiddleware(
        app, sender, source="checkout", release=release, environment=environment, ignore_paths=("/healthz",)
    )


def by_prefix(builds: Mapping[str, ASGIApp]) -> ASGIApp:
    """Every build behind one server, as a load balancer's routes: `/<name>/<path>` reaches build `name` as
    `/<path>`, the path it sees when it runs alone. The builds share one event loop, so the test machine's load
    (and the interpreter's lock) falls on every arm alike. With a server thread per build, a canary of the same code
    as its baseline measured slower: the rank test's p was under 0.5 in all twelve runs and under 0.05 in three
    (0.25 to 0.95 in eight runs behind one server)."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # No build has startup or shutdown work.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        name, _, rest = scope["path"].lstrip("/").partition("/")
        build = builds.get(name)
        if build is None:
            await JSONResponse({"error": f"no build {name!r}"}, status_code=404)(scope, receive, send)
            return
        path = "/" + rest
        await build({**scope, "path": path, "raw_path": path.encode()}, receive, send)

    return dispatch
