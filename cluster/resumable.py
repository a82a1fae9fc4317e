"""Where a resumable upload's bytes wait between PATCHes, on either kind of storage.

``file://``: one file, ``uploads/{vid}/data``, written at the upload's recorded offset (whatever
lies past it, from a PATCH cut short or a chunk whose checksum failed, is cut off first) and
renamed to ``sources/{vid}/source`` on the last byte: no copy.

``s3://``: an S3 multipart upload of ``sources/{vid}/source``. Every part but the last must be
at least 5 MiB and a PATCH may carry any number of bytes, so a writer holds at most one part in
memory and uploads it as soon as it is whole; the few bytes left when a PATCH ends are kept as
a small object (``uploads/{vid}/tail-{n}``) that the next PATCH reads back first. The upload is
completed on the last byte and aborted on termination or expiry.

The catalog's row (``catalog.uploads``) holds how many bytes are stored for good and the
``state`` this module hands back to record (the S3 upload's id, its parts' ETags); storage may
hold more than the row says, and is read only up to it. So an API replica that dies mid-PATCH
loses at most the bytes of that PATCH not yet recorded, and any replica can take the next one.

Every function here blocks on disk or S3: call it from a worker thread.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import IO, Any

from cluster import layout
from cluster.errors import ServerError
from cluster.storage import Storage, s3_client

MIB = 1024 * 1024
PART_MIN_BYTES = 5 * MIB
"""S3's smallest part (but the last)."""
MAX_PARTS = 10_000
"""S3's most parts in one multipart upload."""
FILE_CHECKPOINT_BYTES = 8 * MIB
"""On ``file://``, bytes written between two syncs to disk (each a point progress is recorded at)."""

State = dict[str, Any]
"""What the catalog records about where the bytes are (JSON): ``{}`` on ``file://``; on S3
``{"upload_id": str, "part_bytes": int, "parts": [[number, etag], ...]}``."""


def part_bytes(length: int) -> int:
    """The part size of an upload of ``length`` bytes: 5 MiB, or more so that it fits in 10,000 parts."""
    return max(PART_MIN_BYTES, math.ceil(length / MAX_PARTS / MIB) * MIB)


class Writer:
    """Appends one PATCH's bytes after the ``received`` bytes an upload has recorded.

    ``durable`` is what may be recorded at any moment (bytes that would survive this process);
    ``checkpoint`` makes every byte written so far durable (at the end of a PATCH). Completing
    the upload (the last byte) is ``complete``, a function of the recorded state alone, so any
    replica can do it again after a crash.
    """

    received: int

    def write(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def durable(self) -> tuple[int, State]:
        raise NotImplementedError

    def checkpoint(self) -> tuple[int, State]:
        raise NotImplementedError

    def superseded(self, recorded: State) -> None:
        """Remove what the ``recorded`` state no longer names (an older tail)."""

    def close(self) -> None:
        """Release files and buffers; nothing is recorded or removed."""


class FileWriter(Writer):
    def __init__(self, storage: Storage, upload_id: str, received: int) -> None:
        path = Path(storage.path(layout.upload_data_key(upload_id)))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[bytes] = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - closed in close()
        size = self._out.seek(0, os.SEEK_END)
        if size < received:
            self._out.close()
            raise ServerError(f"upload {upload_id} has {size} bytes stored but recorded {received}")
        self._out.truncate(received)
        self._out.seek(received)
        self.received = received
        self._synced = received

    def write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self.received += len(data)
        if self.received - self._synced >= FILE_CHECKPOINT_BYTES:
            self._sync()

    def _sync(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._synced = self.received

    def durable(self) -> tuple[int, State]:
        return self._synced, {}

    def checkpoint(self) -> tuple[int, State]:
        self._sync()
        return self.received, {}

    def close(self) -> None:
        self._out.close()


class S3Writer(Writer):
    def __init__(self, storage: Storage, upload_id: str, length: int, received: int, state: State) -> None:
        self._storage = storage
        self._upload_id = upload_id
        self._length = length
        self._s3, self._bucket, self._key = _s3(storage, layout.source_key(upload_id))
        self._part_bytes = int(state.get("part_bytes") or part_bytes(length))
        self._parts: list[list[Any]] = [list(part) for part in state.get("parts", [])]
        self._opened_parts = len(self._parts)
        self._s3_upload_id: str | None = state.get("upload_id")
        if self._s3_upload_id is None:
            made = self._s3.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._s3_upload_id = str(made["UploadId"])
        tail = received - len(self._parts) * self._part_bytes
        if not 0 <= tail < self._part_bytes:
            raise ServerError(f"upload {upload_id}: {received} bytes recorded do not fit its parts")
        self._buffer = bytearray(self._read_tail(tail) if tail else b"")
        self.received = self._opened_received = received

    def _tail_key(self, whole_parts: int) -> str:
        return _bucket_key(self._storage, layout.upload_tail_key(self._upload_id, whole_parts))[1]

    def _read_tail(self, size: int) -> bytes:
        key = self._tail_key(len(self._parts))
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key, Range=f"bytes=0-{size - 1}")
            data = bytes(answer["Body"].read())
        except Exception as exc:
            if _error_code(exc) != "NoSuchKey":
                raise
            data = b""
        if len(data) != size:
            raise ServerError(f"upload {self._upload_id}: its last {size} bytes are missing from storage")
        return data

    def _state(self) -> State:
        return {"upload_id": self._s3_upload_id, "part_bytes": self._part_bytes, "parts": self._parts}

    def _upload_part(self, body: bytes) -> None:
        number = len(self._parts) + 1
        answer = self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._s3_upload_id, PartNumber=number, Body=body
        )
        self._parts.append([number, answer["ETag"]])

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self.received += len(data)
        while len(self._buffer) >= self._part_bytes:
            self._upload_part(bytes(memoryview(self._buffer)[: self._part_bytes]))  # one copy, not two
            del self._buffer[: self._part_bytes]

    def durable(self) -> tuple[int, State]:
        if len(self._parts) == self._opened_parts:  # the tail it was opened with is still there
            return self._opened_received, self._state()
        return len(self._parts) * self._part_bytes, self._state()

    def checkpoint(self) -> tuple[int, State]:
        if self._buffer and self.received == self._length:
            self._upload_part(bytes(self._buffer))  # the last part may be short
            self._buffer.clear()
        elif self._buffer:
            key = self._tail_key(len(self._parts))
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=bytes(self._buffer))
        return self.received, self._state()

    def superseded(self, recorded: State) -> None:
        parts = len(recorded.get("parts", []))
        if parts > self._opened_parts:  # deleting it twice is harmless
            self._s3.delete_object(Bucket=self._bucket, Key=self._tail_key(self._opened_parts))

    def close(self) -> None:
        self._buffer = bytearray()


