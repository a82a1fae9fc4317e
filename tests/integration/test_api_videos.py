"""Listing over HTTP: own and public videos, newest first, paginated with a stable total."""

from __future__ import annotations

import time
import uuid
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
