"""Add a subtitle file to a video after its upload: ``POST /v1/videos/{id}/subtitles``.

The owner sends one SRT or WebVTT file (``file``) and its language (``lang``). It is checked
and normalised (``serve.sidecar_files``), kept with the video's sources, and then:

- the video is ready: the track is published at once (WebVTT file, HLS playlist, both
  manifests; ``pipelines.subtitles.manifests``) and its cues are put in the catalog, so it is
  searchable when the answer arrives;
- the video is still queued or processing: its job publishes it, with the other sidecars or,
  if its subtitles step had read them already, right after it marks the video ready;
- the video failed: it is kept for a re-run.

A sidecar in a language the video already has replaces that language's track. Tracks added
to one video at once (here, on another API replica, by its job or a backfill) take turns
(``pipelines.subtitles.publish.video_lease``): none is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from litestar import Request, Response, post
from litestar.datastructures import UploadFile
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED

from catalog.validation import LANG
from cluster import layout
from cluster.errors import BadRequest, Forbidden
from cluster.settings import SubtitleSettings
from cluster.storage import Storage
from pipelines.subtitles.publish import publish_sidecar, video_lease
from serve.openapi import BEARER, errors
from serve.routes import ServicesDep, find_visible_video
from serve.security import User
from serve.sidecar_files import (
    check_room,
    check_sidecar,
    next_sidecar_index,
    sidecar_extension,
    sidecar_lang,
    sidecar_record,
    stored_sidecars,
    too_large,
)
from serve.throttle import take_sidecar_post

FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for the ``lang`` field and the multipart framing around the file."""


@dataclass
class SidecarOperation(Operation):
    """The form is read by hand (to check its size and name its faults): describe it here."""

    def __post_init__(self) -> None:
        text = OpenAPIType.STRING
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file", "lang"],
            properties={
                "file": Schema(
                    type=text,
                    format=OpenAPIFormat.BINARY,
                    description="an SRT or WebVTT file (*.srt or *.vtt), at most VODRAY_MAX_SUBTITLE_MB",
                ),
                "lang": Schema(type=text, pattern=LANG.pattern, description="its language, e.g. fr or pt-BR"),
            },
        )
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=form)}
        )


async def add_subtitles(
    request: Request[Any, Any, Any], video_id: FromPath[str], user: User, services: ServicesDep
) -> Response[dict[str, Any]]:
    """Owner only. Multipart fields ``file`` (``*.srt`` or ``*.vtt``) and ``lang``. Answers 201
    with the track: ``published`` true when the video was ready and the track is live, false
    when the video's job will take it. 422 for a file that cannot be read (another format, no
    cue, more CPU than ``VODRAY_SUBTITLE_CPU_S``) or past ``VODRAY_MAX_SIDECARS`` languages;
    429 past ``VODRAY_SIDECAR_POSTS_PER_HOUR``."""
    settings = services.settings.subtitles
    limit = settings.max_subtitle_mb * 1024 * 1024
    video = await find_visible_video(services, video_id, user.id)
    if video["owner_id"] != user.id:
        raise Forbidden("only the owner may add subtitles to a video")
    await take_sidecar_post(services, user.id)
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit + FORM_OVERHEAD_BYTES:
        raise too_large("the subtitle file", limit)
    form = await request.form()
    sent = form.getall("file") if "file" in form else []
    files = [value for value in sent if isinstance(value, UploadFile)]
    if len(files) != 1:
        raise BadRequest("send exactly one subtitle file in the form field 'file'")
    langs = form.getall("lang") if "lang" in form else []
    if len(langs) > 1:
        raise BadRequest("send one form field 'lang'")
    lang = sidecar_lang(langs[0] if langs and isinstance(langs[0], str) else None)
    upload = files[0]
    name = upload.filename or ""
    ext = sidecar_extension(name)
    # Counted before the file is read or stored (and again under the lease, when it is stored).
    check_room(await anyio.to_thread.run_sync(stored_sidecars, services.storage, video_id), lang, settings)
    data = await upload.read()
    await upload.close()
    duration_s = video.get("duration_s") if video["status"] == "ready" else None
    result = await check_sidecar(data, name, settings, duration_s)
    index, key = await anyio.to_thread.run_sync(
        _store, services.catalog, services.storage, settings, video_id, lang, ext, data
    )
    record = sidecar_record(index, lang, name, result) | {"published": False}
    # Stored first, status read second: a job that turns ready after this read lists the
    # sidecars again once ready and publishes this one itself (``publish_late_sidecars``).
    latest = await services.catalog.get_video.remote(video_id)
    if latest is not None and latest["status"] == "ready":
        if duration_s is None:  # ready since the first look: cut the cues to the video's length
            result = await check_sidecar(data, name, settings, latest.get("duration_s"))
        if await anyio.to_thread.run_sync(
            publish_sidecar, services.storage, services.catalog, video_id, key, result.cues
        ):  # (not when a newer sidecar of the language, sent at the same time, was published)
            base = str(request.base_url).rstrip("/")
            record |= {"published": True, "url": f"{base}/v1/videos/{video_id}/subtitles/{lang}.vtt"}
    return Response(record, status_code=HTTP_201_CREATED)


def _store(
    catalog: Any,
    storage: Storage,
    settings: SubtitleSettings,
    video_id: str,
    lang: str,
    ext: str,
    data: bytes,
) -> tuple[int, str]:
    """Keep the file as the video's ``lang`` sidecar, replacing older ones of its language.

    Under the video's lease: two sidecars sent at once would otherwise take the same index, and
    the second file would replace the first (or both pass the limit's count)."""
    with video_lease(catalog, video_id):
        stored = stored_sidecars(storage, video_id)
        check_room(stored, lang, settings)
        index = next_sidecar_index(stored)
        key = layout.sidecar_key(video_id, index, lang, ext)
        storage.write_bytes(key, data)
        for _, older in stored.get(lang, []):
            storage.delete(older)
    return index, key


def add_subtitles_route(settings: SubtitleSettings) -> HTTPRouteHandler:
    """The route, its body limit from ``VODRAY_MAX_SUBTITLE_MB``."""
    return post(
        "/{video_id:str}/subtitles",
        status_code=HTTP_201_CREATED,
        operation_class=SidecarOperation,
        request_max_body_size=settings.max_subtitle_mb * 1024 * 1024 + FORM_OVERHEAD_BYTES,
        responses=errors(400, 401, 403, 404, 413, 422, 429, 503),
        security=BEARER,
    )(add_subtitles)
