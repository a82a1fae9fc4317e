"""HTTP steps the resumable upload tests share: a tus client (tuspy), a PATCH whose connection is
closed half-way, the offset a HEAD answers, and the replica's memory."""

from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
from tusclient.client import TusClient

TUS = {"Tus-Resumable": "1.0.0"}


def tus_client(base_url: str, user: SimpleNamespace) -> TusClient:
    return TusClient(f"{base_url}/v1/uploads", headers=dict(user.headers))


def metadata_header(fields: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in fields.items())


def create(
    api: httpx.Client, user: SimpleNamespace, length: int, title: str = "resumed", **fields: str
) -> httpx.Response:
    headers = {
        **user.headers,
        **TUS,
        "Upload-Length": str(length),
        "Upload-Metadata": metadata_header({"title": title, **fields}),
    }
    return api.post("/v1/uploads", headers=headers)


def head_offset(api: httpx.Client, user: SimpleNamespace, url: str) -> int:
    answer = api.head(url, headers={**user.headers, **TUS})
    assert answer.status_code == 200, (answer.status_code, answer.headers)
    return int(answer.headers["upload-offset"])


def patch(
    api: httpx.Client, user: SimpleNamespace, url: str, offset: int, chunk: bytes, **headers: str
) -> httpx.Response:
    sent = {
        **user.headers,
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    return api.patch(url, headers=sent, content=chunk)


def patch_cut_short(
    base_url: str, user: SimpleNamespace, url: str, offset: int, body: bytes, cut: int
) -> None:
    """Start a PATCH of ``body`` (all of it announced) from ``offset``, send its first ``cut``
    bytes, wait until they are surely through, then close the connection: a dropped network."""
    parts = urlsplit(httpx.URL(base_url).join(url).__str__())
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: {user.headers['Authorization']}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        view = memoryview(body)[:cut]
        for start in range(0, len(view), 64 * 1024):
            sock.sendall(view[start : start + 64 * 1024])
        time.sleep(1.5)  # let the bytes reach the replica before the line goes dead
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # SO_LINGER 0: the close is a reset, as when a network drops, not a polite half-close.


def settled_offset(api: httpx.Client, user: SimpleNamespace, url: str, timeout_s: float = 30) -> int:
    """The offset once the interrupted PATCH has recorded what it got (it stops changing)."""
    deadline = time.monotonic() + timeout_s
    last, steady = -1, 0
    while time.monotonic() < deadline:
        offset = head_offset(api, user, url)
        steady = steady + 1 if offset == last else 0
        if steady >= 3:
            return offset
        last = offset
        time.sleep(0.3)
    return last


def upload_with_tuspy(
    base_url: str,
    user: SimpleNamespace,
    path: Path,
    *,
    url: str | None = None,
    chunk_bytes: int,
    **metadata: str,
) -> Any:
    """Upload (or resume, given ``url``) ``path`` with tuspy; returns the uploader (its
    ``request.response_headers`` are the last PATCH's answer)."""
    client = tus_client(base_url, user)
    uploader = client.uploader(
        str(path),
        url=url,
        chunk_size=chunk_bytes,
        metadata=metadata or None,
        retries=5,
        retry_delay=1,
        upload_checksum=True,  # sha1 of every chunk, checked by the server
    )
    uploader.upload()
    return uploader


def replica_pid(app_name: str) -> int:
    """The process of the API replica of the Serve application ``app_name`` that this test
    session's Ray started (a descendant of this process: other Rays run on the machine too)."""
    from cluster.processes import descendants

    title = f"ray::ServeReplica:{app_name}:VodrayApi"
    found = [proc.pid for proc in descendants(os.getpid()) if proc.argv and proc.argv[0].startswith(title)]
    assert len(found) == 1, found
    return found[0]


def reset_peak_rss(pid: int) -> None:
    """Start ``VmHWM`` (the peak resident set) over from the current resident set."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def rss_kib(pid: int, field: str = "VmHWM") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")
