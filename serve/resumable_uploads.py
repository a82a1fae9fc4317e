"""Resumable uploads (tus 1.0, ``/v1/uploads``) as the API serves them: create, look, append,
terminate. The protocol's headers are read in ``serve.tus``; the bytes' storage is
``cluster.resumable``; turns and ends are ``cluster.upload_lifecycle``.

Creation checks the ``Upload-Metadata`` as ``POST /v1/videos`` checks its form and reserves the
upload slot in the same catalog transaction that records the upload, before any byte is sent.
A PATCH streams its body to storage a batch at a time from a worker thread (never the whole
body in memory), under the upload's lease. Without ``Upload-Checksum``, what arrives is recorded
as it becomes durable (each S3 part, every few MiB of the part file) and, when the body ends or
breaks off, all of it: a client that lost its connection resumes where its bytes stopped. With a
checksum, nothing of the chunk is recorded unless its digest matches (460 otherwise). The last
byte makes the video exactly as ``POST /v1/videos`` does: the catalog's ``create_video`` rules,
then the dispatcher; the video's id is the upload's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from litestar import Request
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from cluster.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Locked,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
)
from cluster.resumable import Writer, discard, open_writer
from cluster.upload_lifecycle import UploadLease, expiry, finish_upload
from serve.routes import VIDEO_ID, Services
from serve.tus import (
    CHECKSUMS,
    OffsetMismatch,
    check_offset_stream,
    parse_checksum,
    parse_length,
    parse_metadata,
    parse_offset,
    upload_fields,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_BATCH_BYTES = 1024 * 1024
"""Body bytes handed to the writer thread at once (hashed and written there)."""


async def create_upload(
    services: Services, owner_id: str, length_header: str | None, metadata_header: str | None
) -> dict[str, Any]:
    """Check the headers and record the upload with its slot reserved; the new upload's row."""
    http = services.settings.http
    length = parse_length(length_header, http.max_upload_bytes)
    fields = upload_fields(parse_metadata(metadata_header))
    created = await services.catalog.create_upload.remote(
        uuid.uuid4().hex,
        owner_id,
        length,
        fields.to_json(),
        (metadata_header or "").strip(),
        expiry(http.upload_expiry_s),
        per_hour=http.uploads_per_hour,
        in_flight=http.uploads_in_flight,
    )
    if isinstance(created, tuple):
        reason, retry_after_s = created
        raise TooManyRequests(reason, retry_after_s=retry_after_s)
    return dict(created)


async def find_upload(services: Services, upload_id: str, owner_id: str) -> dict[str, Any]:
    """The caller's upload; ``NotFound`` for an unknown, expired or another user's id alike."""
    upload = None
    if VIDEO_ID.fullmatch(upload_id):
        upload = await services.catalog.get_upload.remote(upload_id)
    if upload is None or upload["owner_id"] != owner_id or upload["expires_at"] <= datetime.now(UTC):
        raise NotFound(f"no upload with id {upload_id[:64]!r} (it may have expired or been terminated)")
    return dict(upload)


