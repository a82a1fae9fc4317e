"""What a source file is, from ffprobe, or a reason a person can read why it is not a video."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from cluster.errors import InvalidMedia
from pipelines import ffmpeg

# A header claiming more than this is broken, whatever the configured limit.
ABSURD_DURATION_S = 30 * 24 * 3600.0
# r_frame_rate and avg_frame_rate further apart than this mean frames arrive unevenly.
VFR_TOLERANCE = 0.01
# ISO BMFF boxes that may open an MP4/MOV: such a file that ffprobe cannot read is truncated.
_MP4_LEADING_BOXES = (b"ftyp", b"mdat", b"moov", b"free", b"skip", b"wide")


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    width: int
    """Display width: sample aspect ratio applied, swapped with height for 90/270 rotation."""
    height: int
    """Display height."""
    rotation: int
    """0, 90, 180 or 270: counterclockwise turn the player applies (display matrix convention)."""
    fps: float
    """Average frame rate (frames / duration)."""
    base_fps: float
    """r_frame_rate: the rate every timestamp fits; a VFR source's fastest stretch."""
    variable_fps: bool
    video_codec: str
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None
    audio_channels: int
    subtitle_tracks: tuple[tuple[int, str, str], ...]
    """(stream index, codec, language) of every text/bitmap subtitle stream."""
    format_name: str
    size_bytes: int


def _rate(raw: str | None) -> float:
    """``"30000/1001"`` -> 29.97..., ``"0/0"`` or missing -> 0."""
    try:
        rate = Fraction(raw or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(rate)


def _float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _rotation(stream: dict[str, Any]) -> int:
    """Display matrix rotation (ffprobe >= 5), else the old clockwise ``rotate`` tag."""
    degrees: float | None = None
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            degrees = _float(side_data["rotation"])
            break
    if degrees is None:
        tag = _float((stream.get("tags") or {}).get("rotate"))
        degrees = -tag if tag is not None else 0.0
    return int(round(degrees / 90.0)) * 90 % 360


def _display_size(stream: dict[str, Any], rotation: int) -> tuple[int, int]:
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    sar = stream.get("sample_aspect_ratio") or "1:1"
    num, _, den = sar.partition(":")
    if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0 and num != den:
        width = int(round(width * int(num) / int(den)))
    return (height, width) if rotation in (90, 270) else (width, height)


def _is_still_image(format_name: str) -> bool:
    return format_name == "image2" or format_name.endswith("_pipe")


def parse_probe(data: dict[str, Any], size_bytes: int) -> MediaInfo:
    """ffprobe's ``-show_format -show_streams`` JSON -> MediaInfo, or InvalidMedia with the reason."""
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    format_name = str(fmt.get("format_name") or "")
    # Cover art in an MP3/M4A is a "video" stream with one picture: not a video.
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        if audios:
            raise InvalidMedia("the file has no video stream (audio-only?)")
        raise InvalidMedia("the file has no video stream")
    video = videos[0]
    codec = video.get("codec_name")
    if not codec or codec == "none":
        tag = video.get("codec_tag_string") or "unknown"
        raise InvalidMedia(f"the video codec ({tag}) is not supported")
    if _is_still_image(format_name):
        raise InvalidMedia("the file is a still image, not a video")

    duration = _float(fmt.get("duration"))
    if duration is None:
        duration = _float(video.get("duration"))
    if not duration or duration <= 0:
        raise InvalidMedia("the video has no duration (zero length)")
    if duration > ABSURD_DURATION_S:
        raise InvalidMedia(
            f"the file claims an impossible duration ({duration:.0f} s); it is probably damaged"
        )

    rotation = _rotation(video)
    width, height = _display_size(video, rotation)
    if width <= 0 or height <= 0:
        raise InvalidMedia("the video stream has no picture size")

    avg_fps, base_fps = _rate(video.get("avg_frame_rate")), _rate(video.get("r_frame_rate"))
    fps = avg_fps or base_fps
    if fps <= 0:
        raise InvalidMedia("the video stream has no frame rate")
    base_fps = base_fps or fps
    variable = abs(base_fps - fps) / base_fps > VFR_TOLERANCE

    audio = audios[0] if audios else None
    subtitles = tuple(
        (
            int(s["index"]),
            str(s.get("codec_name") or "unknown"),
            str((s.get("tags") or {}).get("language") or "und"),
        )
        for s in streams
        if s.get("codec_type") == "subtitle"
    )
    return MediaInfo(
        duration_s=duration,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        base_fps=base_fps,
        variable_fps=variable,
        video_codec=str(codec),
        pix_fmt=str(video.get("pix_fmt") or "unknown"),
        has_audio=audio is not None,
        audio_codec=str(audio.get("codec_name") or "unknown") if audio else None,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        subtitle_tracks=subtitles,
        format_name=format_name,
        size_bytes=size_bytes,
    )


def _unreadable_reason(path: Path, error: ffmpeg.FFmpegError) -> str:
    with path.open("rb") as source:
        head = source.read(8)
    if head[4:8] in _MP4_LEADING_BOXES:
        if "moov atom not found" in error.stderr_tail:
            return "the MP4 file is truncated or incomplete (its index, the moov atom, is missing)"
        return "the MP4 file is damaged and cannot be read"
    return "the file is not a video or audio file that can be read"


def probe(path: Path) -> MediaInfo:
    """Describe ``path``; raise InvalidMedia saying why it cannot become a stream."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidMedia("the file is empty")
    try:
        data = ffmpeg.probe_json(path)
    except ffmpeg.FFmpegError as exc:
        raise InvalidMedia(_unreadable_reason(path, exc)) from exc
    info = parse_probe(data, size)
    # A stream can be described (codec, size) yet not decode: check a few frames come out.
    try:
        frames = ffmpeg.run_json(ffmpeg.first_frames_argv(path)).get("frames") or []
    except ffmpeg.FFmpegError as exc:
        raise InvalidMedia(f"the video stream ({info.video_codec}) cannot be decoded") from exc
    if not frames:
        raise InvalidMedia(f"the video stream ({info.video_codec}) has no frames that can be decoded")
    return info
