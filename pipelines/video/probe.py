"""What a source file is, from ffprobe, or a reason a person can read why it is not a video."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from cluster.errors import InvalidMedia
from pipelines.video import argv, ffmpeg
from pipelines.video.media_info import MediaInfo

# A header claiming more than this is broken, whatever the configured limit.
ABSURD_DURATION_S = 30 * 24 * 3600.0
# r_frame_rate and avg_frame_rate further apart than this mean frames arrive unevenly.
VFR_TOLERANCE = 0.01
# ISO BMFF boxes that may open an MP4/MOV: such a file that ffprobe cannot read is truncated.
_MP4_LEADING_BOXES = (b"ftyp", b"mdat", b"moov", b"free", b"skip", b"wide")
# ffmpeg names the demuxer it refused in the log context: "[hls @ 0x55..] Format not on whitelist".
_REFUSED_DEMUXER = re.compile(r"^\[([^\]@]+?) @ 0x[0-9a-f]+\] Format not on whitelist", re.MULTILINE)
_NOT_READABLE = "the file is not a video or audio file that can be read"
_PLAYLIST = "the file is a playlist (M3U8), not a video: upload the video file itself"
_MANIFEST = "the file is a streaming manifest (DASH), not a video: upload the video file itself"
_CONCAT_LIST = "the file is a concat list (a list of other files), not a video"
_SDP = "the file describes a network stream (SDP), not a video"
_IMAGE = "the file is an image or image sequence, not a video"
_AUDIO_ONLY = "the file has no video stream (audio-only?)"
# Demuxers ffmpeg may pick for an upload that vodray refuses, and what to tell its owner.
_REFUSED_REASONS = {
    "hls": _PLAYLIST,
    "dash": _MANIFEST,
    "webm_dash_manifest": _MANIFEST,
    "concat": _CONCAT_LIST,
    "sdp": _SDP,
    "rtp": _SDP,
    "rtsp": _SDP,
    "image2": _IMAGE,
    "image2pipe": _IMAGE,
    "gif": _IMAGE,
    "tty": _NOT_READABLE,
    **dict.fromkeys(
        ("mp3", "wav", "flac", "aac", "aiff", "w64", "ac3", "eac3", "wv", "ape", "dts"), _AUDIO_ONLY
    ),
}
_ACCEPTED = "MP4, MOV, MKV, WebM, AVI, MPEG-TS, MPEG-PS, FLV, MXF, WMV or Ogg"


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


def _text_kind(head: bytes) -> str | None:
    """What a text upload is, from its first bytes: the reason it is not a video, or None.

    A plain concat list has no header ffmpeg recognises, so its owner would otherwise hear only
    "not a video"; naming what the file is says what went wrong.
    """
    try:
        text = head.decode("utf-8").lstrip("\ufeff \t\r\n")
    except UnicodeDecodeError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if text.startswith("#EXTM3U"):
        return _PLAYLIST
    if text.startswith("ffconcat") or any(line.startswith("file ") for line in lines[:20]):
        return _CONCAT_LIST
    if text.startswith("v=0"):
        return _SDP
    if "<MPD" in text[:1024]:
        return _MANIFEST
    return None


HEAD_BYTES = 4096
"""How much of an unreadable upload is read to say what it is."""


def _unreadable_reason(head: bytes, error: ffmpeg.FFmpegError) -> str:
    text_kind = _text_kind(head)
    if text_kind is not None:
        return text_kind
    refused = _REFUSED_DEMUXER.search(error.stderr_tail)
    if refused is not None:
        demuxer = refused[1]
        if demuxer in _REFUSED_REASONS:
            return _REFUSED_REASONS[demuxer]
        if demuxer.endswith("_pipe"):
            return _IMAGE
        return f"the file's format ({demuxer}) is not one vodray reads video from; upload {_ACCEPTED}"
    if head[4:8] in _MP4_LEADING_BOXES:
        if "moov atom not found" in error.stderr_tail:
            return "the MP4 file is truncated or incomplete (its index, the moov atom, is missing)"
        return "the MP4 file is damaged and cannot be read"
    return _NOT_READABLE


def probe(path: Path) -> MediaInfo:
    """Describe the upload at ``path``; raise InvalidMedia saying why it cannot become a stream."""

    def read_head() -> bytes:
        with path.open("rb") as source:
            return source.read(HEAD_BYTES)

    return probe_upload(path, path.stat().st_size, read_head)


def probe_upload(src: ffmpeg.Source, size: int, read_head: Callable[[], bytes]) -> MediaInfo:
    """``probe`` for a local path or a presigned URL that ffprobe reads by range: only the
    container's index and the first seconds are read, never the whole upload. ``size`` is the
    upload's; ``read_head()`` gives its first ``HEAD_BYTES`` (read only if it cannot be read
    as a video, to say what it is instead)."""
    if size == 0:
        raise InvalidMedia("the file is empty")
    try:
        data = ffmpeg.run_json(argv.probe_argv(src))
    except ffmpeg.FFmpegError as exc:
        raise InvalidMedia(_unreadable_reason(read_head(), exc)) from exc
    info = parse_probe(data, size)
    # A stream can be described (codec, size) yet not decode: check a few frames come out.
    try:
        frames = ffmpeg.run_json(argv.first_frames_argv(src)).get("frames") or []
    except ffmpeg.FFmpegError as exc:
        raise InvalidMedia(f"the video stream ({info.video_codec}) cannot be decoded") from exc
    if not frames:
        raise InvalidMedia(f"the video stream ({info.video_codec}) has no frames that can be decoded")
    return info
