"""What every route needs: the services it calls and the one visibility rule.

Route modules: ``auth`` (register, login, refresh, me), ``videos`` (upload, status, list,
metadata, delete), ``media`` (the published files, with Range), ``health``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from litestar.di import NamedDependency

from catalog.visibility import may_see
from cluster.errors import NotFound
from cluster.settings import Settings
from cluster.storage import Storage
from serve.longpoll import LongPollSlots

VIDEO_ID = re.compile(r"[0-9a-f]{32}")
"""Video ids are uuid4 hex: anything else (a path, a guess) is not looked up at all."""


@dataclass(frozen=True)
class Services:
    """Everything a route talks to, built once per app (per Serve replica)."""

    settings: Settings
    catalog: Any
    """The catalog actor through ``catalog.client.CatalogClient``: ``await catalog.method.remote(...)``,
    retried while the actor restarts (up to ``VODRAY_CATALOG_API_WAIT_S``, then a 503)."""
    dispatcher: Any
    """Ray actor handle of ``pipelines.dispatcher``'s actor."""
    storage: Storage
    long_polls: LongPollSlots
    """The status long polls this replica holds (bounded per user and in total)."""


ServicesDep: TypeAlias = NamedDependency[Services]
"""How a handler asks for the app's ``services`` dependency (by name, as Litestar 3 requires)."""


async def find_visible_video(services: Services, video_id: str, viewer_id: str | None) -> dict[str, Any]:
    """The video if ``viewer_id`` may see it (theirs, or public); else ``NotFound``.

    Unknown, malformed and another user's private ids answer the same, so a caller cannot
    learn that a private video exists.
    """
    video = None
    if VIDEO_ID.fullmatch(video_id):
        video = await services.catalog.get_video.remote(video_id)
    if video is None or not may_see(video, viewer_id):
        raise NotFound(f"no video with id {video_id[:64]!r}")
    return video
