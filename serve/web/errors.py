"""HTML error pages for page paths; every API path keeps its JSON error body (``serve.errors``)."""

from __future__ import annotations

from litestar import Response

from serve.web.render import render

API_PREFIXES = ("/v1", "/media", "/schema", "/healthz", "/readyz", "/static")
"""Paths of programs and files: their errors stay ``{"detail": ...}`` JSON."""
TITLES = {
    400: "That request is not right",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    429: "Too many requests",
    503: "Temporarily unavailable",
}


def is_page_path(path: str, root_path: str = "") -> bool:
    """Whether ``path`` (the ASGI scope's, with or without the app's mount point ``root_path``:
    servers differ) is a page's rather than the API's."""
    if root_path and (path == root_path or path.startswith(f"{root_path}/")):
        path = path[len(root_path) :] or "/"
    return not any(path == prefix or path.startswith(f"{prefix}/") for prefix in API_PREFIXES)


def error_page(status: int, detail: str, headers: dict[str, str]) -> Response[str]:
    """The error as a page a person reads: what happened, and the way back."""
    title = TITLES.get(status, "Something went wrong")
    message = "There is nothing at this address." if status == 404 else detail
    response = render("error.html", status, page_name="error", title=title, message=message)
    response.headers.update(headers)
    return response
