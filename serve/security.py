"""Bearer-token dependencies: who is calling, from the ``Authorization`` header.

``user`` (``current_user``) is required: no valid access token is a 401. ``viewer``
(``optional_user``) is for routes that anonymous callers may use too (public videos): no
header means anonymous, but a header with a bad or expired token is still a 401, so a client
with a stale token is told to refresh instead of silently losing sight of its private videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency, Provide

from cluster.errors import Unauthorized
from serve.auth_tokens import decode_token
from serve.routes import ServicesDep


@dataclass(frozen=True)
class Caller:
    """The authenticated user behind a request, as the access token names them."""

    id: str


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <access token>'")
    return token.strip()


async def current_user(request: Request[Any, Any, Any], services: ServicesDep) -> Caller:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <access token>'")
    claims = decode_token(token, services.settings.auth, "access")
    return Caller(id=str(claims["sub"]))


async def optional_user(request: Request[Any, Any, Any], services: ServicesDep) -> Caller | None:
    token = bearer_token(request)
    if token is None:
        return None
    claims = decode_token(token, services.settings.auth, "access")
    return Caller(id=str(claims["sub"]))


USER_DEPENDENCIES = {
    "user": Provide(current_user),
    "viewer": Provide(optional_user),
}
"""Registered on the app: handlers ask for ``user: User`` or ``viewer: Viewer``."""
User: TypeAlias = NamedDependency[Caller]
"""The signed-in caller (401 without a valid token)."""
Viewer: TypeAlias = NamedDependency[Caller | None]
"""The caller if a token came, else ``None`` (anonymous)."""
