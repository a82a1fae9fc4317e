"""Upload, follow, list, describe and delete videos.

A caller sees their own videos and public ones; anything else is a 404 like an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import anyio.to_thread
from litestar import Request, Response, Router, delete, get, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from catalog.validation import (
    LANG,
    MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
    NO_CONTROL_CHARACTERS,
    TITLE_PATTERN,
)
from catalog.visibility import VISIBILITIES
from cluster import layout
from cluster.errors import Forbidden, Unauthorized
from cluster.settings import HttpSettings, SubtitleSettings
from serve.openapi import BEARER, BEARER_OR_ANONYMOUS, errors
from serve.routes import ServicesDep, find_visible_video
from serve.routes.sidecars import add_subtitles_route
from serve.routes.subtitles import subtitles_view
from serve.security import User, Viewer
from serve.sidecar_files import MAX_SIDECARS, MAX_TRANSLATE_TO
from serve.uploads import accept_upload, body_limit_bytes

LIST_MAX_LIMIT = 100
LIST_MAX_OFFSET = 2**31 - 1
"""Far past any real catalog, and inside every SQL integer type (DuckDB's BIGINT overflowed)."""
POLL_INTERVAL_S = 0.25
TRANSLATE_TO_PATTERN = r"^\s*([A-Za-z]{2,3}\s*(,\s*[A-Za-z]{2,3}\s*)*)?,?\s*$"
WAIT = "seconds to wait for a change of status, step or progress (a long poll; needs a token)"


@dataclass
class UploadOperation(Operation):
    """The upload reads its body as a stream, so Litestar cannot infer the form: say it here."""

    def __post_init__(self) -> None:
        text = OpenAPIType.STRING
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file", "title"],
            properties={
                "file": Schema(type=text, format=OpenAPIFormat.BINARY, min_length=1, description="the video"),
                "title": Schema(type=text, min_length=1, max_length=MAX_TITLE_CHARS, pattern=TITLE_PATTERN),
                "description": Schema(
                    type=text, max_length=MAX_DESCRIPTION_CHARS, pattern=NO_CONTROL_CHARACTERS
                ),
                "visibility": Schema(type=text, enum=list(VISIBILITIES), default="private"),
                "subtitles": Schema(
                    type=OpenAPIType.ARRAY,
                    max_items=MAX_SIDECARS,
                    items=Schema(type=text, format=OpenAPIFormat.BINARY),
                    description="sidecar subtitle files, each named *.srt or *.vtt, at most"
                    " VODRAY_MAX_SUBTITLE_MB; one `subtitles_lang` per file, in the same order",
                ),
                "subtitles_lang": Schema(
                    type=OpenAPIType.ARRAY,
                    max_items=MAX_SIDECARS,
                    items=Schema(type=text, pattern=LANG.pattern),
                    description="the language of each `subtitles` file, in the same order (e.g. fr, pt-BR)",
                ),
                "translate_to": Schema(
                    type=text,
                    pattern=TRANSLATE_TO_PATTERN,
                    description="languages to translate the subtitles to, comma-separated"
                    f" (e.g. es,fr; at most {MAX_TRANSLATE_TO}), on top of the configured ones",
                ),
            },
        )
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=form)}
        )


@post(
    "/",
    status_code=HTTP_202_ACCEPTED,
    operation_class=UploadOperation,
    responses=errors(400, 401, 413, 422, 429, 503),
    security=BEARER,
)
async def upload_video(request: Request[Any, Any, Any], user: User, services: ServicesDep) -> Response[Any]:
    """Multipart fields: ``file`` (the video), ``title``, optional ``description`` and
    ``visibility`` (``public`` or ``private``, default ``private``), optional sidecar subtitle
    files (``subtitles``, repeated, each with a ``subtitles_lang`` in the same order) and
    ``translate_to`` (``es,fr``). Answers at once; follow ``status_url`` for progress."""
    video = await accept_upload(request, services, user.id)
    body = {
        "id": video["id"],
        "status": video["status"],
        "status_url": f"/v1/videos/{video['id']}/status",
        "url": f"/v1/videos/{video['id']}",
    }
    return Response(body, status_code=HTTP_202_ACCEPTED, headers={"Location": body["url"]})


FINISHED = ("ready", "failed")


WaitSeconds = float
"""The ``wait`` of a long poll. Each app resolves this name (``signature_namespace``, in
``videos_router``) to a float bounded by its ``VODRAY_MAX_WAIT_S``, so the contract shows the bound."""


@get("/{video_id:str}/status", responses=errors(400, 401, 404, 429, 503), security=BEARER_OR_ANONYMOUS)
async def video_status(
    video_id: FromPath[str], viewer: Viewer, services: ServicesDep, wait: WaitSeconds = 0
) -> dict[str, Any]:
    """With ``wait`` > 0, answers as soon as the status, step or progress changes, or after
    ``wait`` seconds, whichever comes first (a long poll); a finished video answers at once.
    Long polls need a bearer token (401 without) and are bounded per user and per replica
    (``VODRAY_LONG_POLLS_PER_USER``, ``VODRAY_LONG_POLLS_TOTAL``): over a bound, 429 with a
    ``Retry-After`` of when the earliest long poll in the way ends."""
    if wait > 0 and viewer is None:
        raise Unauthorized("long polls (wait > 0) need a bearer token; without one, ask without wait")
    viewer_id = viewer.id if viewer else None
    latest = status_view(await find_visible_video(services, video_id, viewer_id))
    if viewer is None or wait <= 0 or latest["status"] in FINISHED:
        return latest
    started_as = _progress_key(latest)
    with services.long_polls.hold(viewer.id, wait), anyio.move_on_after(wait):
        while _progress_key(latest) == started_as:
            await anyio.sleep(POLL_INTERVAL_S)
            latest = status_view(await find_visible_video(services, video_id, viewer_id))
    return latest


