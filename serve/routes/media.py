"""The published files of a video (manifests, segments, MP3, poster, subtitles), with Range.

Players fetch these from other origins (CORS is set app-wide in ``serve.app``); a private
video's files need its owner's bearer token. Segments never
change once published (long, immutable caching); manifests are revalidated every time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio.to_thread
from litestar import Router, get, head
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath, HeaderParameter
from litestar.response import Response, Stream

from cluster import layout
from cluster.errors import ClientError, NotFound
from cluster.storage import CONTENT_TYPES, Storage
from serve.openapi import BEARER_OR_ANONYMOUS, errors
from serve.routes import ServicesDep, find_visible_video
from serve.security import Viewer

MEDIA_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}){0,3}")
"""Relative, at most four levels, no empty, dot-leading (``..``, hidden) or odd segments."""
MANIFESTS = (".mpd", ".m3u8")
SEGMENTS = (".m4s", ".mp4", ".m4a")
YEAR_S = 365 * 24 * 3600
CHUNK_BYTES = 1024 * 1024
"""Bodies larger than this are streamed chunk by chunk instead of read whole."""
RANGE_SPEC = re.compile(r"([0-9]{1,19})?-([0-9]{1,19})?")
"""``first-last`` of one byte range, ASCII digits only (``str.isdigit`` takes ``²`` and ``٣``); a
number of more than 19 digits could not address a byte of any file, so the header is ignored."""
MEDIA_ERRORS = errors(400, 401, 404, 416, 503)


class RangeNotSatisfiable(ClientError):
    status_code = 416

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested range is outside the file ({size} bytes)")
        self.headers = {"Content-Range": f"bytes */{size}"}


def _file_responses(with_body: bool) -> dict[str, OpenAPIResponse]:
    """200 (the whole file) and 206 (one range), in every content type a media file may have."""
    binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
    content = {media_type: OpenAPIMediaType(schema=binary) for media_type in CONTENT_TYPES.values()}
    headers: dict[str, OpenAPIHeader | Reference] = {
        name: OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description=about)
        for name, about in [
            ("Accept-Ranges", "always 'bytes'"),
            ("Cache-Control", "'no-cache' for manifests; long and immutable for segments"),
        ]
    }
    ranged: dict[str, OpenAPIHeader | Reference] = {
        **headers,
        "Content-Range": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), required=True),
    }
    return {
        "200": OpenAPIResponse("the whole file", content=content if with_body else None, headers=headers),
        "206": OpenAPIResponse("the requested range", content=content if with_body else None, headers=ranged),
    }


@dataclass
class MediaOperation(Operation):
    """The answers are files, not JSON: say which types, and that a Range gives a 206."""

    with_body: bool = field(default=True)

    def __post_init__(self) -> None:
        self.responses = {**(self.responses or {}), **_file_responses(self.with_body)}


@dataclass
class MediaHeadOperation(MediaOperation):
    with_body: bool = field(default=False)


@dataclass(frozen=True)
class MediaAnswer:
    """Which bytes of which file to send, and the headers that describe them."""

    key: str
    start: int
    end: int
    status: int
    headers: dict[str, str]
    media_type: str


@get(
    "/{video_id:str}/{file_path:path}",
    operation_class=MediaOperation,
    responses=MEDIA_ERRORS,
    security=BEARER_OR_ANONYMOUS,
)
async def media_file(
    video_id: FromPath[str],
    file_path: FromPath[str],
    viewer: Viewer,
    services: ServicesDep,
    range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
) -> Response[Any]:
    answer = await resolve_media(services, video_id, file_path, viewer, range_header)
    storage, key, start, end = services.storage, answer.key, answer.start, answer.end
    if end - start <= CHUNK_BYTES:
        body = await anyio.to_thread.run_sync(storage.read_range, key, start, end) if end > start else b""
        return Response(body, status_code=answer.status, headers=answer.headers, media_type=answer.media_type)
    return Stream(
        _chunks(storage, key, start, end),
        status_code=answer.status,
        headers={**answer.headers, "Content-Length": str(end - start)},
        media_type=answer.media_type,
    )


@head(
    "/{video_id:str}/{file_path:path}",
    operation_class=MediaHeadOperation,
    responses=MEDIA_ERRORS,
    security=BEARER_OR_ANONYMOUS,
)
async def media_file_head(
    video_id: FromPath[str],
    file_path: FromPath[str],
    viewer: Viewer,
    services: ServicesDep,
    range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
) -> Response[None]:
    """The headers a GET would answer (players probe sizes this way), without the body."""
    answer = await resolve_media(services, video_id, file_path, viewer, range_header)
    headers = {
        **answer.headers,
        "Content-Length": str(answer.end - answer.start),
        "Content-Type": answer.media_type,
    }
    return Response(None, status_code=answer.status, headers=headers)


async def resolve_media(
    services: ServicesDep, video_id: str, file_path: str, viewer: Viewer, range_header: str | None
) -> MediaAnswer:
    relative = file_path.lstrip("/")
    suffix = relative[relative.rfind(".") :] if "." in relative else ""
    if not MEDIA_PATH.fullmatch(relative) or suffix not in CONTENT_TYPES:
        raise NotFound(f"no such media file: {relative[:200]!r}")
    video = await find_visible_video(services, video_id, viewer.id if viewer else None)
    key = layout.media_key(video_id, relative)
    try:
        size = await anyio.to_thread.run_sync(services.storage.size, key)
    except NotFound:
        raise NotFound(f"video {video_id} has no file {relative!r}") from None
    headers = {"Accept-Ranges": "bytes", "Cache-Control": cache_control(suffix, video["visibility"])}
    wanted = parse_range(range_header, size)
    if wanted is None:
        return MediaAnswer(key, 0, size, 200, headers, CONTENT_TYPES[suffix])
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return MediaAnswer(key, start, end, 206, headers, CONTENT_TYPES[suffix])


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single ``bytes=`` range; None to send the whole file.

    Forms: ``a-b``, ``a-``, ``-n`` (the last n bytes). Several ranges, other units, text that
    does not parse and ``a-b`` with ``b < a`` are ignored: the whole file is sent, as RFC 9110
    says for an invalid range. A valid range that misses the file raises ``RangeNotSatisfiable``.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    matched = RANGE_SPEC.fullmatch(spec.strip()) if unit.strip().lower() == "bytes" else None
    if matched is None or matched.group(1, 2) == (None, None):
        return None
    first, last = (int(number) if number else None for number in matched.group(1, 2))
    if first is None:  # suffix range: the last n bytes
        if last == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - (last or 0)), size
    if last is not None and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, size if last is None else min(last + 1, size)


def cache_control(suffix: str, visibility: str) -> str:
    if suffix in MANIFESTS:
        return "no-cache"
    scope = "public" if visibility == "public" else "private"
    if suffix in SEGMENTS:
        return f"{scope}, max-age={YEAR_S}, immutable"
    return f"{scope}, max-age=3600"


async def _chunks(storage: Storage, key: str, start: int, end: int) -> Any:
    position = start
    while position < end:
        stop = min(position + CHUNK_BYTES, end)
        yield await anyio.to_thread.run_sync(storage.read_range, key, position, stop)
        position = stop


media_router = Router(
    path="/media",
    route_handlers=[media_file, media_file_head],
    tags=["media"],
)
