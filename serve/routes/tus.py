"""``/v1/uploads``: resumable uploads that speak tus 1.0.0 (tus-js-client, tuspy, Uppy...).

``OPTIONS /v1/uploads`` says what the server speaks (no token: browsers send it without one);
``POST`` creates an upload; ``HEAD``, ``PATCH`` and ``DELETE`` on its ``Location`` give its
offset, append a chunk and terminate it. Every answer, errors too, carries
``Tus-Resumable: 1.0.0``; every request but OPTIONS must carry it (412 otherwise, with
``Tus-Version``), and a bearer token: another user's upload is a 404, like an unknown one. The
upload's id is the id of the video it becomes; the answer to the last byte names it again in
``Upload-Video-Id`` (and so does HEAD, afterwards). Work is in ``serve.resumable_uploads``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from litestar import Request, Response, Router, delete, head, patch, post, route
from litestar.datastructures import ResponseHeader
from litestar.enums import HttpMethod, ParamType
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from cluster.settings import HttpSettings
from serve.errors import error_response
from serve.openapi import BEARER, errors
from serve.resumable_uploads import append_chunk, create_upload, terminate_upload, upload_status
from serve.routes import ServicesDep
from serve.security import User
from serve.tus import OFFSET_STREAM, TUS_VERSION, check_resumable, http_date, options_headers

NUMBER = Schema(type=OpenAPIType.STRING, pattern=r"^[0-9]{1,19}$")
TEXT = Schema(type=OpenAPIType.STRING)
UPLOAD_ID = r"^[0-9a-f]{32}$"


def _header(name: str, about: str, schema: Schema = TEXT, *, required: bool = True) -> Parameter:
    return Parameter(
        name=name, param_in=ParamType.HEADER, required=required, schema=schema, description=about
    )


TUS_RESUMABLE = _header(
    "Tus-Resumable",
    "the protocol version the client speaks; 412 if missing or not 1.0.0",
    Schema(type=OpenAPIType.STRING, enum=[TUS_VERSION]),
)


def _answer(headers: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, OpenAPIHeader | Reference]:
    return {
        name: OpenAPIHeader(schema=TEXT, description=about, required=name in required)
        for name, about in headers.items()
    }


@dataclass
class TusOperation(Operation):
    """The tus headers a route reads and answers, which Litestar cannot see (they are read raw,
    so that a wrong one is the protocol's status, not a validation 400)."""

    request_headers: ClassVar[tuple[Parameter, ...]] = ()
    answer_status: ClassVar[str] = "204"
    answer_headers: ClassVar[dict[str, str]] = {}
    answer_required: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), *self.request_headers]
        responses = dict(self.responses or {})
        found = responses.get(self.answer_status)
        answer = found if isinstance(found, OpenAPIResponse) else OpenAPIResponse(description="done")
        answer.headers = {**(answer.headers or {}), **_answer(self.answer_headers, self.answer_required)}
        answer.content = None
        responses[self.answer_status] = answer
        self.responses = responses


EXPIRES = {"Upload-Expires": "when an upload that receives no more bytes is removed (an HTTP date)"}


@dataclass
class OptionsOperation(TusOperation):
    answer_headers: ClassVar[dict[str, str]] = {
        "Tus-Version": "the protocol versions spoken: 1.0.0",
        "Tus-Extension": "creation,expiration,termination,checksum",
        "Tus-Max-Size": "the largest upload, in bytes (VODRAY_MAX_UPLOAD_MB)",
        "Tus-Checksum-Algorithm": "sha1,sha256",
    }
    answer_required: ClassVar[tuple[str, ...]] = (
        "Tus-Version",
        "Tus-Extension",
        "Tus-Max-Size",
        "Tus-Checksum-Algorithm",
    )


@dataclass
class CreateOperation(TusOperation):
    request_headers: ClassVar[tuple[Parameter, ...]] = (
        TUS_RESUMABLE,
        _header("Upload-Length", "the whole file's size in bytes, 1 to Tus-Max-Size", NUMBER),
        _header(
            "Upload-Metadata",
            "comma-separated `key base64(value)` pairs: `title` (required), `description`, `visibility`"
            " (`private` by default, or `public`), `translate_to` (`es,fr`), checked as POST /v1/videos"
            " checks its form; other keys (`filename`...) are kept and ignored",
        ),
    )
    answer_status: ClassVar[str] = "201"
    answer_headers: ClassVar[dict[str, str]] = {
        "Location": "the upload's URL; its last path segment is the video's id",
        **EXPIRES,
    }
    answer_required: ClassVar[tuple[str, ...]] = ("Location", "Upload-Expires")


@dataclass
class HeadOperation(TusOperation):
    request_headers: ClassVar[tuple[Parameter, ...]] = (TUS_RESUMABLE,)
    answer_status: ClassVar[str] = "200"
    answer_headers: ClassVar[dict[str, str]] = {
        "Upload-Offset": "bytes received and kept: send the rest from here",
        "Upload-Length": "the whole file's size",
        "Cache-Control": "no-store",
        "Upload-Metadata": "as sent at creation",
        "Upload-Video-Id": "once every byte is in: the video it became (follow /v1/videos/{id}/status)",
        **EXPIRES,
    }
    answer_required: ClassVar[tuple[str, ...]] = (
        "Upload-Offset",
        "Upload-Length",
        "Cache-Control",
        "Upload-Expires",
    )