@get("/", responses=errors(400, 401, 503), security=BEARER_OR_ANONYMOUS)
async def list_videos(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    services: ServicesDep,
    limit: Annotated[int, Parameter(ge=1, le=LIST_MAX_LIMIT, description="videos per page")] = 20,
    offset: Annotated[int, Parameter(ge=0, le=LIST_MAX_OFFSET, description="videos to skip")] = 0,
) -> dict[str, Any]:
    """The caller's own videos and everyone's public ones, newest first."""
    page = await services.catalog.list_videos.remote(viewer.id if viewer else None, limit, offset)
    base = _base_url(request)
    items = [video_view(video, base) for video in page["items"]]
    return {"items": items, "total": page["total"], "limit": limit, "offset": offset}


METADATA = (
    "Title, status and renditions; once ready, the URLs to play and download it: `manifest_url` (DASH),"
    " `hls_url`, `mp3_url` (null without audio), `poster_url` and `storyboard_url`: a WebVTT of"
    " seek-bar previews whose cues each name a tile of a sprite sheet relative to it"
    " (`storyboard.jpg#xywh=160,0,160,90`), for a player's thumbnails track (Shaka's"
    " `addThumbnailsTrack`); null while the video has none. Then its subtitles."
)


@get(
    "/{video_id:str}",
    description=METADATA,
    responses=errors(400, 401, 404, 503),
    security=BEARER_OR_ANONYMOUS,
)
async def video_metadata(
    request: Request[Any, Any, Any], video_id: FromPath[str], viewer: Viewer, services: ServicesDep
) -> dict[str, Any]:
    video = await find_visible_video(services, video_id, viewer.id if viewer else None)
    return video_view(video, _base_url(request))


@delete("/{video_id:str}", responses=errors(400, 401, 403, 404, 503), security=BEARER)
async def delete_video(video_id: FromPath[str], user: User, services: ServicesDep) -> None:
    """Owner only: stops its job and removes the video, its source and its media."""
    video = await find_visible_video(services, video_id, user.id)
    if video["owner_id"] != user.id:
        raise Forbidden("only the owner may delete a video")
    await services.dispatcher.cancel.remote(video_id)
    for prefix in layout.video_prefixes(video_id):
        await anyio.to_thread.run_sync(services.storage.delete_prefix, prefix)
    await services.catalog.delete_video.remote(video_id)


def status_view(video: dict[str, Any]) -> dict[str, Any]:
    job = video.get("job") or {}
    return {
        "id": video["id"],
        "status": video["status"],
        "step": job.get("step"),
        "progress": job.get("progress", 0.0),
        "chunks_done": job.get("chunks_done") or 0,
        "chunks_total": job.get("chunks_total") or 0,
        "error": video.get("error") or job.get("error"),
        "updated_at": job.get("updated_at") or video["updated_at"],
    }


def _progress_key(status: dict[str, Any]) -> tuple[Any, ...]:
    return status["status"], status["step"], status["progress"]


def video_view(video: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The public description of a video; playback URLs once it is ready."""
    view = {
        "id": video["id"],
        "title": video["title"],
        "description": video["description"],
        "visibility": video["visibility"],
        "status": video["status"],
        "owner": video["owner_id"],
        "duration_s": video.get("duration_s"),
        "width": video.get("width"),
        "height": video.get("height"),
        "renditions": [
            {key: rendition.get(key) for key in ("name", "width", "height", "bandwidth", "bytes")}
            for rendition in video.get("renditions") or []
        ],
        "created_at": video["created_at"],
        "ready_at": video.get("ready_at"),
        "error": video.get("error"),
        "translate_to": video.get("translate_to") or [],
    }
    if video["status"] == "ready":
        view |= layout.playback_urls(
            base_url, video["id"], bool(video.get("has_audio")), has_storyboard=bool(video.get("storyboard"))
        )
    view |= subtitles_view(video, base_url)
    return view


def _base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def videos_router(http: HttpSettings, subtitles: SubtitleSettings) -> Router:
    """The routes under ``/v1/videos``; the body limit lets a whole upload through (streamed)."""
    subtitle_bytes = subtitles.max_subtitle_mb * 1024 * 1024
    return Router(
        path="/v1/videos",
        route_handlers=[
            upload_video,
            add_subtitles_route(subtitles),
            video_status,
            list_videos,
            video_metadata,
            delete_video,
        ],
        request_max_body_size=body_limit_bytes(http.max_upload_bytes, subtitle_bytes),
        signature_namespace={
            "WaitSeconds": Annotated[float, Parameter(ge=0, le=http.max_wait_s, description=WAIT)]
        },
        tags=["videos"],
    )
