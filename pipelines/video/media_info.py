"""What ffprobe says a source is, as one frozen record (``pipelines.video.probe`` makes it).

Its own module so that the pure planning (``pipelines.video.plan``) and the argv builders that
take a plan import no code that runs ffprobe.
"""

from __future__ import annotations

from dataclasses import dataclass


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
