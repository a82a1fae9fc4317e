"""The OpenAPI contract's shared parts: the error body, what each error status means, who may call.

Routes declare what they can answer in their decorator, e.g.
``@get("/", responses=errors(400, 401, 503), security=BEARER_OR_ANONYMOUS)``, so each route's
contract sits next to its code and reads as one line. ``serve.errors`` is what makes the bodies
true: every error, ours or Litestar's, leaves as ``{"detail": "..."}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import SecurityRequirement


@dataclass
class ErrorBody:
    """Every error answer of the API: one readable sentence saying what was wrong."""

    detail: str


ERROR_MEANINGS = {
    400: "The request is malformed: the detail names the parameter, header or field that is wrong.",
    401: "The bearer token is missing, malformed, expired or revoked (see WWW-Authenticate).",
    403: "Not allowed: changing another user's video, or a browser sign-in route from another origin.",
    404: "No such thing for this caller (another user's private video looks the same as none).",
    409: (
        "It conflicts with what exists already or with the state it is in (a disabled webhook endpoint;"
        " a resumable upload: Upload-Offset is not its offset)."
    ),
    412: "Tus-Resumable is missing or not 1.0.0; Tus-Version lists the versions this server speaks.",
    413: "The request body is larger than the limit.",
    415: "The body's Content-Type is not the one this route reads.",
    416: "The range is outside the file; Content-Range gives the file's size.",
    422: "The content cannot be processed: not a video, an unreadable subtitle file, no model to translate.",
    423: "Another request is writing to this upload right now; retry in a moment.",
    429: "Too many requests; Retry-After says in how many seconds to try again.",
    460: "Checksum mismatch: the chunk does not match Upload-Checksum and was not kept.",
    503: "A backend service is away for now (the catalog restarting); Retry-After says when to retry.",
}
"""The meaning of each error status the API uses; ``errors()`` refuses any other."""


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The ``responses=`` of a route handler: each status it may answer with an ``ErrorBody``."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=ERROR_MEANINGS[code], generate_examples=False
        )
        for code in codes
    }


BEARER: list[SecurityRequirement] = [{"bearer": []}]
"""``security=`` of routes that need an access token (without one they answer 401)."""
BEARER_OR_ANONYMOUS: list[SecurityRequirement] = [{}, {"bearer": []}]
"""``security=`` of routes anyone may call; a token shows the caller's private videos too.

A token that is sent must be valid even here (401 otherwise), so a stale client is told to
refresh instead of silently losing sight of its own videos."""
