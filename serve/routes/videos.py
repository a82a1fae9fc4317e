"""Upload, follow, list, describe and delete videos.

A caller sees their own videos and public ones; anything else is a 404 like an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from litestar import Request, Response, Router, delete, get, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.status_codes import HTTP_202_ACCEPTED

from catalog.validation import MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS
from cluster import layout
from cluster.errors import BadRequest, Forbidden
from serve.routes import Services, find_visible_video
from serve.security import Caller
from serve.uploads import accept_upload, body_limit_bytes

LIST_MAX_LIMIT = 100
POLL_INTERVAL_S = 0.25


@dataclass
class UploadOperation(Operation):
    """The upload reads its body as a stream, so Litestar cannot infer the form: say it here."""

    def __post_init__(self) -> None:
        text = OpenAPIType.STRING
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file", "title"],
            properties={
                "file": Schema(type=text, format=OpenAPIFormat.BINARY, description="the video"),
                "title": Schema(type=text, min_length=1, max_length=MAX_TITLE_CHARS),
                "description": Schema(type=text, max_length=MAX_DESCRIPTION_CHARS),
                "visibility": Schema(type=text, enum=["private", "public"], default="private"),
            },
        )
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=form)}
        )


@post("/", status_code=HTTP_202_ACCEPTED, operation_class=UploadOperation)
async def upload_video(request: Request[Any, Any, Any], user: Caller, services: Services) -> Response[Any]:
    """Multipart fields: ``file`` (the video), ``title``, optional ``description`` and
    ``visibility`` (``public`` or ``private``, default ``private``). Answers at once; follow
    ``status_url`` for progress."""
    video = await accept_upload(request, services, user.id)
    body = {
        "id": video["id"],
        "status": video["status"],
        "status_url": f"/v1/videos/{video['id']}/status",
        "url": f"/v1/videos/{video['id']}",
    }
    return Response(body, status_code=HTTP_202_ACCEPTED, headers={"Location": body["url"]})


FINISHED = ("ready", "failed")


@get("/{video_id:str}/status")
async def video_status(
    video_id: str, viewer: Caller | None, services: Services, wait: float = 0
) -> dict[str, Any]:
    """With ``wait`` > 0, answers as soon as the status, step or progress changes, or after
    ``wait`` seconds, whichever comes first (a long poll); a finished video answers at once."""
    max_wait = services.settings.http.max_wait_s
    if not 0 <= wait <= max_wait:
        raise BadRequest(f"wait must be between 0 and {max_wait} seconds")
    viewer_id = viewer.id if viewer else None
    latest = status_view(await find_visible_video(services, video_id, viewer_id))
    if wait > 0 and latest["status"] not in FINISHED:
        started_as = _progress_key(latest)
        with anyio.move_on_after(wait):
            while _progress_key(latest) == started_as:
                await anyio.sleep(POLL_INTERVAL_S)
                latest = status_view(await find_visible_video(services, video_id, viewer_id))
    return latest


@get("/")
async def list_videos(
    request: Request[Any, Any, Any],
    viewer: Caller | None,
    services: Services,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """The caller's own videos and everyone's public ones, newest first."""
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {LIST_MAX_LIMIT}")
    if offset < 0:
        raise BadRequest("offset must not be negative")
    page = await services.catalog.list_videos.remote(viewer.id if viewer else None, limit, offset)
    base = _base_url(request)
    items = [video_view(video, base) for video in page["items"]]
    return {"items": items, "total": page["total"], "limit": limit, "offset": offset}


@get("/{video_id:str}")
async def video_metadata(
    request: Request[Any, Any, Any], video_id: str, viewer: Caller | None, services: Services
) -> dict[str, Any]:
    video = await find_visible_video(services, video_id, viewer.id if viewer else None)
    return video_view(video, _base_url(request))


@delete("/{video_id:str}")
async def delete_video(video_id: str, user: Caller, services: Services) -> None:
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
    }
    if video["status"] == "ready":
        view |= layout.playback_urls(base_url, video["id"], bool(video.get("has_audio")))
    return view


def _base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def videos_router(max_upload_bytes: int) -> Router:
    """The routes under ``/v1/videos``; the body limit lets a whole upload through (streamed)."""
    return Router(
        path="/v1/videos",
        route_handlers=[upload_video, video_status, list_videos, video_metadata, delete_video],
        request_max_body_size=body_limit_bytes(max_upload_bytes),
        tags=["videos"],
    )
