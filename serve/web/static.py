"""``/static/app/...`` (the pages' own modules, styles and icon) and ``/static/vendor/...`` (the
pinned npm builds of ``serve.web.vendor``), with the page headers on every answer.

The app's own files are revalidated on each load (``no-cache``: they change with a deploy);
vendor files carry their version in the URL and are cached for a year.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import anyio.to_thread
from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from cluster.errors import NotFound
from serve.web.headers import PAGE_HEADERS
from serve.web.vendor import VendorFile, vendor_table

STATIC_DIR = Path(__file__).resolve().parent / "static"
YEAR_S = 365 * 24 * 3600
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}  # Litestar adds the charset


async def _page_headers(response: Response[object]) -> Response[object]:
    response.headers.update(PAGE_HEADERS)
    return response


@get("/{name:path}", include_in_schema=False)
async def vendor_file(name: FromPath[str]) -> Response[bytes]:
    found = vendor_table().get(name.lstrip("/"))
    if found is None or not found[0].location.is_file():
        raise NotFound(f"no such static file: {name[:100]!r} (vendor files are installed by `make install`)")
    vendor, _ = found
    return Response(
        await anyio.to_thread.run_sync(_vendor_body, vendor),
        media_type=MEDIA_TYPES[vendor.location.suffix],
        headers={**PAGE_HEADERS, "Cache-Control": f"public, max-age={YEAR_S}, immutable"},
    )


@cache
def _vendor_body(vendor: VendorFile) -> bytes:
    return vendor.body()  # a few files of about a megabyte, read once per replica


def static_routers() -> list[Router]:
    app_files = create_static_files_router(
        path="/static/app",
        directories=[STATIC_DIR],
        name="app-static",
        cache_control=CacheControlHeader(no_cache=True),
        after_request=_page_headers,
        include_in_schema=False,
    )
    vendor = Router(path="/static/vendor", route_handlers=[vendor_file], include_in_schema=False)
    return [app_files, vendor]
