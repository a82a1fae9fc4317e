"""Every answer of the API says ``X-Content-Type-Options: nosniff``: successes, our errors,
Litestar's own (unknown route, wrong method, a body that does not validate), media with Range,
CORS preflights and the OpenAPI documents, over real HTTP through HAProxy to the Serve app."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.client import upload, wait_finished


def test_every_answer_says_nosniff(api: httpx.Client, new_user: Any, clip: Any) -> None:
    user = new_user()
    source = clip(seconds=2, width=320, height=180, audio=False, subtitles=False)
    vid = upload(api, user, source, title="sniffed", visibility="public").json()["id"]
    assert wait_finished(api, user, vid)["status"] == "ready"
    try:
        answers = {
            "health": api.get("/healthz"),
            "list": api.get("/v1/videos", headers=user.headers),
            "metadata": api.get(f"/v1/videos/{vid}"),
            "playlist": api.get(f"/media/{vid}/master.m3u8"),
            "segment range": api.get(f"/media/{vid}/180p/init.mp4", headers={"Range": "bytes=0-99"}),
            "poster": api.get(f"/media/{vid}/poster.jpg"),
            "unknown route": api.get("/nothing/here"),
            "unknown video": api.get(f"/v1/videos/{'0' * 32}"),
            "no token": api.post("/v1/videos"),
            "bad token": api.get("/v1/auth/me", headers={"Authorization": "Bearer nope"}),
            "bad parameter": api.get("/v1/videos", params={"limit": "many"}),
            "bad body": api.post(
                "/v1/auth/login", content=b"{", headers={"Content-Type": "application/json"}
            ),
            "wrong method": api.delete("/healthz"),
            "range outside": api.get(f"/media/{vid}/poster.jpg", headers={"Range": "bytes=99999999-"}),
            "preflight": api.options(
                "/v1/videos",
                headers={"Origin": "https://player.example", "Access-Control-Request-Method": "POST"},
            ),
            "openapi": api.get("/schema/openapi.json"),
        }
    finally:
        api.delete(f"/v1/videos/{vid}", headers=user.headers)
    statuses = {name: answer.status_code for name, answer in answers.items()}
    # The answers really are of every kind: successes, partial content and errors.
    assert statuses["segment range"] == 206 and statuses["unknown route"] == 404, statuses
    assert {statuses[name] for name in ("no token", "bad token")} == {401}, statuses
    assert statuses["bad parameter"] == statuses["bad body"] == 400 and statuses["wrong method"] == 405, (
        statuses
    )
    assert statuses["range outside"] == 416, statuses
    assert {name: answer.headers.get_list("x-content-type-options") for name, answer in answers.items()} == {
        name: ["nosniff"] for name in answers
    }
