"""The Litestar app: routes, dependencies, the error mapping, OpenAPI at ``/schema``."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from cluster.settings import Settings
from cluster.storage import Storage
from serve.errors import error_response
from serve.routes import Services
from serve.routes.auth import auth_router
from serve.routes.health import health_router
from serve.routes.media import media_router
from serve.routes.search import search_router
from serve.routes.videos import videos_router
from serve.security import USER_DEPENDENCIES

# Players and web front ends on any origin. Safe for the whole API: credentials are bearer
# tokens a page must hold itself, never cookies the browser would attach for it.
CORS = CORSConfig(
    allow_origins=["*"],
    allow_methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
    allow_headers=["Authorization", "Range", "Content-Type"],
    expose_headers=["Accept-Ranges", "Content-Length", "Content-Range", "Location", "Retry-After"],
    max_age=86400,
)
# The docs page's "Authorize" button takes the access token from POST /v1/auth/login.
OPENAPI = OpenAPIConfig(
    title="vodray",
    version="0.1.0",
    description="Upload videos, follow their processing, stream them as DASH or HLS.",
    path="/schema",
    components=Components(
        security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
    ),
    security=[{"bearer": []}],
)
JSON_BODY_MAX_BYTES = 1024 * 1024
"""Body limit of every route but the upload (which sets its own from the settings)."""


def create_app(settings: Settings, catalog: Any, dispatcher: Any, storage: Storage) -> Litestar:
    """``catalog`` and ``dispatcher`` are Ray actor handles; routes await their methods."""
    services = Services(settings=settings, catalog=catalog, dispatcher=dispatcher, storage=storage)

    async def provide_services() -> Services:
        return services

    return Litestar(
        route_handlers=[
            health_router,
            auth_router,
            videos_router(settings.http.max_upload_bytes),
            media_router,
            search_router,
        ],
        dependencies={"services": Provide(provide_services), **USER_DEPENDENCIES},
        exception_handlers={Exception: error_response},
        cors_config=CORS,
        request_max_body_size=JSON_BODY_MAX_BYTES,
        openapi_config=OPENAPI,
        debug=False,
    )
