"""Subtitle tracks of a source and sidecar files -> WebVTT files and one record per track.

Every text stream (subrip, mov_text, ASS/SSA, WebVTT, in MP4, MOV or MKV) is extracted by one
ffmpeg run and normalised by ``pipelines.subtitles.cues``. Image subtitles (PGS, DVB, VobSub)
cannot become text: like a track too large or too broken to read, they are recorded as
skipped, and never fail the video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import VodError
from cluster.scratch import scratch_dir
from cluster.settings import SubtitleSettings
from pipelines.subtitles.cues import FORMATS, read_bounded, write_vtt
from pipelines.subtitles.languages import normalise_lang
from pipelines.subtitles.parse import parse_subtitles
from pipelines.video import argv, ffmpeg

IMAGE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle", "xsub"})
# codec -> (ffmpeg encoder, container, suffix): ASS and WebVTT are copied as they are;
# SRT-like codecs become SRT, the simplest format pysubs2 reads.
TEXT_CODECS = {
    "subrip": ("srt", "srt", ".srt"),
    "srt": ("srt", "srt", ".srt"),
    "mov_text": ("srt", "srt", ".srt"),
    "text": ("srt", "srt", ".srt"),
    "ass": ("copy", "ass", ".ass"),
    "ssa": ("copy", "ass", ".ass"),
    "webvtt": ("copy", "webvtt", ".vtt"),
}


@dataclass(frozen=True)
class TrackResult:
    """What happened to one subtitle track: the record kept in the video's metadata."""

    lang: str
    source: str
    """``stream:N`` (embedded, ffprobe stream index) or ``sidecar:NAME``."""
    status: str
    """``ok`` or ``skipped`` (image subtitles, unreadable or too large: see ``warnings``)."""
    cues: int = 0
    dropped: int = 0
    repaired: int = 0
    warnings: tuple[str, ...] = ()
    vtt: str | None = None
    """Path of the written WebVTT file."""


def normalise_file(
    path: Path,
    out: Path,
    *,
    lang: str,
    source: str,
    settings: SubtitleSettings,
    duration_s: float | None = None,
) -> TrackResult:
    """One subtitle file -> ``out`` (WebVTT) and its record; a bad file is a skipped record."""
    try:
        data = read_bounded(path, settings.max_subtitle_mb * 1024 * 1024)
        result = parse_subtitles(
            data, path.name, settings, duration_s=duration_s, formats=FORMATS, what="the track"
        )
    except VodError as exc:
        return TrackResult(lang=lang, source=source, status="skipped", warnings=(exc.detail,))
    if not result.cues:
        why = "; ".join(result.warnings)
        reason = "the track holds no cue that can be read" + (f" ({why})" if why else "")
        return TrackResult(lang=lang, source=source, status="skipped", warnings=(reason,))
    write_vtt(result.cues, out)
    warnings = list(result.warnings)
    if result.encoding not in ("utf-8", "utf-16"):
        warnings.append(f"decoded as {result.encoding}")
    return TrackResult(
        lang=lang,
        source=source,
        status="ok",
        cues=len(result.cues),
        dropped=result.dropped,
        repaired=result.repaired,
        warnings=tuple(warnings),
        vtt=str(out),
    )


def extract_tracks(
    src: ffmpeg.Source,
    tracks: Sequence[tuple[int, str, str]],
    out_dir: Path,
    settings: SubtitleSettings,
    duration_s: float | None = None,
) -> list[TrackResult]:
    """Every subtitle stream of ``src`` (``MediaInfo.subtitle_tracks``) -> ``out_dir/{index}.vtt``.

    Text streams are extracted by one ffmpeg run (the source is read once); image streams
    and codecs with no text form are recorded as skipped.
    """
    results: dict[int, TrackResult] = {}
    wanted: list[tuple[int, str, str, Path]] = []
    with scratch_dir("subs") as scratch:
        for index, codec, tag in tracks:
            lang, source = normalise_lang(tag), f"stream:{index}"
            if codec in TEXT_CODECS:
                wanted.append((index, codec, lang, Path(scratch) / f"{index}{TEXT_CODECS[codec][2]}"))
                continue
            kind = "an image subtitle (bitmap)" if codec in IMAGE_CODECS else "not a text subtitle"
            reason = f"{codec} is {kind}: it cannot become text"
            results[index] = TrackResult(lang=lang, source=source, status="skipped", warnings=(reason,))
        if wanted:
            outputs = [(index, *TEXT_CODECS[codec][:2], path) for index, codec, _, path in wanted]
            try:
                ffmpeg.run(argv.extract_subtitles_argv(src, outputs))
            except ffmpeg.FFmpegError as exc:  # a damaged subtitle stream must not fail the video
                for index, _, lang, _ in wanted:
                    results[index] = TrackResult(lang, f"stream:{index}", "skipped", warnings=(exc.detail,))
                wanted = []
            for index, _, lang, path in wanted:
                out = out_dir / f"{index}.vtt"
                results[index] = normalise_file(
                    path, out, lang=lang, source=f"stream:{index}", settings=settings, duration_s=duration_s
                )
    return [results[index] for index, _, _ in tracks]
