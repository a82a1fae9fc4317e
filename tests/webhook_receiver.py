"""A webhook receiver on loopback for tests: a real HTTP server that records every request and
answers from a script (status codes, headers, delays), then 200 once the script runs out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Received:
    at: float
    """time.monotonic() when the request arrived."""
    path: str
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict[str, Any]:
        """The body, once the standardwebhooks package's own verifier has accepted the signature."""
        return dict(Webhook(secret).verify(self.body, self.headers))


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    def __init__(self, server: ThreadingHTTPServer, script: list[Answer]) -> None:
        self._server = server
        self.script = script
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} of {count} webhooks arrived in {timeout_s:g} s")

    def types(self, secret: str) -> list[str]:
        with self.lock:
            return [json.loads(item.body)["type"] for item in self.received if item.verified(secret)]


@contextmanager
def receiver(*script: Answer) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 answering ``script`` in order (then 200), stopped afterwards."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            item = Received(
                time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            with owner.lock:
                owner.received.append(item)
                answer = owner.script.pop(0) if owner.script else Answer()
            time.sleep(answer.delay_s)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    owner = Receiver(server, list(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield owner
    finally:
        server.shutdown()
        server.server_close()
