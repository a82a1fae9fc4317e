"""The Litestar app: routes, dependencies, the error mapping, OpenAPI at ``/schema``."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from cluster.settings import Settings
from cluster.storage import Storage
from serve import tus
from serve.errors import error_response
from serve.longpoll import LongPollSlots
from serve.routes import Services
from serve.routes.auth import auth_router
from serve.routes.browser_session import COOKIE, REFRESH_COOKIE_SCHEME, browser_session_router
from serve.routes.email import email_router
from serve.routes.health import health_router
from serve.routes.media import media_router
from serve.routes.search import search_router
from serve.routes.subtitles import subtitles_router
from serve.routes.translations import translations_router
from serve.routes.tus import tus_router
from serve.routes.videos import videos_router
from serve.routes.webhooks import webhooks_router
from serve.security import USER_DEPENDENCIES
from serve.web import web_routers

# Players and web front ends on any origin. Safe for the whole API: credentials are bearer
# tokens a page must hold itself, never cookies the browser would attach for it. (The one cookie,
# the pages' refresh token, is sent to its own route only, which checks Origin and is never
# readable from another origin: these answers allow no credentials.)
# The tus headers let a page on another origin upload with tus-js-client and read the offsets.
CORS = CORSConfig(
    allow_origins=["*"],
    allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
    allow_headers=["Authorization", "Range", "Content-Type", *tus.REQUEST_HEADERS],
    expose_headers=sorted(
        {"Accept-Ranges", "Content-Length", "Content-Range", "Location", "Retry-After", *tus.EXPOSED_HEADERS}
    ),
    max_age=86400,
)
# The docs page's "Authorize" button takes the access token from POST /v1/auth/login. Which
# routes need it is said route by route (``serve.openapi``): several work without a token.
OPENAPI = OpenAPIConfig(
    title="vodray",
    version="0.1.0",
    description="Upload videos, follow their processing, stream them as DASH or HLS.",
    path="/schema",
    components=Components(
        security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
            # The pages' refresh token (serve.routes.browser_session): HttpOnly, sent to one route.
            REFRESH_COOKIE_SCHEME: SecurityScheme(type="apiKey", name=COOKIE, security_scheme_in="cookie"),
        }
    ),
)
JSON_BODY_MAX_BYTES = 1024 * 1024
"""Body limit of every route but the upload (which sets its own from the settings)."""


async def no_sniffing(message: Message, scope: Scope) -> None:
    """``X-Content-Type-Options: nosniff`` on every answer, errors and 404s included: a browser
    takes each body as its Content-Type says, never an upload's bytes or an error as HTML or script."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)["X-Content-Type-Options"] = "nosniff"


def create_app(settings: Settings, catalog: Any, dispatcher: Any, storage: Storage) -> Litestar:
    """``catalog`` and ``dispatcher`` are Ray actor handles; routes await their methods."""
    long_polls = LongPollSlots(settings.http.long_polls_per_user, settings.http.long_polls_total)
    services = Services(
        settings=settings, catalog=catalog, dispatcher=dispatcher, storage=storage, long_polls=long_polls
    )

    async def provide_services() -> Services:
        return services

    app = Litestar(
        route_handlers=[
            health_router,
            auth_router,
            email_router,
            videos_router(settings.http, settings.subtitles),
            media_router,
            search_router,
            subtitles_router,
            tus_router(settings.http),
            webhooks_router,
            browser_session_router,
            translations_router,
            *web_routers(),
        ],
        dependencies={"services": Provide(provide_services), **USER_DEPENDENCIES},
        exception_handlers={Exception: error_response},
        before_send=[no_sniffing],
        cors_config=CORS,
        request_max_body_size=JSON_BODY_MAX_BYTES,
        openapi_config=OPENAPI,
        debug=False,
    )
    _allow_every_method_of_each_path(app)
    return app


def _allow_every_method_of_each_path(app: Litestar) -> None:
    """Litestar 2 answers ``OPTIONS`` with the methods of the first handler of a path only
    (litestar#4169, fixed in v3), e.g. ``Allow: OPTIONS, POST`` on ``/v1/videos``, which serves
    GET too. Its default OPTIONS handler reads the route it closed over: give it the whole one."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            function = handler.fn
            if getattr(function, "__name__", "") != "options_handler":
                continue
            for cell in function.__closure__ or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route
