"""Adding one track to a published video's subtitle record (``videos.subtitles``).

The record is what ``pipelines.subtitle_step`` wrote when the video was made:
``{"tracks", "unavailable", "skipped", "warnings"}``. A sidecar added later and a backfilled
translation each add (or replace) one language in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def record_with_track(record: Any, track: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` (JSON text, a dict or None) with ``track`` added, replacing one of the same
    language, which is no longer listed as unavailable."""
    found = json.loads(record) if isinstance(record, str) else dict(record or {})
    lang = track["lang"]
    return {
        "tracks": [t for t in found.get("tracks", []) if t.get("lang") != lang] + [dict(track)],
        "unavailable": [code for code in found.get("unavailable", []) if code != lang],
        "skipped": list(found.get("skipped", [])),
        "warnings": list(found.get("warnings", [])),
    }
