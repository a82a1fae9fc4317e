"""The first-run demo: make a clip, upload it through the HTTP API as a demo user, wait.

Everything goes through the public API a real client uses, so the demo also proves the
path end to end.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from cluster.settings import Settings

DEMO_USER = "demo"


def _demo_login(client: httpx.Client, settings: Settings) -> str:
    """Log in as the demo user, registering it on first run; returns an access token."""
    creds_file = settings.data_dir / "demo-user.json"
    if creds_file.exists():
        creds = json.loads(creds_file.read_text())
    else:
        creds = {"username": DEMO_USER, "password": secrets.token_urlsafe(16)}
        response = client.post("/v1/auth/register", json=creds)
        if response.status_code not in (201, 409):
            raise RuntimeError(f"could not register the demo user: {response.text}")
        creds_file.write_text(json.dumps(creds))
        creds_file.chmod(0o600)
    response = client.post("/v1/auth/login", json=creds)
    response.raise_for_status()
    return str(response.json()["access_token"])


def run_demo(settings: Settings, api_url: str, *, seconds: int = 10) -> dict[str, Any]:
    """Upload a generated clip and wait until it is ready; returns the video's metadata."""
    from pipelines.demo import make_clip

    clip = settings.data_dir / "demo" / f"demo-{seconds}s-720p.mp4"
    if not clip.exists():
        clip.parent.mkdir(parents=True, exist_ok=True)
        make_clip(clip, seconds=seconds, width=1280, height=720, fps=25, audio=True, subtitles=True)
    with httpx.Client(base_url=api_url, timeout=60) as client:
        token = _demo_login(client, settings)
        headers = {"Authorization": f"Bearer {token}"}
        with Path(clip).open("rb") as body:
            response = client.post(
                "/v1/videos",
                headers=headers,
                files={"file": (clip.name, body, "video/mp4")},
                data={
                    "title": "vodray demo clip",
                    "description": "test pattern, tone, subtitles",
                    "visibility": "public",
                },
            )
        response.raise_for_status()
        video_id = response.json()["id"]
        status = _follow(client, headers, video_id)
        if status["status"] != "ready":
            raise RuntimeError(f"the demo video failed: {status['error']}")
        return dict(client.get(f"/v1/videos/{video_id}", headers=headers).json())


def _follow(client: httpx.Client, headers: dict[str, str], video_id: str) -> dict[str, Any]:
    with tqdm(total=100, desc="processing demo", unit="%") as bar:
        while True:
            status = client.get(f"/v1/videos/{video_id}/status", params={"wait": 5}, headers=headers).json()
            bar.set_postfix_str(status["step"])
            bar.update(round(100 * float(status["progress"] or 0)) - bar.n)
            if status["status"] in ("ready", "failed"):
                return dict(status)
