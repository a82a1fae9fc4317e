"""One root URL for every file vodray keeps: ``file://...`` or ``s3://bucket/prefix``.

fsspec (s3fs in S3 mode) for generic access and streaming; boto3 for the hot path of many
small segment PUTs (one client, a connection pool sized to the concurrency) and for
presigned URLs. Keys are always relative POSIX paths (``media/{vid}/manifest.mpd``).

It lives in ``cluster`` because serve (upload streaming, media with Range) and pipelines
(work files, publishing) both need it, and ``cluster`` is the layer both may import.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urlparse

import fsspec

from cluster.errors import NotFound, Unavailable
from cluster.scratch import scratch_dir
from cluster.settings import StorageSettings

CONTENT_TYPES = {
    ".mpd": "application/dash+xml",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
}
"""Media type of every published file, by suffix: set on S3 objects and on API responses."""
MULTIPART_FROM_BYTES = 64 * 1024 * 1024
"""Files this big go up in parallel parts (s3transfer); segments, far smaller, in one PUT."""
BOTOCORE_ATTEMPTS = 3
"""Tries botocore makes of one request (the first and two retries, its default in ``standard``)."""
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 8.0


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(key).suffix.lower(), "application/octet-stream")


_clients: dict[tuple[str | None, int], Any] = {}
_clients_lock = threading.Lock()


def s3_client(endpoint_url: str | None, pool_connections: int) -> Any:
    """One boto3 client per process and endpoint, shared by every task and thread in it.

    Its pool holds ``pool_connections`` keep-alive connections, one per concurrent PUT, so
    batches run in the same worker reuse warm connections instead of opening new ones.
    botocore's ``standard`` retry mode already retries, with jittered backoff, 500/502/503/504,
    throttling codes (``SlowDown``) and connection errors (reset, closed, timed out), rewinding
    the file body. But it stops after ``BOTOCORE_ATTEMPTS`` tries, and its retry quota (500
    tokens per client, 5 per retry, paid back by successes) stops every retry once most requests
    have failed for a while, as in an outage: ``_put_object`` retries around it, with its own backoff.
    """
    key = (endpoint_url, pool_connections)
    with _clients_lock:  # creating clients is not thread-safe; using one is
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(
                    max_pool_connections=pool_connections,
                    # ``total_max_attempts`` counts the first try; ``max_attempts`` would not.
                    retries={"mode": "standard", "total_max_attempts": BOTOCORE_ATTEMPTS},
                    connect_timeout=10,
                    read_timeout=60,
                ),
            )
            _clients[key] = client
        return client


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again may succeed (throttling, 5xx, broken connection)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in {"SlowDown", "RequestTimeout", "Throttling"}
    return False


class Storage:
    """Files under one root; cheap to construct, safe to pickle into tasks and actors."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        parsed = urlparse(settings.url)
        self.scheme = parsed.scheme
        if self.scheme == "file":
            self._root = parsed.path.rstrip("/")
        else:
            self._root = f"{parsed.netloc}{parsed.path}".rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])  # type: ignore[misc]

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self.is_local:
            return fsspec.filesystem("file", auto_mkdir=True)
        options: dict[str, Any] = {}
        if self.settings.s3_endpoint_url:
            options["endpoint_url"] = self.settings.s3_endpoint_url
        return fsspec.filesystem("s3", client_kwargs=options)

    @property
    def _s3(self) -> Any:
        return s3_client(self.settings.s3_endpoint_url, self.settings.upload_concurrency)

    def path(self, key: str) -> str:
        """The fsspec path of ``key`` (no scheme)."""
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise NotFound(f"no such file: {key}")
        return f"{self._root}/{key}"

    def _bucket_key(self, key: str) -> tuple[str, str]:
        bucket, _, prefix = self.path(key).partition("/")
        return bucket, prefix

    # -- generic access -------------------------------------------------------------------

    def open(self, key: str, mode: str = "rb", **kwargs: Any) -> IO[bytes]:
        return self.fs.open(self.path(key), mode, **kwargs)

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self.path(key)))
        except FileNotFoundError:
            raise NotFound(f"no such file: {key}") from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(key)))
        except FileNotFoundError:
            raise NotFound(f"no such file: {key}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open(key, "wb") as out:
            out.write(data)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` up to ``end`` exclusive."""
        try:
            return bytes(self.fs.cat_file(self.path(key), start=start, end=end))
        except FileNotFoundError:
            raise NotFound(f"no such file: {key}") from None

    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, recursively, sorted."""
        base = self.path(prefix).rstrip("/")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self.path("").rstrip("/")
        return sorted(p[len(root) + 1 :] for p in found)

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            self.fs.rm_file(self.path(key))

    def delete_prefix(self, prefix: str) -> None:
        base = self.path(prefix).rstrip("/")
        with suppress(FileNotFoundError):
            self.fs.rm(base, recursive=True)
        if self.is_local:
            shutil.rmtree(base, ignore_errors=True)

    # -- moving whole files ---------------------------------------------------------------

    def put_file(self, local: Path | str, key: str) -> None:
        if self.is_local:
            dest = Path(self.path(key))
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            try:
                shutil.copyfile(local, tmp)
                tmp.replace(dest)  # readers never see half a file
            finally:
                tmp.unlink(missing_ok=True)  # interrupted (a cancelled task): no half file left
        elif Path(local).stat().st_size >= MULTIPART_FROM_BYTES:
            bucket, name = self._bucket_key(key)
            self._s3.upload_file(str(local), bucket, name, ExtraArgs={"ContentType": content_type(key)})
        else:
            self._put_object(Path(local), key)

    def _put_object(self, local: Path, key: str) -> None:
        """One PUT, retried with jittered exponential backoff while the failure is transient.

        The key is the file's final name and a PUT replaces the whole object, so a retry after
        a PUT that landed but whose answer was lost writes the same bytes again: harmless.
        """
        bucket, name = self._bucket_key(key)
        attempts = self.settings.upload_attempts
        for attempt in range(1, attempts + 1):
            try:
                with open(local, "rb") as body:
                    self._s3.put_object(Bucket=bucket, Key=name, Body=body, ContentType=content_type(key))
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if attempt == attempts:
                    raise Unavailable(f"could not upload {key} after {attempts} tries: {exc}") from exc
                time.sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))

    def get_file(self, key: str, local: Path | str) -> None:
        try:
            self.fs.get_file(self.path(key), str(local))
        except FileNotFoundError:
            raise NotFound(f"no such file: {key}") from None

    def put_many(self, pairs: Iterable[tuple[Path, str]]) -> int:
        """Upload ``(local, key)`` pairs, ``upload_concurrency`` at a time; returns the bytes written.

        Returns only when every file is in place; raises the first failure after the others
        have finished (a partly published set is safe to publish again: same keys, same bytes).
        """
        pairs = list(pairs)
        workers = min(self.settings.upload_concurrency, len(pairs))
        if workers <= 1:
            for local, key in pairs:
                self.put_file(local, key)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vodray-put") as pool:
                list(pool.map(lambda pair: self.put_file(*pair), pairs))
        return sum(Path(local).stat().st_size for local, _ in pairs)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A local path to read ``key`` from: the file itself on ``file://``, else a temp copy."""
        if self.is_local:
            path = Path(self.path(key))
            if not path.exists():
                raise NotFound(f"no such file: {key}")
            yield path
            return
        with scratch_dir("get") as tmp:
            local = Path(tmp) / Path(key).name
            self.get_file(key, local)
            yield local

    def presign(self, key: str, ttl_s: int | None = None) -> str | None:
        """A time-limited GET URL in S3 mode; ``None`` for local storage (served by the API)."""
        if self.is_local:
            return None
        bucket, name = self._bucket_key(key)
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": name},
                ExpiresIn=ttl_s or self.settings.presign_ttl_s,
            )
        )
