"""Jinja2 templates, autoescaped: whatever a page puts in HTML is text, never markup.

The server knows nothing of who is signed in (the access token lives in the page's memory and
the refresh cookie goes to one API route only), so a template renders the page's frame and
the request's own parameters; each page's module fetches what the caller may see from the
API with the caller's token and renders it as text (``static/js/dom.js``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import MediaType, Response

from serve.web.headers import PAGE_HEADERS
from serve.web.vendor import vendor_urls

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name: no user text becomes markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["vendor"] = vendor_urls()
    return env


def render(template: str, status_code: int = 200, **context: Any) -> Response[str]:
    """The page ``template`` as an HTML answer with the page headers (CSP and the rest)."""
    html = environment().get_template(template).render(**context)
    return Response(
        html,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={**PAGE_HEADERS, "Cache-Control": "no-cache"},
    )
