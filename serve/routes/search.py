"""Search titles, descriptions and subtitles down to the line: ``GET /v1/search``.

The catalog parses the query and ranks (``catalog.search``); this route checks the parameters
and turns a hit into links. A subtitle hit's ``play_url`` is the HLS master playlist with a
W3C media fragment (``#t=12.5``): Safari, VLC and native players start there, and a page
using hls.js or Shaka sets ``video.currentTime = start_s`` itself. ``snippet`` is the matched
text HTML-escaped with the hits in ``<mark>``, so a page may insert it as HTML as it is.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.params import Parameter, QueryParameter

from catalog.search.index import FIELDS
from catalog.search.query import MAX_QUERY_CHARS
from catalog.validation import LANG
from serve.openapi import BEARER_OR_ANONYMOUS, errors
from serve.routes import ServicesDep
from serve.security import Viewer

SCOPE_PATTERN = "^({0})(,({0}))*$".format("|".join(FIELDS))
"""A comma-separated subset of the fields, as the OpenAPI contract states it."""
SEARCH_MAX_LIMIT = 100
SEARCH_MAX_OFFSET = 1000
"""Deep pages of a ranked list are never read; a bound keeps every page cheap."""


LANG_DESCRIPTION = (
    "Only what a viewer of this language can follow: subtitle lines in this language, and the"
    " title and description hits of videos that have subtitles in it. Without it, every"
    " language's lines are searched."
)
Q_DESCRIPTION = (
    'Words, "exact phrases" and prefix* words, all required. Any text of 1 to 200 characters is'
    " a query: a quote left open runs to the end, a query of no words finds nothing, and the"
    " parts after the first 8 are not searched (they are listed in `ignored`)."
)


@get("/", responses=errors(400, 401, 503), security=BEARER_OR_ANONYMOUS)
async def search(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    services: ServicesDep,
    q: Annotated[str, Parameter(min_length=1, max_length=MAX_QUERY_CHARS, description=Q_DESCRIPTION)],
    lang: Annotated[str | None, Parameter(pattern=f"^{LANG.pattern}$", description=LANG_DESCRIPTION)] = None,
    # "scope" is Litestar's name for the ASGI scope: the query parameter needs another name here.
    search_scope: Annotated[
        str,
        QueryParameter(
            name="scope",
            pattern=SCOPE_PATTERN,
            description="a comma-separated subset of title,description,subtitles",
        ),
    ] = ",".join(FIELDS),
    limit: Annotated[int, Parameter(ge=1, le=SEARCH_MAX_LIMIT, description="hits per page")] = 20,
    offset: Annotated[int, Parameter(ge=0, le=SEARCH_MAX_OFFSET, description="hits to skip")] = 0,
) -> dict[str, Any]:
    """Titles, descriptions and subtitle lines (every language, original and translated) of the
    ready videos the caller may see (their own and public ones; anonymous: public ones), ranked
    by BM25. ``total`` counts every hit exactly (``total_exact`` is always true, kept so that
    clients reading it keep working)."""
    fields = tuple(dict.fromkeys(search_scope.split(",")))
    found = await services.catalog.search.remote(
        q, viewer.id if viewer else None, lang=lang, fields=fields, limit=limit, offset=offset
    )
    base = str(request.base_url).rstrip("/")
    return {
        "q": q,
        "items": [hit_view(hit, base) for hit in found["items"]],
        "total": found["total"],
        "total_exact": found["total_exact"],
        "ignored": found["ignored"],
        "limit": limit,
        "offset": offset,
    }


def hit_view(hit: dict[str, Any], base_url: str) -> dict[str, Any]:
    player = f"{base_url}/media/{hit['video_id']}/master.m3u8"
    start = hit["start_s"]
    return {
        "video_id": hit["video_id"],
        "title": hit["title"],
        "field": hit["field"],
        "lang": hit["lang"],
        "source_lang": hit["source_lang"],
        "start_s": start,
        "end_s": hit["end_s"],
        "snippet": hit["snippet"],
        "score": hit["score"],
        "video_url": f"{base_url}/v1/videos/{hit['video_id']}",
        "play_url": f"{player}#t={start:g}" if start is not None else player,
    }


search_router = Router(path="/v1/search", route_handlers=[search], tags=["search"])
