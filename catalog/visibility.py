"""Who may see a video: its owner, and everyone once it is public. One copy, for SQL and Python."""

from __future__ import annotations

from typing import Any

VISIBILITIES = ("public", "private")
VISIBLE_TO_SQL = "(v.owner_id = ? OR v.visibility = 'public')"
"""A WHERE condition over ``videos v``; its one parameter is the viewer's id (None: anonymous)."""


def may_see(video: dict[str, Any], viewer_id: str | None) -> bool:
    return video["visibility"] == "public" or (viewer_id is not None and video["owner_id"] == viewer_id)
