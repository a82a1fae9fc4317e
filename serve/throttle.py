"""Login and registration throttles, per username and per client address.

Each attempt is checked and recorded in one catalog transaction (``CatalogStore.
take_auth_attempts``), so the limits hold across API replicas and under a flood of parallel
requests. A refused attempt is a 429 whose ``Retry-After`` is the number of seconds until the
oldest counted attempt leaves the window, and is not itself recorded (waiting that long works).

The client address is the last entry of ``X-Forwarded-For`` when the connection comes from
loopback: that is the local HAProxy of Serve's ingress, told by vodray's wrapper
(``serve.deployment``) to append each client's address, so a client cannot choose it (whatever
it sends comes before). Otherwise it is the last entry of ``AuthSettings.client_address_header``
when a load balancer you trust sets it, or else the connection's peer. Were the peer taken
as is behind HAProxy, every client would share HAProxy's address and the per-address limit
would be a limit for everyone.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from litestar import Request

from cluster.errors import TooManyRequests
from serve.routes import Services

KEY_MAX_CHARS = 64
"""Keys are capped: a megabyte username must not become a megabyte row."""


LOCAL_PROXY_HEADER = "X-Forwarded-For"
"""What the local HAProxy appends the client's address to (``option forwardfor``)."""


def client_address(request: Request[Any, Any, Any], header: str | None) -> str:
    """Who is asking, as the throttles see it."""
    peer = request.client.host if request.client else "unknown"
    trusted = header or (LOCAL_PROXY_HEADER if is_loopback(peer) else None)
    if trusted:
        # Every line of the header, in order: a proxy may add a line of its own rather than
        # append to the client's, and the last entry is the one the nearest proxy wrote.
        forwarded = ",".join(request.headers.getall(trusted, []))
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:KEY_MAX_CHARS]
    return peer


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address on this machine's loopback (127.0.0.0/8, ::1)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


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
    # Ids chosen here: the call repeated across a catalog restart counts the attempt once.
    ids = [uuid.uuid4().hex for _ in keys]
    taken = await services.catalog.take_auth_attempts.remote(keys, auth.attempts_window_s, ids)
    if isinstance(taken, tuple):
        reason, retry_after_s = taken
        raise TooManyRequests(reason, retry_after_s=retry_after_s)
    return list(taken)


async def release_username(services: Services, attempt_ids: list[str]) -> None:
    """A login that succeeded does not count against its username (it still does for the address)."""
    await services.catalog.release_auth_attempts.remote(attempt_ids[:1])


SIDECAR_WINDOW_S = 3600


async def take_sidecar_post(services: Services, user_id: str) -> None:
    """Count one subtitle file sent by ``user_id`` (``VODRAY_SIDECAR_POSTS_PER_HOUR`` in any
    rolling hour, across every replica: counted by the catalog); ``TooManyRequests`` past it."""
    limit = services.settings.subtitles.sidecar_posts_per_hour
    taken = await services.catalog.take_auth_attempts.remote(
        [("sidecar:user", user_id, limit)], SIDECAR_WINDOW_S
    )
    if isinstance(taken, tuple):
        _, retry_after_s = taken
        raise TooManyRequests(
            f"subtitle file limit reached: {limit} per hour; try again in {retry_after_s} s",
            retry_after_s=retry_after_s,
        )
