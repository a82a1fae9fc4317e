"""What a video's metadata may be; one place for the HTTP API, the CLI and notebooks."""

from __future__ import annotations

from catalog.store import VISIBILITIES
from cluster.errors import BadRequest

MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000


def check_video_fields(
    title: str | None, description: str | None, visibility: str | None
) -> tuple[str, str, str]:
    """Normalised ``(title, description, visibility)`` or ``BadRequest`` naming the field."""
    title = (title or "").strip()
    if not title:
        raise BadRequest("missing form field 'title': every video needs a title")
    if len(title) > MAX_TITLE_CHARS:
        raise BadRequest(f"field 'title' is longer than {MAX_TITLE_CHARS} characters")
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise BadRequest(f"field 'description' is longer than {MAX_DESCRIPTION_CHARS} characters")
    visibility = (visibility or "private").strip().lower()
    if visibility not in VISIBILITIES:
        raise BadRequest(f"field 'visibility' must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    return title, description, visibility