def open_writer(storage: Storage, upload_id: str, length: int, received: int, state: State) -> Writer:
    """A writer that appends after the ``received`` bytes recorded with ``state``."""
    if storage.is_local:
        return FileWriter(storage, upload_id, received)
    return S3Writer(storage, upload_id, length, received, state)


def complete(storage: Storage, upload_id: str, length: int, state: State) -> None:
    """Every byte is recorded: make them ``sources/{vid}/source``. Safe to call again (after a
    crash between this and the catalog hearing of it)."""
    source = layout.source_key(upload_id)
    if storage.is_local:
        data = Path(storage.path(layout.upload_data_key(upload_id)))
        target = Path(storage.path(source))
        if data.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            data.replace(target)
        size = target.stat().st_size if target.exists() else None
    else:
        s3, bucket, key = _s3(storage, source)
        parts = [{"PartNumber": number, "ETag": etag} for number, etag in state.get("parts", [])]
        try:
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=state.get("upload_id"), MultipartUpload={"Parts": parts}
            )
        except Exception as exc:
            if _error_code(exc) != "NoSuchUpload":  # completed already, by an earlier try
                raise
        try:
            size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except Exception as exc:
            if _error_code(exc) not in ("404", "NoSuchKey"):
                raise
            size = None
    if size != length:
        raise ServerError(f"upload {upload_id} was not completed: its source has {size} of {length} bytes")
    discard(storage, upload_id, keep_source=True)


def discard(storage: Storage, upload_id: str, *, keep_source: bool = False) -> None:
    """Remove an unfinished upload's bytes: its part file, or its S3 multipart uploads (every one
    for its key, also one a crashed PATCH made and never recorded) and tail objects."""
    prefix = layout.upload_prefix(upload_id)
    if storage.is_local:
        storage.delete_prefix(prefix)
        return
    s3, bucket, key = _s3(storage, layout.source_key(upload_id))
    if not keep_source:
        for found in s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", []):
            if found["Key"] != key:
                continue
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=found["UploadId"])
            except Exception as exc:
                if _error_code(exc) != "NoSuchUpload":  # gone already: what we wanted
                    raise
    tails = _bucket_key(storage, prefix)[1] + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=tails):
        names = [{"Key": found["Key"]} for found in page.get("Contents", [])]
        if names:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": names, "Quiet": True})


def _s3(storage: Storage, key: str) -> tuple[Any, str, str]:
    bucket, name = _bucket_key(storage, key)
    return s3_client(storage.settings.s3_endpoint_url, storage.settings.upload_concurrency), bucket, name


def _error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``NoSuchUpload``, ``404``), else ''."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _bucket_key(storage: Storage, key: str) -> tuple[str, str]:
    bucket, _, name = storage.path(key).partition("/")
    return bucket, name
