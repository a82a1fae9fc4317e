"""One webhook, the Standard Webhooks way: the body, its signature, one request and its result.

The body is ``{"type", "timestamp", "data"}``; for a video's event ``data`` holds the event id
and time, the video id, its owner and ``video``: the fields the metadata route shows
(``serve.routes.videos.video_view``), rendered from the snapshot the outbox took in the
transaction of the change, so a deleted video's event still shows its last fields. The same
delivery renders the same bytes at every attempt.

Headers: ``webhook-id`` (the event id, the same at every attempt and for every endpoint:
receivers dedupe by it), ``webhook-timestamp`` (the attempt's time) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, made by the ``standardwebhooks`` package;
during a rotation's grace period a second signature with the previous secret follows).

The request goes through ``addresses.GuardedBackend`` (every address checked at connect), with
no redirect followed, no proxy, no connection kept, and one deadline for all of it.
"""

from __future__ import annotations

import base64
import email.utils
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpcore
import msgspec
from standardwebhooks.webhooks import Webhook

from pipelines.notify.addresses import RefusedAddress, parse_webhook_url

SECRET_BYTES = 32
USER_AGENT = "vodray-webhooks/0.1"
MAX_ERROR_CHARS = 300
MAX_ANSWER_BYTES = 64 * 1024
"""Of a receiver's answer, read and dropped; the status code is what counts."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def event_data(delivery: Mapping[str, Any], public_url: str) -> dict[str, Any]:
    """The ``data`` of a delivery's event (a row of ``catalog.outbox.due_deliveries``)."""
    data: dict[str, Any] = {
        "event_id": delivery["event_id"],
        "occurred_at": delivery["occurred_at"],
        "owner": delivery["owner_id"],
    }
    if delivery.get("video") is not None:
        from serve.routes.videos import video_view  # the metadata route's own rendering

        data["video_id"] = delivery["video_id"]
        data["video"] = video_view(dict(delivery["video"]), public_url)
    return data | dict(delivery.get("detail") or {})


def event_body(delivery: Mapping[str, Any], public_url: str) -> bytes:
    return msgspec.json.encode(
        {
            "type": delivery["type"],
            "timestamp": delivery["occurred_at"],
            "data": event_data(delivery, public_url),
        }
    )


def signing_secrets(delivery: Mapping[str, Any], now: datetime) -> list[str]:
    """The endpoint's secret, and its previous one while the rotation's grace period lasts."""
    found = [str(delivery["secret"])]
    until = delivery.get("previous_secret_until")
    if delivery.get("previous_secret") and until is not None and until > now:
        found.append(str(delivery["previous_secret"]))
    return found


def signed_headers(event_id: str, body: bytes, keys: Sequence[str], now: datetime) -> dict[str, str]:
    signatures = " ".join(Webhook(key).sign(event_id, now, body) for key in keys)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``status_code`` if the receiver answered, else ``error``."""

    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after_s: float | None = None
    permanent: bool = False
    """Trying again cannot help (a mail server's 5xx refusal)."""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _status_error(status: int) -> str | None:
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"the receiver answered {status} (redirects are not followed)"
    return f"the receiver answered {status}"


async def post_webhook(
    pool: httpcore.AsyncConnectionPool, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
) -> Outcome:
    """POST ``body`` to ``url`` once; never raises for anything the receiver or network does."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        parse_webhook_url(url)  # the scheme and form, again; the addresses are checked at connect
        with anyio.fail_after(timeout_s):
            async with pool.stream(
                "POST",
                url,
                headers=[(name.encode(), value.encode()) for name, value in headers.items()],
                content=body,
                extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)},
            ) as response:
                status = response.status
                wait = retry_after_s(_header(response.headers, b"retry-after"), datetime.now(UTC))
                read = 0  # let the receiver finish its answer (up to a bound), then hang up
                async for chunk in response.aiter_stream():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
    except RefusedAddress as exc:
        return Outcome(None, exc.detail[:MAX_ERROR_CHARS], took())
    except (TimeoutError, httpcore.TimeoutException):
        return Outcome(None, f"no answer within {timeout_s:g} s", took())
    except (httpcore.ConnectError, OSError) as exc:
        return Outcome(None, f"could not connect: {exc}"[:MAX_ERROR_CHARS], took())
    except httpcore.ProtocolError as exc:
        return Outcome(None, f"the receiver broke the HTTP exchange: {exc}"[:MAX_ERROR_CHARS], took())
    except (httpcore.NetworkError, httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
        return Outcome(None, f"the request failed: {exc}"[:MAX_ERROR_CHARS], took())
    return Outcome(status, _status_error(status), took(), wait)


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
