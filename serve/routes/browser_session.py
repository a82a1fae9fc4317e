"""Sign-in for the web pages: the refresh token in a cookie script cannot read, the access token in
the page's memory.

- ``POST /v1/auth/browser/login`` checks the password as ``/v1/auth/login`` does (same
  throttles) and answers the access token; the refresh token goes into the ``vodray_refresh``
  cookie: ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
  it), ``Secure`` when the request came over HTTPS, and ``Path`` the refresh route, so the
  browser sends it there and nowhere else.
- ``POST /v1/auth/browser/refresh`` answers a new access token. A page calls it when it loads,
  since a new page has no token in memory. It replaces the cookie (rotation, reuse detection: as
  ``/v1/auth/refresh``) once the cookie is ``ROTATE_AFTER_S`` old, and otherwise checks it and
  keeps it. Rotating on every page load would end logins by mistake: a link followed while the
  page's refresh is in flight cancels its answer (and the next cookie in it), and the next page
  sends the used cookie again, which reuse detection takes for a theft.
- ``DELETE /v1/auth/browser/refresh`` signs out: it needs the bearer token too (a cookie alone
  never changes anything but itself), ends the login and clears the cookie.

Every one of them checks ``Origin``: only a page of this origin may use the cookie. Another port
of the same host is the same *site* (so ``SameSite`` would let its pages send the cookie) but
not the same origin, and is refused. Everything else in the API is authorised by the bearer
token alone; the cookie is never read anywhere but here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, Router, delete, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from cluster.errors import Forbidden, Unauthorized
from serve.auth_tokens import decode_token, issue_access_token
from serve.openapi import errors
from serve.routes import ServicesDep
from serve.routes.auth import (
    REFRESH_REFUSALS,
    Credentials,
    TokenPair,
    UserOut,
    authenticate,
    end_session,
    rotate,
    start_session,
)
from serve.security import User

PREFIX = "/v1/auth/browser"
REFRESH_PATH = f"{PREFIX}/refresh"
COOKIE = "vodray_refresh"
REFRESH_COOKIE_SCHEME = "refreshCookie"
"""The cookie's name in the OpenAPI contract's security schemes."""
ROTATE_AFTER_S = 300
"""A cookie younger than this is checked and kept; an older one is used up and replaced."""


@dataclass
class BrowserSession:
    """What a page keeps in memory: the access token and who it is for (never the refresh token)."""

    access_token: str
    token_type: str
    expires_in: int
    """Seconds until the access token expires: refresh before."""
    user: UserOut


class CookieRefused(Unauthorized):
    """A 401 that also clears the cookie: a dead refresh token is no use to keep."""

    def __init__(self, detail: str, request: Request[Any, Any, Any]) -> None:
        super().__init__(detail)
        self.headers = {"Set-Cookie": _cookie(request, "", 0).to_header(header="")}


def own_origins(request: Request[Any, Any, Any]) -> set[str]:
    """``scheme://host[:port]`` of this request as the browser addressed it (``Host``), over the
    connection's scheme or the one a TLS-terminating proxy names in ``X-Forwarded-Proto``."""
    host = request.headers.get("host", "")
    schemes = {request.url.scheme}
    forwarded = request.headers.get("x-forwarded-proto")
    if forwarded:
        schemes.add(forwarded.split(",")[0].strip().lower())
    return {f"{scheme}://{host}" for scheme in schemes} if host else set()


def check_origin(request: Request[Any, Any, Any]) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        raise Forbidden(
            "the browser sign-in routes answer pages of this site only (no Origin header was sent)"
        )
    if origin not in own_origins(request):
        raise Forbidden(f"the browser sign-in routes answer pages of this site only, not {origin[:100]!r}")


def _over_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=value,
        path=REFRESH_PATH,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=_over_https(request),
    )


