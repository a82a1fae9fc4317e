"""One root URL for every file vodray keeps: ``file://...`` or ``s3://bucket/prefix``.

fsspec (s3fs in S3 mode) for generic access and streaming; boto3 for the hot path of many
small segment PUTs (one client, a connection pool sized to the concurrency) and for
presigned URLs. Keys are always relative POSIX paths (``media/{vid}/manifest.mpd``).

It lives in ``cluster`` because serve (upload streaming, media with Range) and pipelines
(work files, publishing) both need it, and ``cluster`` is the layer both may import.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import fsspec

from cluster.errors import NotFound
from cluster.settings import StorageSettings


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

    @cached_property
    def _s3(self) -> Any:
        import boto3
        from botocore.config import Config

        pool = max(10, self.settings.upload_concurrency * 2)
        return boto3.client(
            "s3",
            endpoint_url=self.settings.s3_endpoint_url,
            config=Config(max_pool_connections=pool, retries={"max_attempts": 5, "mode": "standard"}),
        )

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
            shutil.copyfile(local, tmp)
            tmp.replace(dest)  # readers never see half a file
        else:
            bucket, name = self._bucket_key(key)
            self._s3.upload_file(str(local), bucket, name)

    def get_file(self, key: str, local: Path | str) -> None:
        try:
            self.fs.get_file(self.path(key), str(local))
        except FileNotFoundError:
            raise NotFound(f"no such file: {key}") from None

    def put_many(self, pairs: Iterable[tuple[Path, str]], concurrency: int | None = None) -> int:
        """Upload ``(local, key)`` pairs in parallel; returns the bytes written."""
        pairs = list(pairs)
        workers = concurrency or self.settings.upload_concurrency
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
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
        with tempfile.TemporaryDirectory(prefix="vodray-get-") as tmp:
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
