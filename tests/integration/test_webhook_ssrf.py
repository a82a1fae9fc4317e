"""Registration refuses every address class a server must not reach, over real HTTP, with
VODRAY_WEBHOOK_ALLOW_PRIVATE off (its default): the same app (``create_app``) with the
session's catalog, served by uvicorn on loopback with the setting off (the session's own API
has it on, for its receivers). Nothing is ever sent to these addresses: refusing them is the point.
The same app has no VODRAY_SMTP_HOST: it keeps no email address.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from cluster.storage import Storage
from serve.app import create_app
from serve.deployment import free_port
from tests.integration.client import register_user

REFUSED = [
    ("http://localhost:8080/hook", "loopback"),
    ("http://127.0.0.1/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),
    ("http://0x7f000001/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://10.0.0.1/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[fd12::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.251/hook", "multicast"),
    ("ftp://example.org/hook", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://example.org/", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
]


@pytest.fixture(scope="module")
def strict_api(settings: Any, deployment: Any) -> Iterator[httpx.Client]:
    # The defaults: no private addresses, no network list, and no mail server.
    notify = dataclasses.replace(settings.notify, allow_private=False, networks=(), smtp_host=None)
    strict = dataclasses.replace(settings, notify=notify)
    backend = deployment.backend
    app = create_app(strict, backend.catalog, backend.dispatcher, Storage(strict.storage))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize(("url", "word"), REFUSED)
def test_registration_refuses_each_address_class(strict_api: httpx.Client, url: str, word: str) -> None:
    user = register_user(strict_api)
    answer = strict_api.post("/v1/webhooks", headers=user.headers, json={"url": url})
    assert answer.status_code == 400, answer.text
    assert word in answer.json()["detail"], answer.json()
    assert strict_api.get("/v1/webhooks", headers=user.headers).json() == {"items": []}
    # A new URL for an endpoint is checked the same way, before anything is looked up.
    changed = strict_api.patch(f"/v1/webhooks/ep_{'0' * 32}", headers=user.headers, json={"url": url})
    assert changed.status_code == 400 and word in changed.json()["detail"]


def test_without_a_mail_server_no_address_is_kept(strict_api: httpx.Client) -> None:
    user = register_user(strict_api)
    answer = strict_api.patch("/v1/auth/me", headers=user.headers, json={"email": "ana@example.org"})
    assert answer.status_code == 409 and "VODRAY_SMTP_HOST" in answer.json()["detail"]
    me = strict_api.get("/v1/auth/me", headers=user.headers).json()
    assert (me["email"], me["email_confirmed"]) == (None, False)
