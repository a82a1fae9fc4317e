"""Webhook endpoints: register, list, read, change, delete, rotate the secret, ping, and the
delivery log with manual retries.

An endpoint hears of its owner's videos only (``catalog.outbox``). Its URL is refused here if
it is not http(s) or its host resolves to an address a server must not reach
(``pipelines.notify.addresses``), and checked again at every delivery. The secret
(``whsec_...``) is in the answer that makes or rotates it, and never again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import Router, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from catalog.events import VIDEO_EVENTS
from cluster.errors import NotFound
from pipelines.notify.addresses import MAX_URL_CHARS, AddressPolicy, check_webhook_url
from pipelines.notify.webhooks import new_secret
from serve.openapi import BEARER, errors
from serve.routes import ServicesDep
from serve.security import User

ENDPOINT_ID = re.compile(r"ep_[0-9a-f]{32}")
DELIVERY_ID = re.compile(r"dlv_[0-9a-f]{32}")
ROTATION_GRACE_S = 24 * 3600
"""After a rotation the old secret signs too, for a day, so receivers can switch without a gap."""
DELIVERIES_MAX_LIMIT = 100

EventType = Literal["video.created", "video.ready", "video.failed", "video.deleted", "video.subtitles.ready"]
assert set(EventType.__args__) == set(VIDEO_EVENTS)  # type: ignore[attr-defined]
Url = Annotated[str, Parameter(min_length=1, max_length=MAX_URL_CHARS, description="http:// or https://")]
Events = Annotated[
    list[EventType],
    Parameter(min_items=1, max_items=2 * len(VIDEO_EVENTS), description="event types to send (default all)"),
]


@dataclass
class NewEndpoint:
    url: Url
    events: Events | None = None


@dataclass
class EndpointChange:
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None
    """True enables a disabled endpoint again (its reason is cleared); false disables it."""


@dataclass
class Endpoint:
    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    """Why it was disabled: 410 Gone, every attempt of a delivery failed, or its owner."""
    created_at: datetime
    deliveries_url: str


@dataclass
class EndpointWithSecret(Endpoint):
    secret: str
    """``whsec_...``: shown in this answer only. Verify deliveries with it (Standard Webhooks)."""


@dataclass
class Attempt:
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass
class Delivery:
    id: str
    event_id: str
    event_type: str
    video_id: str | None
    state: str
    """pending (waiting for its next attempt), delivered or failed."""
    attempts: list[Attempt]
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None


@dataclass
class EndpointList:
    items: list[Endpoint]


@dataclass
class DeliveryPage:
    items: list[Delivery]
    total: int
    limit: int
    offset: int


def _endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(
        id=row["id"],
        url=row["url"],
        events=row["events"],
        enabled=row["enabled"],
        disabled_at=row["disabled_at"],
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        deliveries_url=f"/v1/webhooks/{row['id']}/deliveries",
    )


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(**{**row, "attempts": [Attempt(**attempt) for attempt in row["attempts"]]})


def _known(endpoint_id: str) -> str:
    if not ENDPOINT_ID.fullmatch(endpoint_id):
        raise NotFound(f"no webhook endpoint {endpoint_id[:64]!r}")
    return endpoint_id


def _events(events: Sequence[str] | None) -> list[str]:
    return list(dict.fromkeys(events)) if events else list(VIDEO_EVENTS)


async def _checked_url(url: str, services: ServicesDep) -> str:
    await check_webhook_url(url, AddressPolicy.of(services.settings.notify))
    return url


@post("/", status_code=HTTP_201_CREATED, responses=errors(400, 401, 409, 413, 503), security=BEARER)
async def create_endpoint(
    data: JSONBody[NewEndpoint], user: User, services: ServicesDep
) -> EndpointWithSecret:
    """Register an endpoint (at most ``VODRAY_WEBHOOKS_PER_USER``: 409 past it). The answer holds
    its secret, shown this once."""
    url = await _checked_url(data.url, services)
    secret = new_secret()
    limit = services.settings.notify.webhooks_per_user
    row = await services.catalog.create_endpoint.remote(user.id, url, _events(data.events), secret, limit)
    return EndpointWithSecret(**vars(_endpoint(row)), secret=secret)


@get("/", responses=errors(401, 503), security=BEARER)
async def list_endpoints(user: User, services: ServicesDep) -> EndpointList:
    return EndpointList([_endpoint(row) for row in await services.catalog.list_endpoints.remote(user.id)])


@get("/{endpoint_id:str}", responses=errors(400, 401, 404, 503), security=BEARER)
async def get_endpoint(endpoint_id: FromPath[str], user: User, services: ServicesDep) -> Endpoint:
    return _endpoint(await services.catalog.get_endpoint.remote(user.id, _known(endpoint_id)))


@patch("/{endpoint_id:str}", responses=errors(400, 401, 404, 413, 503), security=BEARER)
async def update_endpoint(
    endpoint_id: FromPath[str], data: JSONBody[EndpointChange], user: User, services: ServicesDep
) -> Endpoint:
    """Change its URL, its events, or enable it again (``{"enabled": true}``) after it was disabled."""
    _known(endpoint_id)
    url = None if data.url is None else await _checked_url(data.url, services)
    events = None if data.events is None else _events(data.events)
    row = await services.catalog.update_endpoint.remote(
        user.id, endpoint_id, url=url, events=events, enabled=data.enabled
    )
    return _endpoint(row)


@delete(
    "/{endpoint_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    responses=errors(400, 401, 404, 503),
    security=BEARER,
)
async def delete_endpoint(endpoint_id: FromPath[str], user: User, services: ServicesDep) -> None:
    """Removes it and its delivery log; nothing still waiting for it is sent."""
    await services.catalog.delete_endpoint.remote(user.id, _known(endpoint_id))


@post(
    "/{endpoint_id:str}/secret/rotate",
    status_code=HTTP_200_OK,
    responses=errors(400, 401, 404, 503),
    security=BEARER,
)
async def rotate_secret(endpoint_id: FromPath[str], user: User, services: ServicesDep) -> EndpointWithSecret:
    """A new secret, shown this once. For a day, deliveries carry a signature with the old one
    too, so a receiver can switch without rejecting any."""
    secret = new_secret()
    until = datetime.now(UTC) + timedelta(seconds=ROTATION_GRACE_S)
    row = await services.catalog.rotate_secret.remote(user.id, _known(endpoint_id), secret, until)
    return EndpointWithSecret(**vars(_endpoint(row)), secret=secret)


@post(
    "/{endpoint_id:str}/ping",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(400, 401, 404, 409, 503),
    security=BEARER,
)
async def ping_endpoint(endpoint_id: FromPath[str], user: User, services: ServicesDep) -> Delivery:
    """Send a ``webhook.ping`` event to this endpoint now; follow its delivery in the log."""
    return _delivery(await services.catalog.ping_endpoint.remote(user.id, _known(endpoint_id)))


@get("/{endpoint_id:str}/deliveries", responses=errors(400, 401, 404, 503), security=BEARER)
async def list_deliveries(
    endpoint_id: FromPath[str],
    user: User,
    services: ServicesDep,
    limit: Annotated[int, Parameter(ge=1, le=DELIVERIES_MAX_LIMIT, description="deliveries per page")] = 20,
    offset: Annotated[int, Parameter(ge=0, le=2**31 - 1, description="deliveries to skip")] = 0,
) -> DeliveryPage:
    """Newest first: each delivery's event, state, every attempt (time, status code or error)
    and when the next one is due."""
    page = await services.catalog.list_deliveries.remote(user.id, _known(endpoint_id), limit, offset)
    return DeliveryPage([_delivery(row) for row in page["items"]], page["total"], limit, offset)


@post(
    "/{endpoint_id:str}/deliveries/{delivery_id:str}/retry",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(400, 401, 404, 409, 503),
    security=BEARER,
)
async def retry_delivery(
    endpoint_id: FromPath[str], delivery_id: FromPath[str], user: User, services: ServicesDep
) -> Delivery:
    """Try it again now: one more attempt for a failed or delivered one, or a pending one's
    next attempt brought forward. 409 while the endpoint is disabled."""
    if not DELIVERY_ID.fullmatch(delivery_id):
        raise NotFound(f"no delivery {delivery_id[:64]!r} for this endpoint")
    row = await services.catalog.retry_delivery.remote(user.id, _known(endpoint_id), delivery_id)
    return _delivery(row)


webhooks_router = Router(
    path="/v1/webhooks",
    route_handlers=[
        create_endpoint,
        list_endpoints,
        get_endpoint,
        update_endpoint,
        delete_endpoint,
        rotate_secret,
        ping_endpoint,
        list_deliveries,
        retry_delivery,
    ],
    tags=["webhooks"],
)
