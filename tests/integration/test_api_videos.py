"""Listing over HTTP: own and public videos, newest first, paginated with a stable total."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import ray


def test_list_pages_through_own_videos_newest_first(api: httpx.Client, new_user: Any, catalog: Any) -> None:
    user, other = new_user(), new_user()
    mine = []
    for i in range(3):
        vid = uuid.uuid4().hex
        ray.get(
            catalog.create_video.remote(vid, user.id, f"mine {i}", "", "private", f"sources/{vid}/source", 1)
        )
        mine.append(vid)
        time.sleep(0.01)  # distinct creation times
    hidden = uuid.uuid4().hex
    ray.get(
        catalog.create_video.remote(hidden, other.id, "theirs", "", "private", f"sources/{hidden}/source", 1)
    )

    first = api.get("/v1/videos", params={"limit": 2, "offset": 0}, headers=user.headers).json()
    second = api.get("/v1/videos", params={"limit": 2, "offset": 2}, headers=user.headers).json()
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    assert first["total"] == second["total"] >= 3
    assert [item["id"] for item in first["items"]] == [mine[2], mine[1]]
    assert second["items"][0]["id"] == mine[0]
    assert first["items"][0]["title"] == "mine 2" and first["items"][0]["status"] == "queued"
    everything = api.get("/v1/videos", params={"limit": 100}, headers=user.headers).json()["items"]
    assert hidden not in {item["id"] for item in everything}
    anonymous = api.get("/v1/videos", params={"limit": 100}).json()["items"]
    assert not set(mine) & {item["id"] for item in anonymous}
    for vid in [*mine, hidden]:
        ray.get(catalog.delete_video.remote(vid))


def test_long_polls_are_bounded_per_user_and_need_a_token(
    api: httpx.Client, base_url: str, new_user: Any, catalog: Any, settings: Any
) -> None:
    user, other = new_user(), new_user()
    vid = uuid.uuid4().hex  # queued for good: no job runs for a row made in the catalog directly
    ray.get(catalog.create_video.remote(vid, user.id, "waits", "", "public", f"sources/{vid}/source", 1))
    status_url = f"/v1/videos/{vid}/status"
    # The bound is per API replica; HAProxy (leastconn) gives each new poll to the replica holding
    # the fewest, so polls sent one after another fill every replica's share before one is refused.
    per_user, wait_s = settings.http.long_polls_per_user * settings.http.api_replicas, 4
    try:
        anonymous = api.get(status_url, params={"wait": 1})
        assert anonymous.status_code == 401
        assert anonymous.json() == {
            "detail": "long polls (wait > 0) need a bearer token; without one, ask without wait"
        }
        assert api.get(status_url).json()["status"] == "queued"  # without wait, anyone may ask

        def long_poll() -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                return client.get(status_url, params={"wait": wait_s}, headers=user.headers)

        with ThreadPoolExecutor(per_user) as pool:
            held = []
            for _ in range(per_user):
                held.append(pool.submit(long_poll))
                time.sleep(0.3)
            time.sleep(1.0)  # all of them are waiting now
            refused = api.get(status_url, params={"wait": wait_s}, headers=user.headers)
            assert refused.status_code == 429
            assert refused.json() == {
                "detail": f"long-poll limit reached: {settings.http.long_polls_per_user} at once per user; "
                "wait for one to answer, or ask without wait"
            }
            assert 1 <= int(refused.headers["retry-after"]) <= wait_s
            # Another user, and the same user without wait, are not held back.
            assert api.get(status_url, params={"wait": 0.5}, headers=other.headers).status_code == 200
            assert api.get(status_url, headers=user.headers).status_code == 200
            answers = [future.result() for future in held]
        assert [answer.status_code for answer in answers] == [200] * per_user
        assert api.get(status_url, params={"wait": 0.5}, headers=user.headers).status_code == 200
    finally:
        ray.get(catalog.delete_video.remote(vid))
