"""A video's subtitle tracks: ``GET /v1/videos/{id}/subtitles/{lang}.vtt``, and the metadata
fields that list them.

The files are the ones published beside the stream (``media/{vid}/subtitles/{lang}.vtt``, the
same bytes DASH and HLS players fetch); who may read them is who may see the video.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Response, Router, get
from litestar.params import FromPath

from catalog.validation import LANG
from cluster import layout
from cluster.errors import NotFound
from pipelines.subtitles.record import SubtitleRecord
from serve.openapi import BEARER_OR_ANONYMOUS, errors
from serve.routes import ServicesDep, find_visible_video
from serve.security import Viewer

VTT_MEDIA_TYPE = "text/vtt"


def subtitles_view(video: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``subtitles`` (published languages with their URL), ``subtitles_unavailable`` (asked-for
    languages no installed model reaches), ``subtitles_skipped`` (tracks that cannot become
    text) and ``subtitles_warnings`` (readable sentences), for a video's metadata."""
    record = SubtitleRecord.from_json(video.get("subtitles"))
    api = f"{base_url}/v1/videos/{video['id']}/subtitles"
    return {
        "subtitles": [
            {
                "lang": track.lang,
                "label": track.label,
                "source": track.source,
                "url": f"{api}/{track.lang}.vtt",
            }
            for track in record.tracks
        ],
        "subtitles_unavailable": list(record.unavailable),
        "subtitles_skipped": [item.to_json() for item in record.skipped],
        "subtitles_warnings": list(record.warnings),
    }


@get(
    "/{video_id:str}/subtitles/{file_name:str}",
    media_type=VTT_MEDIA_TYPE,
    responses=errors(400, 401, 404, 503),
    security=BEARER_OR_ANONYMOUS,
)
async def subtitle_file(
    video_id: FromPath[str], file_name: FromPath[str], viewer: Viewer, services: ServicesDep
) -> Response[bytes]:
    """One language's subtitles as WebVTT (``en.vtt``); 404 for a language the video lacks and
    for a video the caller may not see."""
    lang = file_name.removesuffix(".vtt")
    if not file_name.endswith(".vtt") or not LANG.fullmatch(lang):
        raise NotFound(f"no such subtitle file: {file_name[:80]!r} (ask for {{lang}}.vtt)")
    video = await find_visible_video(services, video_id, viewer.id if viewer else None)
    key = layout.media_key(video_id, layout.subtitle_file(lang, "vtt"))
    try:
        body = await anyio.to_thread.run_sync(services.storage.read_bytes, key)
    except NotFound:
        raise NotFound(f"video {video_id} has no {lang} subtitles") from None
    scope = "public" if video["visibility"] == "public" else "private"
    return Response(body, media_type=VTT_MEDIA_TYPE, headers={"Cache-Control": f"{scope}, no-cache"})


subtitles_router = Router(path="/v1/videos", route_handlers=[subtitle_file], tags=["subtitles"])
