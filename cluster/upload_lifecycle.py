"""A resumable upload's turns and ends, shared by the API replicas and the dispatcher.

One request at a time changes an upload, whichever replica serves it: a PATCH, a termination,
the last byte's finish and the sweeper each hold the upload's lease (``catalog.leases``, in the
catalog actor) while they do. A PATCH can last as long as its body; it renews the lease as it
goes, and stops writing if the lease was lost (a request stalled past its lifetime, whose turn
another took), so two writers never interleave bytes. The catalog's compare-and-set on the
recorded offset is the last guard.

The sweeper (the dispatcher runs it every ``VODRAY_UPLOAD_SWEEP_S`` and at start) removes an
upload whose time ran out: its bytes (``cluster.resumable.discard``), its row, and its slot. An
upload whose every byte was recorded but whose finish was cut short (a crash) is finished
instead: the user sent it all.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread

from cluster import layout
from cluster.errors import Locked
from cluster.resumable import complete, discard
from cluster.storage import Storage

log = logging.getLogger(__name__)

LEASE_TTL_S = 120.0
"""How long a holder keeps an upload's lease without renewing it."""
LEASE_RENEW_S = 20.0
"""A writer renews its lease before the next write once this much has passed: far inside the TTL,
so a write never starts on a lease that may run out under it."""
LEASE_WAIT_S = 10.0
"""How long a request waits for the one before it to let go of the upload (423 after)."""
LEASE_POLL_S = 0.1


def lease_name(upload_id: str) -> str:
    return f"upload:{upload_id}"


class UploadLease:
    """``async with UploadLease(catalog, id).held(wait_s)``: the upload is this request's."""

    def __init__(self, catalog: Any, upload_id: str) -> None:
        self._catalog = catalog
        self._name = lease_name(upload_id)
        self._holder = uuid.uuid4().hex
        self._renewed = 0.0

    async def take(self, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while True:
            if await self._catalog.acquire_lease.remote(self._name, self._holder, LEASE_TTL_S):
                self._renewed = time.monotonic()
                return True
            if time.monotonic() >= deadline:
                return False
            await anyio.sleep(LEASE_POLL_S)

    async def keep(self) -> None:
        """Renew if due; ``Locked`` if another request took the upload meanwhile."""
        if time.monotonic() - self._renewed < LEASE_RENEW_S:
            return
        if not await self._catalog.acquire_lease.remote(self._name, self._holder, LEASE_TTL_S):
            raise Locked("this request stalled so long that another took over the upload; HEAD it and go on")
        self._renewed = time.monotonic()

    async def release(self) -> None:
        await self._catalog.release_lease.remote(self._name, self._holder)

    async def __aenter__(self) -> UploadLease:
        if not await self.take(LEASE_WAIT_S):
            raise Locked("another request is writing to this upload; retry in a moment")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


def expiry(expiry_s: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=expiry_s)


async def finish_upload(
    storage: Storage, catalog: Any, upload: dict[str, Any], expiry_s: float
) -> dict[str, Any]:
    """Every byte of ``upload`` is recorded: complete its storage and make its video (queued; the
    caller submits the job). Idempotent; call it holding the upload's lease."""
    upload_id = upload["id"]
    if upload["finished_at"] is None:
        await anyio.to_thread.run_sync(complete, storage, upload_id, upload["length"], upload["storage"])
    video: dict[str, Any] = await catalog.finish_upload.remote(
        upload_id, layout.source_key(upload_id), expiry(expiry_s)
    )
    return video


async def sweep_expired_uploads(storage: Storage, catalog: Any, expiry_s: float) -> list[str]:
    """Remove every upload whose time ran out (and finish any that has all its bytes); returns
    the ids of videos made, for the caller to submit."""
    now = datetime.now(UTC)
    made: list[str] = []
    for found in await catalog.expired_uploads.remote(now):
        lease = UploadLease(catalog, found["id"])
        if not await lease.take(0):
            continue  # a request is working on it: not abandoned
        try:
            upload = await catalog.get_upload.remote(found["id"])
            if upload is None or upload["expires_at"] >= now:
                continue  # gone, or a PATCH renewed it before the lease was ours
            if upload["finished_at"] is None and upload["received"] == upload["length"]:
                video = await finish_upload(storage, catalog, upload, expiry_s)
                made.append(video["id"])
                log.info("finished upload %s, whose finish had been cut short", upload["id"])
                continue
            if upload["finished_at"] is None:
                await anyio.to_thread.run_sync(discard, storage, upload["id"])
            await catalog.drop_upload.remote(upload["id"], expired_before=now)
            log.info(
                "removed expired upload %s (%d of %d bytes)",
                upload["id"],
                upload["received"],
                upload["length"],
            )
        finally:
            await lease.release()
    return made
