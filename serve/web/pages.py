"""The pages: ``/``, ``/watch/{id}``, ``/upload``, ``/search``, ``/signin``, ``/register``, ``/signout``.

Each renders its frame (header with the search box, the page's parts, its loading and error
states) and names its module (``static/js/{page}.js``), which reads the API with the caller's
token. None is in the OpenAPI contract: they are for people, the API is for programs.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Response, Router, get
from litestar.params import FromPath, Parameter, QueryParameter

from catalog.search.query import MAX_QUERY_CHARS
from serve.routes import VIDEO_ID
from serve.web.render import render

NEXT_MAX_CHARS = 500


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (``/watch/…``), never ``//host``."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or len(target) > NEXT_MAX_CHARS
    ):
        return "/"
    return target


@get("/", include_in_schema=False, sync_to_thread=False)
def home_page(page: Annotated[int, Parameter(ge=1, le=100_000)] = 1) -> Response[str]:
    return render("home.html", page_name="home", title="Videos", page=page)


@get("/watch/{video_id:str}", include_in_schema=False, sync_to_thread=False)
def watch_page(video_id: FromPath[str]) -> Response[str]:
    if not VIDEO_ID.fullmatch(video_id):
        return render(
            "error.html",
            404,
            page_name="error",
            title="Not found",
            message="There is no video at this address.",
        )
    return render("watch.html", page_name="watch", title="Watch", video_id=video_id)


@get("/upload", include_in_schema=False, sync_to_thread=False)
def upload_page() -> Response[str]:
    return render("upload.html", page_name="upload", title="Upload")


@get("/search", include_in_schema=False, sync_to_thread=False)
def search_page(
    q: Annotated[str, Parameter(max_length=MAX_QUERY_CHARS)] = "",
    page: Annotated[int, Parameter(ge=1, le=100)] = 1,
) -> Response[str]:
    return render("search.html", page_name="search", title=f"Search: {q}" if q else "Search", q=q, page=page)


@get("/signin", include_in_schema=False, sync_to_thread=False)
def signin_page(next_url: Annotated[str | None, QueryParameter(name="next")] = None) -> Response[str]:
    return render("signin.html", page_name="signin", title="Sign in", next_url=safe_next(next_url))


@get("/register", include_in_schema=False, sync_to_thread=False)
def register_page(next_url: Annotated[str | None, QueryParameter(name="next")] = None) -> Response[str]:
    return render(
        "register.html", page_name="register", title="Create an account", next_url=safe_next(next_url)
    )


@get("/signout", include_in_schema=False, sync_to_thread=False)
def signout_page() -> Response[str]:
    return render("signout.html", page_name="signout", title="Sign out")


pages_router = Router(
    path="/",
    route_handlers=[
        home_page,
        watch_page,
        upload_page,
        search_page,
        signin_page,
        register_page,
        signout_page,
    ],
    include_in_schema=False,
)
