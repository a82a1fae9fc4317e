"""What a video's metadata and a language tag may be; one place for the HTTP API, the CLI,
the catalog and notebooks. Imports no DuckDB, so the API process checks without loading it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.visibility import VISIBILITIES
from cluster.errors import BadRequest

MAX_TITLE_CHARS = 200
MAX_CUES_PER_TRACK = 50_000
MAX_CUE_CHARS = 2_000
"""Longest cue text the catalog keeps. Subtitle text is cut to it wherever it is made (parsing,
after cues that start together are merged; translation), so the catalog never refuses a track
vodray made itself."""
MAX_DESCRIPTION_CHARS = 5000
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 controls but tab and newline: they rewrite terminals and logs, and no title needs one."""
NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
"""The same rule as a JSON Schema ``pattern`` (for the OpenAPI contract)."""
TITLE_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
"""A title as a JSON Schema ``pattern``: no control characters, and not blank."""

LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
"""A BCP 47 language tag as subtitles carry them: ``en``, ``pt-BR``, ``zh-Hans``."""


@dataclass(frozen=True)
class VideoFields:
    title: str
    description: str
    visibility: str


def check_video_fields(
    title: str | None, description: str | None, visibility: str | None, *, kind: str = "form field"
) -> VideoFields:
    """Normalised fields, or ``BadRequest`` naming the field that is wrong (``kind``: what the
    caller calls a field: a form field, an ``Upload-Metadata`` key)."""
    if title is None:
        raise BadRequest(f"missing {kind} 'title'")
    title = title.strip()
    if not title:
        raise BadRequest(f"{kind} 'title' must not be blank")
    if len(title) > MAX_TITLE_CHARS:
        raise BadRequest(f"{kind} 'title' must be at most {MAX_TITLE_CHARS} characters")
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise BadRequest(f"{kind} 'description' must be at most {MAX_DESCRIPTION_CHARS} characters")
    for name, value in (("title", title), ("description", description)):
        if found := CONTROL_CHARACTER.search(value):
            raise BadRequest(
                f"{kind} {name!r} must not contain control characters "
                f"(found U+{ord(found.group()):04X}); only newline and tab are allowed"
            )
    visibility = (visibility or "").strip() or "private"
    if visibility not in VISIBILITIES:
        allowed = " or ".join(repr(v) for v in VISIBILITIES)
        raise BadRequest(f"{kind} 'visibility' must be {allowed}, not {visibility[:40]!r}")
    return VideoFields(title=title, description=description, visibility=visibility)


def check_lang(lang: str, what: str = "lang") -> str:
    if not isinstance(lang, str) or not LANG.fullmatch(lang):
        raise BadRequest(f"{what} must be a language tag such as 'en' or 'pt-BR', not {str(lang)[:20]!r}")
    return lang


def check_cues(cues: Sequence[Mapping[str, Any]]) -> None:
    """The catalog's rule for one track's cues (``{"start_s", "end_s", "text"}`` each):
    ``BadRequest`` naming the first cue that breaks it. Pure, so a track is checked by the very
    rule ``put_cues`` applies before any of its files is published."""
    if len(cues) > MAX_CUES_PER_TRACK:
        raise BadRequest(f"a subtitle track may have at most {MAX_CUES_PER_TRACK} cues, not {len(cues)}")
    for idx, cue in enumerate(cues):
        start, end, text = float(cue["start_s"]), float(cue["end_s"]), str(cue["text"])
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise BadRequest(f"cue {idx} must have 0 <= start_s <= end_s, not {start}..{end}")
        if len(text) > MAX_CUE_CHARS:
            raise BadRequest(f"cue {idx} has more than {MAX_CUE_CHARS} characters")