async def _detached(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end even if the request is cancelled meanwhile: Ray Serve cancels a
    request's task when its client goes away, and a PATCH cut off must still record what it got
    and give its lease back (anyio's shield does not hold against that cancellation)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a detached upload step ended with %r", task.exception())


async def upload_status(services: Services, upload_id: str, owner_id: str) -> dict[str, Any]:
    """The upload as HEAD shows it. One whose every byte is recorded but whose finish was cut
    short (a crash, an actor away) is finished here, so the client learns its video's id."""
    upload = await find_upload(services, upload_id, owner_id)
    if upload["finished_at"] is None and upload["received"] == upload["length"]:
        return await _detached(_finish_if_free(services, upload_id, owner_id, upload))
    return upload


async def _finish_if_free(
    services: Services, upload_id: str, owner_id: str, upload: dict[str, Any]
) -> dict[str, Any]:
    lease = UploadLease(services.catalog, upload_id)
    if not await lease.take(0):
        return upload  # its PATCH is finishing it right now
    try:
        return await _finish(services, await find_upload(services, upload_id, owner_id))
    finally:
        await lease.release()


async def append_chunk(
    request: Request[Any, Any, Any], services: Services, upload_id: str, owner_id: str
) -> dict[str, Any]:
    """One PATCH: the body's bytes go after the upload's offset; the upload as it is after."""
    check_offset_stream(request.headers.get("content-type"))
    offset = parse_offset(request.headers.get("upload-offset"))
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    await find_upload(services, upload_id, owner_id)  # a 404 does not wait for a turn
    return await _detached(_append(request, services, upload_id, owner_id, offset, checksum))


async def _append(
    request: Request[Any, Any, Any],
    services: Services,
    upload_id: str,
    owner_id: str,
    offset: int,
    checksum: tuple[str, bytes] | None,
) -> dict[str, Any]:
    async with UploadLease(services.catalog, upload_id) as lease:
        upload = await find_upload(services, upload_id, owner_id)
        if offset != upload["received"]:
            raise OffsetMismatch(offset, upload["received"])
        announced = request.headers.get("content-length", "")
        if announced.isascii() and announced.isdigit() and offset + int(announced) > upload["length"]:
            raise PayloadTooLarge(_past_the_end(upload))
        if upload["received"] < upload["length"]:
            upload = await _receive(request, services, upload, lease.keep, checksum)
        if upload["received"] == upload["length"] and upload["finished_at"] is None:
            upload = await _finish(services, upload)  # a finished one is not submitted again
    return upload


async def terminate_upload(services: Services, upload_id: str, owner_id: str) -> None:
    """Remove an unfinished upload, its bytes and its slot (termination)."""
    await find_upload(services, upload_id, owner_id)
    await _detached(_terminate(services, upload_id, owner_id))


async def _terminate(services: Services, upload_id: str, owner_id: str) -> None:
    async with UploadLease(services.catalog, upload_id):
        upload = await find_upload(services, upload_id, owner_id)
        if upload["finished_at"] is not None:
            raise Conflict(
                f"the upload is finished: it is video {upload_id} (DELETE /v1/videos/{upload_id} removes it)"
            )
        await anyio.to_thread.run_sync(discard, services.storage, upload_id)
        await services.catalog.drop_upload.remote(upload_id)


async def _finish(services: Services, upload: dict[str, Any]) -> dict[str, Any]:
    video = await finish_upload(
        services.storage, services.catalog, upload, services.settings.http.upload_expiry_s
    )
    try:
        await services.dispatcher.submit.remote(video["id"])
    except Exception:  # noqa: BLE001 - the job is queued in the catalog; a restarted dispatcher resumes it
        log.warning("dispatcher did not take video %s; it stays queued", video["id"], exc_info=True)
    finished = await services.catalog.get_upload.remote(upload["id"])
    return dict(finished) if finished is not None else {**upload, "finished_at": video["created_at"]}


def _past_the_end(upload: dict[str, Any]) -> str:
    return f"the chunk goes past Upload-Length ({upload['length']} bytes; {upload['received']} received)"


def _write(writer: Writer, hasher: Any, pieces: list[bytes]) -> None:
    for piece in pieces:
        if hasher is not None:
            hasher.update(piece)
        writer.write(piece)


async def _receive(
    request: Request[Any, Any, Any],
    services: Services,
    upload: dict[str, Any],
    keep_lease: Callable[[], Awaitable[None]],
    checksum: tuple[str, bytes] | None,
) -> dict[str, Any]:
    """Stream the body after the upload's bytes; returns the upload with what was recorded."""
    storage, catalog = services.storage, services.catalog
    upload_id, length = upload["id"], upload["length"]
    recorded: tuple[int, dict[str, Any]] = (upload["received"], upload["storage"])

    async def record(progress: tuple[int, dict[str, Any]]) -> None:
        nonlocal recorded
        if progress == recorded:
            return
        moved = await catalog.record_upload_progress.remote(
            upload_id, recorded[0], progress[0], progress[1], expiry(services.settings.http.upload_expiry_s)
        )
        if not moved:
            raise Locked("the upload changed under this request; HEAD it and go on")
        recorded = progress

    writer = await anyio.to_thread.run_sync(open_writer, storage, upload_id, length, *recorded)
    hasher = CHECKSUMS[checksum[0]]() if checksum else None
    pending: list[bytes] = []
    pending_bytes = 0
    try:
        await record(await anyio.to_thread.run_sync(writer.durable))  # a new S3 multipart upload's id
        try:
            async for chunk in request.stream():
                if writer.received + pending_bytes + len(chunk) > length:
                    raise PayloadTooLarge(_past_the_end({"length": length, "received": writer.received}))
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= WRITE_BATCH_BYTES:
                    await keep_lease()
                    batch, pending, pending_bytes = pending, [], 0
                    await anyio.to_thread.run_sync(_write, writer, hasher, batch)
                    if hasher is None:
                        await record(writer.durable())
        except RequestEntityTooLarge:
            raise PayloadTooLarge(_past_the_end(upload)) from None
        except InternalServerException:  # Litestar's word for a client that went away mid-body
            raise BadRequest("the connection closed before the PATCH body was complete") from None
        await keep_lease()
        batch, pending = pending, []
        await anyio.to_thread.run_sync(_write, writer, hasher, batch)
        if checksum is not None and hasher is not None and hasher.digest() != checksum[1]:
            raise ChecksumMismatch(
                f"the chunk's {checksum[0]} is not its Upload-Checksum: it was not kept (the offset stays"
                f" {recorded[0]})"
            )
        await record(await anyio.to_thread.run_sync(writer.checkpoint))
    except BaseException as exc:
        # Keep what arrived (a client that went away, a body past the end, a storage error):
        # not with a checksum (unverified bytes are never kept), nor after losing the lease.
        if hasher is None and not isinstance(exc, Locked):
            await _keep_what_arrived(writer, pending, record)
        raise
    finally:
        await anyio.to_thread.run_sync(writer.superseded, recorded[1])
        await anyio.to_thread.run_sync(writer.close)
    return {**upload, "received": recorded[0], "storage": recorded[1]}


async def _keep_what_arrived(
    writer: Writer, pending: list[bytes], record: Callable[[tuple[int, dict[str, Any]]], Awaitable[None]]
) -> None:
    try:
        await anyio.to_thread.run_sync(_write, writer, None, pending)
        await record(await anyio.to_thread.run_sync(writer.checkpoint))
    except Exception:  # noqa: BLE001 - storage failing: keep what is durable already
        log.warning("could not keep every byte of an interrupted PATCH", exc_info=True)
        try:
            await record(writer.durable())
        except Exception:  # noqa: BLE001 - the client resumes from what was recorded before
            log.warning("could not record an interrupted PATCH's progress", exc_info=True)
