"""The one place an exception becomes an HTTP answer: always JSON ``{"detail": "..."}``.

Our own errors (``cluster.errors.VodError``) carry their status and a readable detail, also
when they come back from the catalog actor wrapped in a ``RayTaskError``. Litestar's own
errors (unknown route, wrong method, a body that does not validate, a body over the size
limit) keep their status with a detail rewritten to say what was wrong. A backend actor that
is away (the catalog restarting past the API's wait: ``CatalogUnavailable``) is a 503 with
``Retry-After``; anything else is a 500 with a generic detail, logged with its traceback, never
an HTML or plain-text page. The one exception is a page path (``/``, ``/watch/…``: any path
outside the API's prefixes, ``serve.web.errors``): a person gets an HTML page saying the same.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from ray.exceptions import RayActorError, RayTaskError

from cluster.errors import TooManyRequests, Unauthorized, Unavailable, VodError
from serve.web import error_page, is_page_path

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = 'Bearer realm="vodray"'


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar exception handler for every exception (registered for ``Exception``)."""
    status, detail, headers = describe_error(request, exc)
    if status >= HTTP_500_INTERNAL_SERVER_ERROR and status != HTTP_503_SERVICE_UNAVAILABLE:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    elif status == HTTP_503_SERVICE_UNAVAILABLE:
        log.warning("%s %s: %s (%r)", request.method, request.url.path, detail, exc)
    if is_page_path(request.scope["path"], request.scope.get("root_path", "")):
        return error_page(status, detail, headers)
    return Response({"detail": detail}, status_code=status, headers=headers, media_type="application/json")


def describe_error(request: Request[Any, Any, Any], exc: Exception) -> tuple[int, str, dict[str, str]]:
    """``(status, detail, headers)`` for ``exc``."""
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, VodError):
        exc = exc.cause  # raised on purpose inside an actor: as if raised here
    if isinstance(exc, VodError):
        return exc.status_code, exc.detail, _vod_headers(exc)
    if isinstance(exc, HTTPException):
        return exc.status_code, _litestar_detail(request, exc), dict(exc.headers or {})
    if isinstance(exc, RayActorError | TimeoutError):
        retry = {"Retry-After": str(Unavailable.retry_after_s)}
        return HTTP_503_SERVICE_UNAVAILABLE, "a backend service is unavailable; try again shortly", retry
    return HTTP_500_INTERNAL_SERVER_ERROR, "internal server error (it has been logged)", {}


def _vod_headers(exc: VodError) -> dict[str, str]:
    # A route's own error class may carry headers of its own (e.g. Content-Range on a 416).
    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(exc, TooManyRequests | Unavailable):
        headers["Retry-After"] = str(max(1, int(exc.retry_after_s)))
    return headers


def _litestar_detail(request: Request[Any, Any, Any], exc: HTTPException) -> str:
    if isinstance(exc, ValidationException):
        return _validation_detail(exc)
    if exc.status_code == HTTP_404_NOT_FOUND:
        return f"nothing here: {request.url.path}"
    if exc.status_code == HTTP_405_METHOD_NOT_ALLOWED:
        return f"{request.method} is not allowed on {request.url.path}"
    if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        return "the request body is too large"
    return str(exc.detail)


def _validation_detail(exc: ValidationException) -> str:
    """One line naming each bad field, e.g. ``invalid request: limit: Expected `int`, got `str```."""
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            key = "request body" if key == "data" else key  # Litestar's name for the body
            message = str(item.get("message", "is invalid"))
            problems.append(f"{key}: {message}" if key else message)
    if not problems:
        return "invalid request" if exc.detail.startswith("Validation failed") else exc.detail
    return "invalid request: " + "; ".join(problems)
