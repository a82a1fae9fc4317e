"""Liveness (this replica answers) and readiness (the actors behind it answer too).

Both are public (load balancers and orchestrators call them without a token), so they say how
busy the pipeline is in counts only: never which videos, whose ids would leak private ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from litestar import Router, get

from cluster.errors import Unavailable
from serve.openapi import errors
from serve.routes import ServicesDep

READY_TIMEOUT_S = 2.0


@dataclass
class Health:
    status: str


@dataclass
class JobCounts:
    running: int
    """Videos being processed now."""
    queued: int
    """Videos waiting for a slot."""
    slots: int
    """Videos processed at once at most."""


@dataclass
class Readiness:
    status: str
    dispatcher: JobCounts


@get("/healthz")
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", responses=errors(503))
async def readyz(services: ServicesDep) -> Readiness:
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
    counts = JobCounts(running=len(stats["running"]), queued=len(stats["queued"]), slots=int(stats["slots"]))
    return Readiness(status="ok", dispatcher=counts)


health_router = Router(path="/", route_handlers=[healthz, readyz], tags=["health"])
