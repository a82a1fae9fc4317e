"""HTTP steps the integration tests share: upload a file, wait for its job."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx


def upload(
    api: httpx.Client,
    user: SimpleNamespace,
    path: Path,
    *,
    title: str = "a clip",
    visibility: str = "private",
) -> httpx.Response:
    with path.open("rb") as body:
        return api.post(
            "/v1/videos",
            headers=user.headers,
            files={"file": (path.name, body, "video/mp4")},
            data={"title": title, "visibility": visibility},
        )


def wait_finished(
    api: httpx.Client, user: SimpleNamespace, video_id: str, timeout_s: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = api.get(f"/v1/videos/{video_id}/status", params={"wait": 10}, headers=user.headers)
        assert status.status_code == 200, status.text
        body = status.json()
        if body["status"] in ("ready", "failed"):
            return dict(body)
    raise AssertionError(f"video {video_id} did not finish in {timeout_s} s: {body}")


def register_user(api: httpx.Client, username: str | None = None) -> SimpleNamespace:
    username = username or f"u{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    registered = api.post("/v1/auth/register", json={"username": username, "password": password})
    assert registered.status_code == 201, registered.text
    tokens = api.post("/v1/auth/login", json={"username": username, "password": password})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return SimpleNamespace(
        id=registered.json()["id"],
        username=username,
        password=password,
        access=body["access_token"],
        refresh=body["refresh_token"],
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
