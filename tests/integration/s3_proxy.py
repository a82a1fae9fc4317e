"""A loopback HTTP proxy in front of an S3 endpoint that adds latency and fails PUTs on purpose.

It speaks just enough HTTP/1.1 for boto3: keep-alive connections, ``Expect: 100-continue``
(botocore sends it with every file body; the proxy answers it itself), bodies framed by
``Content-Length`` or chunked. Every request waits ``latency_s`` (an S3 round trip). A share of
PUTs fails in one of three ways, chosen at random with a fixed seed: a ``503 SlowDown`` answer,
a connection dropped before the request reaches S3, or one dropped after S3 stored the object
but before its answer (the client cannot tell it landed). Another share is slowed down.

It records the order in which PUTs succeeded upstream, and can call ``on_stored(key)`` right
after a PUT landed and before its answer goes back, so a test can look at the bucket at the
moment an object appears. Used by ``test_publish_faults.py`` and ``benchmarks/publish_segments.py``:

    python -m tests.integration.s3_proxy --latency-ms 30 [--upstream URL]   # prints the proxy URL
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
FAULTS = ("slowdown", "drop-before", "drop-after")


@dataclass
class Message:
    head: bytes
    start_line: str
    headers: dict[str, str]
    body: bytes = b""
    streamed: int | None = None
    """A GET answer's body length, left on the upstream connection to be piped."""


@dataclass
class S3Proxy:
    upstream: str
    latency_s: float = 0.0
    put_failure_share: float = 0.0
    slow_put_share: float = 0.0
    slow_put_s: float = 0.0
    seed: int = 0
    on_stored: Callable[[str], None] | None = None
    stored: list[str] = field(default_factory=list)
    """``bucket/key`` of every PUT that succeeded upstream, in order."""
    sent: Counter[str] = field(default_factory=Counter)
    """Body bytes of GET answers per ``bucket/key`` that reached the client: piped as the client
    reads, so a reader that stops early (ffprobe by range) is counted for what it took, plus
    what the sockets buffer."""
    faults: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._upstream_addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._random = random.Random(self.seed)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="s3-proxy", daemon=True)
        self.url = ""

    def start(self) -> str:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=512), self._loop
        )
        self._server = future.result(10)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Clients keep idle keep-alive connections open: end them too.
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> S3Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one client connection ------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(reader, writer, is_request=True)
                if request is None:
                    return
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    method, target, _ = request.start_line.split(" ", 2)
                    key = unquote(urlsplit(target).path.lstrip("/"))
                    fault = self._fault(method)
                    await asyncio.sleep(self.latency_s)
                    if fault == "slow":
                        await asyncio.sleep(self.slow_put_s)
                    if fault == "slowdown":
                        writer.write(_slowdown_response())
                        await writer.drain()
                        continue
                    if fault == "drop-before":
                        writer.transport.abort()
                        return
                    if upstream is None or upstream[1].is_closing():
                        upstream = await asyncio.open_connection(*self._upstream_addr)
                    upstream[1].write(request.head + request.body)
                    await upstream[1].drain()
                    response = await _read_message(upstream[0], None, is_request=False, method=method)
                    if response is None:
                        writer.transport.abort()
                        return
                    if response.streamed is not None:
                        writer.write(response.head)
                        await self._pipe(upstream[0], writer, response.streamed, key)
                        continue
                    status = int(response.start_line.split(" ", 2)[1])
                    if method == "PUT" and 200 <= status < 300 and "uploadId" not in target:
                        self.stored.append(key)
                        if self.on_stored is not None:
                            await asyncio.get_running_loop().run_in_executor(None, self.on_stored, key)
                    if fault == "drop-after":
                        writer.transport.abort()
                        return
                    writer.write(response.head + response.body)
                    await writer.drain()
                    if response.headers.get("connection", "").lower() == "close":
                        return
                finally:
                    self.in_flight -= 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client went away, or the proxy is stopping
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _pipe(
        self, upstream: asyncio.StreamReader, client: asyncio.StreamWriter, length: int, key: str
    ) -> None:
        while length:
            piece = await upstream.read(min(length, 64 * 1024))
            if not piece:
                raise ConnectionError("S3 closed the connection mid-answer")
            length -= len(piece)
            client.write(piece)
            await client.drain()  # a client that stopped reading stops the pipe here
            self.sent[key] += len(piece)

    def _fault(self, method: str) -> str | None:
        if method != "PUT":
            return None
        draw = self._random.random()
        if draw < self.put_failure_share:
            fault = FAULTS[int(draw / self.put_failure_share * len(FAULTS))]
            self.faults[fault] += 1
            return fault
        if draw < self.put_failure_share + self.slow_put_share:
            self.faults["slow"] += 1
            return "slow"
        return None


def _slowdown_response() -> bytes:
    return (
        b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
        + f"Content-Length: {len(SLOWDOWN_BODY)}\r\n\r\n".encode()
        + SLOWDOWN_BODY
    )


async def _read_message(
    reader: asyncio.StreamReader,
    client: asyncio.StreamWriter | None,
    *,
    is_request: bool,
    method: str = "",
) -> Message | None:
    """One request or response, its body de-chunked and its head rewritten to match."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = raw.decode("latin-1").split("\r\n")
    start_line, header_lines = lines[0], [line for line in lines[1:] if line]
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if is_request and headers.get("expect", "").lower() == "100-continue" and client is not None:
        client.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the proxy takes the body itself
        await client.drain()
    status = 0 if is_request else int(start_line.split(" ", 2)[1])
    no_body = not is_request and (method == "HEAD" or status in (204, 304) or status < 200)
    body = b""
    if no_body:
        pass
    elif method == "GET" and "content-length" in headers:
        head = "\r\n".join([start_line, *header_lines, "", ""]).encode("latin-1")
        return Message(head, start_line, headers, streamed=int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif not is_request:
        body = await reader.read()  # framed by the end of the connection
        headers["connection"] = "close"
    drop = {"expect", "transfer-encoding"}
    if not no_body:
        drop.add("content-length")
    kept = [line for line in header_lines if line.partition(":")[0].strip().lower() not in drop]
    if not no_body:
        kept.append(f"Content-Length: {len(body)}")
    head = "\r\n".join([start_line, *kept, "", ""]).encode("latin-1")
    return Message(head=head, start_line=start_line, headers=headers, body=body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def main() -> None:
    """A proxy in front of ``--upstream`` (or of a moto server it starts), until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--upstream", help="S3 endpoint URL; default: moto's server in this process")
    args = parser.parse_args()

    server = None
    upstream = args.upstream
    if upstream is None:
        import logging

        from moto.server import ThreadedMotoServer

        from serve.deployment import free_port

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        upstream = f"http://127.0.0.1:{port}"
    with S3Proxy(upstream, latency_s=args.latency_ms / 1000) as proxy:
        print(f"{proxy.url} {upstream}", flush=True)
        sys.stdin.read()
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
