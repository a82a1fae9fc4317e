"""Login and registration throttles, per username and per client address.

Each attempt is checked and recorded in one catalog transaction (``CatalogStore.
take_auth_attempts``), so the limits hold across API replicas and under a flood of parallel
requests. A refused attempt is a 429 whose ``Retry-After`` is the number of seconds until the
oldest counted attempt leaves the window, and is not itself recorded (waiting that long works).

The client address is the connection's peer, or the last entry of
``AuthSettings.client_address_header`` when a load balancer you trust sets it. Behind Serve's
HAProxy ingress the peer is HAProxy itself (it adds no X-Forwarded-For), so without that
setting every client shares one address and the per-address limit is a limit for everyone.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from cluster.errors import TooManyRequests
from serve.routes import Services

KEY_MAX_CHARS = 64
"""Keys are capped: a megabyte username must not become a megabyte row."""


def client_address(request: Request[Any, Any, Any], header: str | None) -> str:
    """Who is asking, as the throttles see it."""
    if header:
        forwarded = request.headers.get(header, "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:KEY_MAX_CHARS]
    return request.client.host if request.client else "unknown"


async def take_attempt(
    request: Request[Any, Any, Any], services: Services, action: str, username: str
) -> list[str]:
    """Count one ``action`` (login, register) for ``username`` and one for the client address;
    ``TooManyRequests`` if either is at its limit.

    A username's logins and its registrations are counted apart (registering a name must not
    lock its owner out); the address counts both. Returns the attempt ids, username first:
    ``release_username`` takes that one back.
    """
    auth = services.settings.auth
    keys = [
        (f"{action}:username", username[:KEY_MAX_CHARS], auth.attempts_per_username),
        ("address", client_address(request, auth.client_address_header), auth.attempts_per_address),
    ]
    taken = await services.catalog.take_auth_attempts.remote(keys, auth.attempts_window_s)
    if isinstance(taken, tuple):
        reason, retry_after_s = taken
        raise TooManyRequests(reason, retry_after_s=retry_after_s)
    return list(taken)


async def release_username(services: Services, attempt_ids: list[str]) -> None:
    """A login that succeeded does not count against its username (it still does for the address)."""
    await services.catalog.release_auth_attempts.remote(attempt_ids[:1])
