"""Sidecar subtitle files (SRT or WebVTT) sent with an upload or added to a video later.

A sidecar is checked before it is kept: its file name ends in ``.srt`` or ``.vtt``, its
language is a tag like ``fr`` or ``pt-BR``, it is at most ``VODRAY_MAX_SUBTITLE_MB``, and
``pipelines.subtitles.normalise`` (pysubs2: pure Python, no ffmpeg) finds at least one cue in
it. The file is kept as sent at ``layout.sidecar_key``: the job normalises it again with the
video's duration, like the source's own tracks.

Normalising runs in a worker thread of the API replica, not in a Ray task: the work is bounded
(the size cap and ``VODRAY_MAX_CUES``, about 0.2 ms a cue), and a Ray task that asks for a CPU
waits behind the encodes of every running job on a busy node, holding the request for minutes
(the GIL's switch interval keeps the event loop answering meanwhile).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from catalog.validation import check_lang
from cluster import layout
from cluster.errors import BadRequest, InvalidMedia, PayloadTooLarge
from cluster.settings import SubtitleSettings, parse_languages
from cluster.storage import Storage
from pipelines.subtitles.cues import Normalised, normalise

SIDECAR_EXTENSIONS = ("srt", "vtt")
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
    """``srt`` or ``vtt`` from the part's file name; ``BadRequest`` for anything else."""
    suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower().lstrip(".")
    if suffix not in SIDECAR_EXTENSIONS:
        shown = (filename or "")[:80]
        raise BadRequest(f"subtitle file {shown!r} must be named *.srt or *.vtt (SubRip or WebVTT)")
    return suffix


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


def normalise_sidecar(
    data: bytes, name: str, settings: SubtitleSettings, duration_s: float | None = None
) -> Normalised:
    """The file's cues, or ``InvalidMedia`` if it holds none (junk, or not subtitles at all)."""
    if len(data) > settings.max_subtitle_mb * 2**20:
        raise too_large(name, settings.max_subtitle_mb * 2**20)
    if not data.strip():
        raise InvalidMedia(f"subtitle file {name[:80]!r} is empty")
    try:
        result = normalise(data, max_cues=settings.max_cues, duration_s=duration_s)
    except InvalidMedia as exc:
        raise InvalidMedia(f"subtitle file {name[:80]!r}: {exc.detail}") from None
    if not result.cues:
        raise InvalidMedia(
            f"subtitle file {name[:80]!r} holds no cues: SRT and WebVTT cues have timing lines"
            " like 00:00:01,000 --> 00:00:02,500"
        )
    return result


def keep_sidecars(
    storage: Storage,
    video_id: str,
    sidecars: Sequence[tuple[Sidecar, str]],
    settings: SubtitleSettings,
) -> list[dict[str, Any]]:
    """Check every ``(sidecar, lang)`` of an upload, then store them all (indices from 0).

    Runs in a worker thread. Nothing is stored unless every file is good.
    """
    checked = []
    for sidecar, lang in sidecars:
        data = sidecar.read()
        checked.append((sidecar, lang, data, normalise_sidecar(data, sidecar.name, settings)))
    records = []
    for index, (sidecar, lang, data, result) in enumerate(checked):
        storage.write_bytes(layout.sidecar_key(video_id, index, lang, sidecar.ext), data)
        records.append(sidecar_record(index, lang, sidecar.name, result))
    return records


def next_sidecar_index(storage: Storage, video_id: str) -> int:
    """The index after the video's last sidecar (``sources/{vid}/subtitles/{nn}.{lang}.{ext}``)."""
    taken = [-1]
    for key in storage.list(layout.sidecar_prefix(video_id)):
        head = PurePosixPath(key).name.split(".", 1)[0]
        if head.isdigit():
            taken.append(int(head))
    return max(taken) + 1


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
