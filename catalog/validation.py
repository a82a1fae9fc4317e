"""What a video's metadata may be; one place for the HTTP API, the CLI and notebooks."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.store import VISIBILITIES
from cluster.errors import BadRequest

MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000


@dataclass(frozen=True)
class VideoFields:
    title: str
    description: str
    visibility: str


def check_video_fields(title: str | None, description: str | None, visibility: str | None) -> VideoFields:
    """Normalised fields, or ``BadRequest`` naming the form field that is wrong."""
    if title is None:
        raise BadRequest("missing form field 'title'")
    title = title.strip()
    if not title:
        raise BadRequest("form field 'title' must not be blank")
    if len(title) > MAX_TITLE_CHARS:
        raise BadRequest(f"form field 'title' must be at most {MAX_TITLE_CHARS} characters")
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise BadRequest(f"form field 'description' must be at most {MAX_DESCRIPTION_CHARS} characters")
    visibility = (visibility or "").strip() or "private"
    if visibility not in VISIBILITIES:
        allowed = " or ".join(repr(v) for v in VISIBILITIES)
        raise BadRequest(f"form field 'visibility' must be {allowed}, not {visibility[:40]!r}")
    return VideoFields(title=title, description=description, visibility=visibility)