async def _answer(
    request: Request[Any, Any, Any], services: ServicesDep, pair: TokenPair, *, set_cookie: bool = True
) -> Response[BrowserSession]:
    claims = decode_token(pair.refresh_token, services.settings.auth, "refresh")
    record = await services.catalog.get_user.remote(claims["sub"])
    if record is None:
        raise CookieRefused("the user of this login no longer exists", request)
    max_age = max(0, int(claims["exp"]) - int(claims["iat"]))
    session = BrowserSession(
        access_token=pair.access_token,
        token_type="bearer",
        expires_in=pair.expires_in,
        user=UserOut(id=record["id"], username=record["username"]),
    )
    cookies = [_cookie(request, pair.refresh_token, max_age)] if set_cookie else []
    return Response(session, status_code=HTTP_200_OK, cookies=cookies)


@post("/login", status_code=HTTP_200_OK, responses=errors(400, 401, 403, 413, 429, 503))
async def browser_login(
    request: Request[Any, Any, Any], data: JSONBody[Credentials], services: ServicesDep
) -> Response[BrowserSession]:
    """Sign in from a page of this site (``Origin``): the access token in the body, the refresh
    token in the ``vodray_refresh`` cookie (``HttpOnly``, ``SameSite=Strict``, ``Path`` the
    refresh route, ``Secure`` over HTTPS). Throttled as ``/v1/auth/login``."""
    check_origin(request)
    user_id = await authenticate(request, services, data)
    return await _answer(request, services, await start_session(services, user_id))


@post(
    "/refresh",
    status_code=HTTP_200_OK,
    responses=errors(401, 403, 503),
    security=[{REFRESH_COOKIE_SCHEME: []}],
)
async def browser_refresh(request: Request[Any, Any, Any], services: ServicesDep) -> Response[BrowserSession]:
    """A new access token for a page of this site, from the ``vodray_refresh`` cookie. A cookie
    older than five minutes is used up and replaced (reusing a replaced one ends the login, as
    ``/v1/auth/refresh``); a younger one is kept. 401 (and the cookie cleared) when there is none
    or it no longer works."""
    check_origin(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise CookieRefused("not signed in: no sign-in cookie was sent", request)
    try:
        claims = decode_token(token, services.settings.auth, "refresh")
        if time.time() - int(claims["iat"]) < ROTATE_AFTER_S:
            status = await services.catalog.check_refresh_token.remote(
                claims["jti"], claims["fam"], claims["sub"]
            )
            if status != "ok":
                raise Unauthorized(REFRESH_REFUSALS.get(status, "unknown refresh token; log in again"))
            access, _ = issue_access_token(claims["sub"], services.settings.auth)
            kept = TokenPair(access, token, "bearer", services.settings.auth.access_ttl_s)
            return await _answer(request, services, kept, set_cookie=False)
        pair = await rotate(services, token)
    except Unauthorized as refused:
        raise CookieRefused(refused.detail, request) from None
    return await _answer(request, services, pair)


@delete(
    "/refresh",
    status_code=HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 503),
    security=[{"bearer": [], REFRESH_COOKIE_SCHEME: []}],
)
async def browser_logout(
    request: Request[Any, Any, Any], user: User, services: ServicesDep
) -> Response[None]:
    """Sign out a page of this site: needs the bearer token and the cookie of the same user; ends
    that login (no refresh token of it works again) and clears the cookie. Without a cookie there
    is nothing to end: 204 all the same."""
    check_origin(request)
    token = request.cookies.get(COOKIE)
    try:
        claims = decode_token(token, services.settings.auth, "refresh") if token else None
    except Unauthorized:
        claims = None  # expired or damaged: nothing left to end, only to clear
    if token and claims is not None:
        if claims["sub"] != user.id:
            raise Forbidden("the sign-in cookie belongs to another user than the bearer token")
        await end_session(services, token)
    return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[_cookie(request, "", 0)])


browser_session_router = Router(
    path=PREFIX,
    route_handlers=[browser_login, browser_refresh, browser_logout],
    tags=["auth"],
)
