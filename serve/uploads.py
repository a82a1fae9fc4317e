"""Uploads: a multipart body streamed to storage, never held whole in memory.

``request.stream()`` yields the body as it arrives; python-multipart's push parser turns each
chunk into callbacks; the bytes of the ``file`` part go to ``sources/{vid}/source``, written
from a worker thread so a slow disk or S3 never stalls the event loop. The small text fields
are kept (capped at ``upload_form.FIELD_MAX_BYTES``). Sidecar subtitle files (``subtitles`` parts, each with
a ``subtitles_lang`` field in the same order) wait in spooled temporary files until the form is
complete and checked, then go to ``sources/{vid}/subtitles/`` (``serve.sidecar_files``).

Nothing upstream holds back a fast client: Ray Serve queues the body for the replica without
bound, so whatever arrives faster than this module writes piles up in the replica (behind
Serve's Python proxy, in the proxy too: see ``serve/deployment.py``). So the file bytes are
not copied on their way: the parser's callbacks keep views into the received chunks, and a
worker thread writes a batch of them (``upload_form.WRITE_BATCH_BYTES``) per hop, about a quarter of the
CPU per MB of copying them into a buffer. ``benchmarks/upload_memory.py`` measures memory.

Whatever goes wrong after the first byte is written, the source prefix (the source and its
sidecars) is deleted before the error leaves this module, so a rejected upload leaves nothing
behind.

Limits are reserved before a byte of the body is read, in one catalog transaction
(``CatalogStore.reserve_upload``): uploads per user per rolling hour (``VODRAY_UPLOADS_PER_HOUR``;
deleted, failed and interrupted uploads count) and uploads in flight (streaming, queued or
processing: ``VODRAY_UPLOADS_IN_FLIGHT``). An upload that fails before its video row exists
gives its in-flight slot back but stays counted in the hour: its bytes were received and written.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from catalog.validation import VideoFields, check_video_fields
from cluster import layout
from cluster.errors import BadRequest, CatalogUnavailable, InvalidMedia, PayloadTooLarge, TooManyRequests
from cluster.storage import Storage
from serve.routes import Services
from serve.sidecar_files import MAX_SIDECARS, Sidecar, keep_sidecars, parse_translate_to, sidecar_lang
from serve.upload_form import FILE_FIELD, SUBTITLES_FIELD, SUBTITLES_LANG_FIELD, FileSink, PartCollector

log = logging.getLogger(__name__)

FORM_OVERHEAD_BYTES = 1024 * 1024
"""Allowance for text fields and multipart framing on top of the largest accepted file."""


def body_limit_bytes(max_upload_bytes: int, max_subtitle_bytes: int = 0) -> int:
    """The request body limit of the upload route: the file limit, its sidecars, the form around."""
    return max_upload_bytes + MAX_SIDECARS * max_subtitle_bytes + FORM_OVERHEAD_BYTES


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file_seen: bool = False
    file_bytes: int = 0
    sidecars: list[Sidecar] = field(default_factory=list)
    sidecar_langs: list[str] = field(default_factory=list)

    def close(self) -> None:
        for sidecar in self.sidecars:
            sidecar.spool.close()


async def accept_upload(request: Request[Any, Any, Any], services: Services, owner_id: str) -> dict[str, Any]:
    """Check, stream, validate and register one upload; returns the new video's catalog row."""
    limit = services.settings.http.max_upload_bytes
    subtitles = services.settings.subtitles
    sidecar_limit = subtitles.max_subtitle_mb * 1024 * 1024
    boundary = multipart_boundary(request.headers.get("content-type"))
    announced = request.headers.get("content-length")
    if (
        announced is not None
        and announced.isdigit()
        and int(announced) > body_limit_bytes(limit, sidecar_limit)
    ):
        raise PayloadTooLarge(_too_large(limit))
    video_id = uuid.uuid4().hex
    await reserve_slot(services, video_id, owner_id)
    source_key = layout.source_key(video_id)
    received = ReceivedForm()
    try:
        received = await receive_form(
            request, boundary, services.storage, source_key, limit, max_sidecar_bytes=sidecar_limit
        )
        form = validate_form(received)
        translate_to = parse_translate_to(received.fields.get("translate_to"))
        sidecars = pair_sidecars(received, subtitles.max_sidecars)
        if sidecars:
            await keep_sidecars(services.storage, video_id, sidecars, subtitles)
        # The body is in storage: wait for a restarting catalog as long as a job would
        # (VODRAY_CATALOG_RETRY_S), not the API's short bound, so a restart never loses an upload.
        patient = services.catalog.with_retry(services.settings.catalog.retry_s)
        video: dict[str, Any] = await patient.create_video.remote(
            video_id,
            owner_id,
            form.title,
            form.description,
            form.visibility,
            source_key,
            received.file_bytes,
            translate_to,
        )
    except BaseException as exc:
        if isinstance(exc, CatalogUnavailable):
            # The video row may have been written before the catalog went away: keep its source.
            log.error("catalog away while registering upload %s; its source is kept", video_id)
            raise
        # Also on cancellation (the client went away): anyio's worker thread runs to the end,
        # and the shield lets the catalog hear of it.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(services.storage.delete_prefix, layout.source_prefix(video_id))
            await services.catalog.abandon_upload.remote(video_id)
        raise
    finally:
        received.close()
    try:
        await services.dispatcher.submit.remote(video_id)
    except Exception:  # noqa: BLE001 - the job is queued in the catalog; a restarted dispatcher resumes it
        log.warning("dispatcher did not take video %s; it stays queued", video_id, exc_info=True)
    return video


