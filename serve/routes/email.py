"""A user's email address: set it (``PATCH /v1/auth/me``), confirm it and unsubscribe, the last two
from links in a mail that work without signing in.

The links carry a signed token (``pipelines.notify.links``). Following one is a plain GET from a
mail reader, so it answers a small HTML page; unsubscribing also takes a POST, the one-click
unsubscribe of RFC 8058 that mail clients send for ``List-Unsubscribe-Post``.
"""

from __future__ import annotations

import html
import re
from typing import Annotated, Literal

import msgspec
from litestar import Response, Router, get, post
from litestar.enums import MediaType
from litestar.params import Parameter
from msgspec import UNSET, Meta, UnsetType

from catalog.events import MAIL_EVENTS
from cluster.errors import BadRequest, Conflict
from pipelines.notify.links import read_link
from serve.openapi import errors
from serve.routes import ServicesDep

EMAIL_MAX_CHARS = 254
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
"""An ASCII address with a dotted domain (HTML's rule for ``<input type=email>``, a dot required)."""
EMAIL = re.compile(EMAIL_PATTERN.removeprefix("^").removesuffix("$"))
MailEvent = Literal["video.ready", "video.failed", "video.subtitles.ready"]
assert set(MailEvent.__args__) == set(MAIL_EVENTS)  # type: ignore[attr-defined]
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store"}


class MeChange(msgspec.Struct):
    """What ``PATCH /v1/auth/me`` may change; a field left out is left as it is."""

    email: Annotated[str, Meta(max_length=EMAIL_MAX_CHARS, pattern=EMAIL_PATTERN)] | None | UnsetType = UNSET
    email_events: Annotated[list[MailEvent], Meta(max_length=2 * len(MAIL_EVENTS))] | UnsetType = UNSET


async def change_mail_settings(change: MeChange, user_id: str, services: ServicesDep) -> None:
    """Apply ``change``, all checked before anything is written."""
    email = change.email
    if isinstance(email, str):
        if not EMAIL.fullmatch(email):  # the schema's "$" also matches before a final "\n"
            raise BadRequest("invalid request: email: not an email address like ana@example.org")
        if not services.settings.notify.mail_enabled:
            raise Conflict("this vodray sends no mail (no VODRAY_SMTP_HOST is set), so it keeps no address")
    if not isinstance(change.email_events, UnsetType):
        await services.catalog.set_email_events.remote(user_id, list(dict.fromkeys(change.email_events)))
    if not isinstance(email, UnsetType):
        await services.catalog.set_email.remote(user_id, email)


def _page(title: str, sentence: str) -> Response[str]:
    body = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(sentence)}</p></body></html>"
    )
    return Response(body, media_type=MediaType.HTML, headers=PAGE_HEADERS)


Token = Annotated[str, Parameter(min_length=1, max_length=1024, description="the token of the mailed link")]


@get("/confirm", media_type=MediaType.HTML, responses=errors(400, 503))
async def confirm_email(token: Token, services: ServicesDep) -> Response[str]:
    """The link mailed to a new address: confirms it (a page saying so). 400 for a link that is
    not valid, has expired, or names an address that is no longer the user's."""
    claims = read_link(token, "email-confirm", services.settings.auth)
    if not await services.catalog.confirm_email.remote(claims["sub"], claims["email"]):
        raise BadRequest("this link is for an address that is no longer set on the account")
    return _page("Address confirmed", f"{claims['email']} will get mail about your videos.")


async def _unsubscribe(token: str, services: ServicesDep) -> Response[str]:
    claims = read_link(token, "unsubscribe", services.settings.auth)
    if await services.catalog.get_user.remote(claims["sub"]) is None:
        raise BadRequest("this link is for an account that no longer exists")
    await services.catalog.set_email_events.remote(claims["sub"], [])
    return _page("Unsubscribed", "You will get no more mail about your videos.")


@get("/unsubscribe", media_type=MediaType.HTML, responses=errors(400, 503))
async def unsubscribe_link(token: Token, services: ServicesDep) -> Response[str]:
    """The unsubscribe link of every mail: no more event mail (the address stays)."""
    return await _unsubscribe(token, services)


@post("/unsubscribe", status_code=200, media_type=MediaType.HTML, responses=errors(400, 413, 503))
async def unsubscribe_one_click(token: Token, services: ServicesDep) -> Response[str]:
    """RFC 8058 one-click unsubscribe (a mail client's POST for ``List-Unsubscribe-Post``)."""
    return await _unsubscribe(token, services)


email_router = Router(
    path="/v1/auth/email",
    route_handlers=[confirm_email, unsubscribe_link, unsubscribe_one_click],
    tags=["auth"],
)
