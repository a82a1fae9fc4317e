"""While the catalog is away for longer than an API request waits for it, the API answers 503 with
``Retry-After`` and a readable detail, promptly: never a 500, never a hang.

A real catalog actor (its own DuckDB file, under a name of its own) is started and killed for
good; the API app is built on its handle and served over real HTTP (uvicorn on loopback)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from catalog.actor import CatalogActor
from catalog.client import CatalogClient
from cluster.settings import CatalogSettings, Settings
from cluster.storage import Storage
from serve.auth_tokens import issue_access_token

WAIT_S = 0.5


@pytest.fixture
def app_without_catalog(deployment: Any, settings: Settings, tmp_path: Path) -> Iterator[str]:
    import uvicorn

    from serve.app import create_app

    mine = dataclasses.replace(settings, catalog=CatalogSettings(path=tmp_path / "away.duckdb"))
    handle = CatalogActor.options(name=f"away-{uuid.uuid4().hex[:8]}", max_restarts=0).remote(mine)  # type: ignore[attr-defined]
    assert ray.get(handle.ping.remote())
    ray.kill(handle, no_restart=True)
    app = create_app(
        settings, CatalogClient(handle, WAIT_S), deployment.backend.dispatcher, Storage(settings.storage)
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_api_answers_503_with_retry_after_while_the_catalog_is_away(
    app_without_catalog: str, settings: Settings
) -> None:
    token, _ = issue_access_token(uuid.uuid4().hex, settings.auth)
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=app_without_catalog, timeout=30) as client:
        asked = {
            "list": lambda: client.get("/v1/videos"),
            "metadata": lambda: client.get(f"/v1/videos/{uuid.uuid4().hex}", headers=bearer),
            "search": lambda: client.get("/v1/search", params={"q": "harbour"}),
            "login": lambda: client.post(
                "/v1/auth/login", json={"username": "ana", "password": "a long password"}
            ),
            "me": lambda: client.get("/v1/auth/me", headers=bearer),
            "readiness": lambda: client.get("/readyz"),
        }
        answers = {}
        for name, ask in asked.items():
            started = time.monotonic()
            answers[name] = ask()
            assert time.monotonic() - started < WAIT_S + 5, f"{name} took too long"
        health = client.get("/healthz")
    assert health.status_code == 200  # the replica itself is fine
    assert {name: a.status_code for name, a in answers.items()} == {name: 503 for name in asked}
    for name, answer in answers.items():
        assert int(answer.headers["retry-after"]) >= 1, name
        assert answer.headers["content-type"].startswith("application/json"), name
        assert answer.json()["detail"], name
    assert answers["list"].json()["detail"].startswith("the catalog did not answer for 0.5 s")