def multipart_boundary(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise BadRequest("the body must be multipart/form-data with fields 'file' and 'title'")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart/form-data Content-Type has no boundary")
    return boundary


async def reserve_slot(services: Services, video_id: str, owner_id: str) -> None:
    """Reserve the upload in the catalog's ledger, or ``TooManyRequests`` saying when to retry."""
    http = services.settings.http
    refused = await services.catalog.reserve_upload.remote(
        video_id, owner_id, http.uploads_per_hour, http.uploads_in_flight
    )
    if refused is not None:
        reason, retry_after_s = refused
        raise TooManyRequests(reason, retry_after_s=retry_after_s)


async def receive_form(
    request: Request[Any, Any, Any],
    boundary: bytes,
    storage: Storage,
    source_key: str,
    max_file_bytes: int,
    *,
    max_sidecar_bytes: int = 0,
) -> ReceivedForm:
    """Stream the body through the parser; the file part goes to ``source_key``, sidecars
    (each at most ``max_sidecar_bytes``) to spooled temporary files."""
    parts = PartCollector(max_sidecar_bytes)
    parser = MultipartParser(boundary, parts.callbacks())
    sink = FileSink(storage, source_key)
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise BadRequest(f"the multipart body is malformed: {exc}") from None
            if parts.file_bytes > max_file_bytes:
                raise PayloadTooLarge(_too_large(max_file_bytes))
            await sink.write(parts.take_file_data())
        await sink.close()
    except RequestEntityTooLarge:
        raise PayloadTooLarge(_too_large(max_file_bytes)) from None
    except InternalServerException:
        # Litestar's stream() says so when the client disconnects half-way.
        raise BadRequest("the upload was interrupted before the body was complete") from None
    except BaseException:
        parts.close_sidecars()
        raise
    finally:
        await sink.abandon()
    received = ReceivedForm(
        parts.fields, parts.file_seen, parts.file_bytes, parts.sidecars, parts.sidecar_langs
    )
    if parser.state != MultipartState.END:
        received.close()
        raise BadRequest("the multipart body ended before its closing boundary")
    return received


def validate_form(received: ReceivedForm) -> VideoFields:
    if not received.file_seen:
        raise BadRequest(f"missing form field {FILE_FIELD!r}")
    fields = check_video_fields(
        received.fields.get("title"), received.fields.get("description"), received.fields.get("visibility")
    )
    if received.file_bytes == 0:
        raise InvalidMedia("the uploaded file is empty")
    return fields


def pair_sidecars(received: ReceivedForm, max_sidecars: int) -> list[tuple[Sidecar, str]]:
    """Each ``subtitles`` part with the ``subtitles_lang`` field of the same rank."""
    files, langs = received.sidecars, received.sidecar_langs
    if len(files) > max_sidecars:
        raise InvalidMedia(f"{len(files)} subtitle files; a video may keep at most {max_sidecars}")
    if len(files) != len(langs):
        raise BadRequest(
            f"{len(files)} {SUBTITLES_FIELD!r} file(s) but {len(langs)} {SUBTITLES_LANG_FIELD!r} field(s):"
            f" send one {SUBTITLES_LANG_FIELD!r} (e.g. 'fr') per subtitle file, in the same order"
        )
    return [(sidecar, sidecar_lang(lang)) for sidecar, lang in zip(files, langs, strict=True)]


def _too_large(limit: int) -> str:
    return f"the upload is larger than the limit of {limit / 1024 / 1024:g} MB"