@dataclass
class PatchOperation(TusOperation):
    request_headers: ClassVar[tuple[Parameter, ...]] = (
        TUS_RESUMABLE,
        _header("Upload-Offset", "the upload's offset (what HEAD answered); 409 otherwise", NUMBER),
        _header(
            "Upload-Checksum",
            "`sha1 <base64 digest>` or `sha256 <base64 digest>` of this chunk; a mismatch is 460 and"
            " nothing of the chunk is kept",
            required=False,
        ),
    )
    answer_headers: ClassVar[dict[str, str]] = {
        "Upload-Offset": "the new offset",
        "Upload-Video-Id": "on the last byte: the video the upload became",
        **EXPIRES,
    }
    answer_required: ClassVar[tuple[str, ...]] = ("Upload-Offset", "Upload-Expires")

    def __post_init__(self) -> None:
        super().__post_init__()
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        self.request_body = RequestBody(
            required=True, content={OFFSET_STREAM: OpenAPIMediaType(schema=binary)}, description="the chunk"
        )


@dataclass
class DeleteOperation(TusOperation):
    request_headers: ClassVar[tuple[Parameter, ...]] = (TUS_RESUMABLE,)


def _upload_headers(upload: dict[str, Any]) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload["received"]), "Upload-Expires": http_date(upload["expires_at"])}
    if upload["finished_at"] is not None:
        headers["Upload-Video-Id"] = upload["id"]
    return headers


@route(
    "/", http_method=[HttpMethod.OPTIONS], status_code=HTTP_204_NO_CONTENT, operation_class=OptionsOperation
)
async def tus_options(services: ServicesDep) -> Response[None]:
    """What this server speaks of tus; needs no token."""
    headers = options_headers(services.settings.http.max_upload_bytes)
    return Response(None, status_code=HTTP_204_NO_CONTENT, headers=headers)


@post(
    "/",
    status_code=HTTP_201_CREATED,
    operation_class=CreateOperation,
    responses=errors(400, 401, 412, 413, 422, 429, 503),
    security=BEARER,
)
async def create_tus_upload(
    request: Request[Any, Any, Any], user: User, services: ServicesDep
) -> Response[None]:
    """Create an upload of ``Upload-Length`` bytes; the upload slot is reserved now (429 as for
    ``POST /v1/videos``). Send its bytes with PATCH to ``Location``."""
    headers = request.headers
    upload = await create_upload(
        services, user.id, headers.get("upload-length"), headers.get("upload-metadata")
    )
    location = f"{request.scope.get('root_path', '')}/v1/uploads/{upload['id']}"
    answer = {"Location": location, **_upload_headers(upload)}
    return Response(None, status_code=HTTP_201_CREATED, headers=answer)


@head(
    "/{upload_id:str}",
    status_code=HTTP_200_OK,
    operation_class=HeadOperation,
    responses=errors(400, 401, 404, 412, 503),
    security=BEARER,
)
async def tus_upload_offset(upload_id: FromPath[str], user: User, services: ServicesDep) -> Response[None]:
    """The upload's offset: where to resume."""
    upload = await upload_status(services, upload_id, user.id)
    headers = {
        **_upload_headers(upload),
        "Upload-Length": str(upload["length"]),
        "Cache-Control": "no-store",
    }
    if upload["metadata"]:
        headers["Upload-Metadata"] = upload["metadata"]
    return Response(None, status_code=HTTP_200_OK, headers=headers)


@patch(
    "/{upload_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    operation_class=PatchOperation,
    responses=errors(400, 401, 404, 409, 412, 413, 415, 423, 460, 503),
    security=BEARER,
)
async def append_to_tus_upload(
    request: Request[Any, Any, Any], upload_id: FromPath[str], user: User, services: ServicesDep
) -> Response[None]:
    """Append the body (``Content-Type: application/offset+octet-stream``) at ``Upload-Offset``.
    The last byte makes the video (``Upload-Video-Id``), processed as ``POST /v1/videos`` is."""
    upload = await append_chunk(request, services, upload_id, user.id)
    return Response(None, status_code=HTTP_204_NO_CONTENT, headers=_upload_headers(upload))


@delete(
    "/{upload_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    operation_class=DeleteOperation,
    responses=errors(400, 401, 404, 409, 412, 423, 503),
    security=BEARER,
)
async def terminate_tus_upload(upload_id: FromPath[str], user: User, services: ServicesDep) -> None:
    """Terminate an unfinished upload: its bytes are removed and its slot freed (409 once it is a
    video: delete that instead)."""
    await terminate_upload(services, upload_id, user.id)


async def _require_tus_version(request: Request[Any, Any, Any]) -> None:
    if request.method != HttpMethod.OPTIONS:
        check_resumable(request.headers.get("tus-resumable"))


def _tus_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    answer = error_response(request, exc)
    answer.headers["Tus-Resumable"] = TUS_VERSION
    return answer


def tus_router(http: HttpSettings) -> Router:
    """``/v1/uploads``; a PATCH body may be as large as the largest upload (streamed)."""
    return Router(
        path="/v1/uploads",
        route_handlers=[
            tus_options,
            create_tus_upload,
            tus_upload_offset,
            append_to_tus_upload,
            terminate_tus_upload,
        ],
        before_request=_require_tus_version,
        exception_handlers={Exception: _tus_error_response},
        response_headers=[
            ResponseHeader(name="Tus-Resumable", value=TUS_VERSION, description="always 1.0.0")
        ],
        request_max_body_size=http.max_upload_bytes,
        tags=["uploads"],
    )
