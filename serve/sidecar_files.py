"""Sidecar subtitle files (SRT or WebVTT) sent with an upload or added to a video later.

A sidecar is checked before it is kept: its file name ends in ``.srt`` or ``.vtt`` (which
decides how it is read: 422 for any other name), its language is a tag like ``fr`` or
``pt-BR``, it is at most ``VODRAY_MAX_SUBTITLE_MB``, and it holds at least one cue. It is read
by ``pipelines.subtitles.parse`` in a child process with a CPU-time limit, which the API's event
loop awaits without running any of the parse: a pathological file costs that child its CPU
limit and the sender a 422, never the other requests a stall. A Ray task is not used: one that
asks for a CPU waits behind the encodes of every running job on a busy node.

The file is kept as sent at ``layout.sidecar_key``; the job reads it again with the video's
duration, like the source's own tracks. A video keeps at most ``VODRAY_MAX_SIDECARS`` files,
one per language: a file in a language the video has replaces that one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

import anyio.to_thread

from catalog.validation import check_lang
from cluster import layout
from cluster.errors import BadRequest, InvalidMedia, PayloadTooLarge
from cluster.settings import SubtitleSettings, parse_languages
from cluster.storage import Storage
from pipelines.subtitles.cues import Normalised
from pipelines.subtitles.parse import format_of, parse_subtitles_async
from pipelines.subtitles.record import SIDECAR_NAME

_TIMING = "00:00:01,000 --> 00:00:02,500"
MAX_SIDECARS = 8
"""Sidecar files one upload may carry."""
MAX_TRANSLATE_TO = 8
"""Languages one upload may ask for in ``translate_to``: each is a translation of every track."""
SPOOL_MEMORY_BYTES = 1024 * 1024
"""A sidecar bigger than this waits for the end of the form in a temporary file, not in memory."""


@dataclass
class Sidecar:
    """One subtitle file of a form, as received: its bytes wait in a spooled temporary file."""

    name: str
    ext: str
    spool: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(SPOOL_MEMORY_BYTES))  # noqa: SIM115 - closed by ReceivedForm.close
    size: int = 0

    def read(self) -> bytes:
        self.spool.seek(0)
        return self.spool.read()


def sidecar_extension(filename: str | None) -> str:
    """``srt`` or ``vtt`` from the part's file name: what the file is read as; ``InvalidMedia``
    (422) for any other name."""
    return format_of(filename or "")


def sidecar_lang(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise BadRequest("each subtitle file needs its language, e.g. 'fr' or 'pt-BR'")
    # Lower case, as the job reads it back from the file name (BCP 47 tags ignore case).
    return check_lang(raw.strip().lower(), "the subtitle language")


def too_large(name: str, max_bytes: int) -> PayloadTooLarge:
    limit_mb = max_bytes / 2**20
    return PayloadTooLarge(f"subtitle file {name[:80]!r} is larger than the limit of {limit_mb:g} MB")


def parse_translate_to(raw: str | None) -> list[str]:
    """``"es, fr"`` -> ``["es", "fr"]``: language codes, each once, at most ``MAX_TRANSLATE_TO``."""
    try:
        codes = list(parse_languages(raw or ""))
    except ValueError as exc:
        raise BadRequest(f"translate_to: {exc}") from None
    if len(codes) > MAX_TRANSLATE_TO:
        raise BadRequest(f"translate_to names {len(codes)} languages; the limit is {MAX_TRANSLATE_TO}")
    return codes


async def check_sidecar(
    data: bytes, name: str, settings: SubtitleSettings, duration_s: float | None = None
) -> Normalised:
    """The file's cues, read in a child process; ``InvalidMedia`` naming the file if it holds
    none (junk, another format, or cues that break every limit)."""
    if len(data) > settings.max_subtitle_mb * 2**20:
        raise too_large(name, settings.max_subtitle_mb * 2**20)
    if not data.strip():
        raise InvalidMedia(f"subtitle file {name[:80]!r} is empty")
    result = await parse_subtitles_async(data, name, settings, duration_s=duration_s)
    if not result.cues:
        why = "; ".join(result.warnings)
        raise InvalidMedia(
            f"subtitle file {name[:80]!r} holds no cue that can be kept"
            + (f" ({why})" if why else f": {format_of(name).upper()} cues have timing lines like {_TIMING}")
        )
    return result


async def keep_sidecars(
    storage: Storage,
    video_id: str,
    sidecars: Sequence[tuple[Sidecar, str]],
    settings: SubtitleSettings,
) -> list[dict[str, Any]]:
    """Check every ``(sidecar, lang)`` of an upload, then store them all (indices from 0).

    Nothing is stored unless every file is good."""
    checked = []
    for sidecar, lang in sidecars:
        data = sidecar.read()
        checked.append((sidecar, lang, data, await check_sidecar(data, sidecar.name, settings)))
    records = []
    for index, (sidecar, lang, data, result) in enumerate(checked):
        key = layout.sidecar_key(video_id, index, lang, sidecar.ext)
        await anyio.to_thread.run_sync(storage.write_bytes, key, data)
        records.append(sidecar_record(index, lang, sidecar.name, result))
    return records


def stored_sidecars(storage: Storage, video_id: str) -> dict[str, list[tuple[int, str]]]:
    """The video's stored sidecar files by language: ``[(index, key), ...]``, oldest first."""
    found: dict[str, list[tuple[int, str]]] = {}
    for key in storage.list(layout.sidecar_prefix(video_id)):
        matched = SIDECAR_NAME.fullmatch(PurePosixPath(key).name)
        if matched:
            found.setdefault(matched.group(2).lower(), []).append((int(matched.group(1)), key))
    return {lang: sorted(keys) for lang, keys in found.items()}


def check_room(stored: dict[str, list[tuple[int, str]]], lang: str, settings: SubtitleSettings) -> None:
    """``InvalidMedia`` if a file in ``lang`` would take the video past ``VODRAY_MAX_SIDECARS``."""
    if lang not in stored and len(stored) >= settings.max_sidecars:
        raise InvalidMedia(
            f"the video has subtitle files in {len(stored)} languages, the limit; send one in a"
            f" language it has ({', '.join(sorted(stored)[:8])}...) to replace that one"
        )


def next_sidecar_index(stored: dict[str, list[tuple[int, str]]]) -> int:
    """The index after the video's last sidecar (``sources/{vid}/subtitles/{nn}.{lang}.{ext}``)."""
    return 1 + max((index for keys in stored.values() for index, _ in keys), default=-1)


def sidecar_record(index: int, lang: str, name: str, result: Normalised) -> dict[str, Any]:
    """What the API answers about a kept sidecar."""
    return {
        "index": index,
        "lang": lang,
        "source": f"sidecar:{name[:80]}",
        "cues": len(result.cues),
        "dropped": result.dropped,
        "repaired": result.repaired,
        "warnings": list(result.warnings),
    }
