"""The web pages of vodray: server-rendered frames (Jinja2, autoescaped), small ES modules, the
pinned player and upload libraries, all from this app's origin under a strict CSP.

``web_routers()`` is what ``serve.app`` mounts; ``error_page`` renders the HTML error answer a
page path gets (API paths keep their JSON errors, ``serve.errors``).
"""

from __future__ import annotations

from litestar import Router

from serve.web.errors import error_page, is_page_path
from serve.web.pages import pages_router
from serve.web.static import static_routers

__all__ = ["error_page", "is_page_path", "web_routers"]


def web_routers() -> list[Router]:
    return [pages_router, *static_routers()]
