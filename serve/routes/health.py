"""Liveness (this replica answers) and readiness (the actors behind it answer too)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Router, get

from cluster.errors import Unavailable
from serve.routes import Services

READY_TIMEOUT_S = 2.0


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(services: Services) -> dict[str, Any]:
    try:
        _, stats = await asyncio.wait_for(
            asyncio.gather(services.catalog.ping.remote(), services.dispatcher.stats.remote()),
            timeout=READY_TIMEOUT_S,
        )
    except TimeoutError:
        raise Unavailable(
            f"the catalog or the dispatcher did not answer within {READY_TIMEOUT_S:g} s"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure of a backend actor means not ready
        raise Unavailable(f"the catalog or the dispatcher is not available: {type(exc).__name__}") from exc
    return {"status": "ok", "dispatcher": stats}


health_router = Router(path="/", route_handlers=[healthz, readyz], tags=["health"])
