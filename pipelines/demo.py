"""Test and demo clips made by ffmpeg itself: a moving pattern, a tone, subtitles in English."""

from __future__ import annotations

from pathlib import Path

from cluster.scratch import scratch_dir
from pipelines.video import argv, ffmpeg

DEMO_CUES = (
    (0.5, 2.0, "Hello from vodray"),
    (2.5, 4.0, "A second line of subtitles"),
    (4.5, 5.5, "The end"),
)


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    return (
        f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"
    )


def demo_srt(seconds: float) -> str:
    """The demo cues that start before ``seconds``, as SRT text."""
    blocks = [
        f"{number}\n{_srt_time(start)} --> {_srt_time(min(end, seconds))}\n{text}\n"
        for number, (start, end, text) in enumerate((c for c in DEMO_CUES if c[0] < seconds), start=1)
    ]
    return "\n".join(blocks)


def make_clip(
    path: Path,
    *,
    seconds: float = 6,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    audio: bool = True,
    subtitles: bool = True,
    rotate: int | None = None,
    vfr: bool = False,
) -> Path:
    """Write an MP4 test clip to ``path``.

    ``rotate`` adds a phone-style rotation tag (coded ``width``x``height``, shown turned);
    ``vfr`` drops frames after the first third so the frame rate is variable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with scratch_dir("demo") as scratch:
        srt = None
        if subtitles and demo_srt(seconds):
            srt = Path(scratch) / "cues.srt"
            srt.write_text(demo_srt(seconds))
        encoded = Path(scratch) / "clip.mp4" if rotate else path
        command = argv.demo_clip_argv(
            encoded,
            seconds=seconds,
            width=width,
            height=height,
            fps=fps,
            audio=audio,
            subtitles_srt=srt,
            vfr=vfr,
        )
        ffmpeg.run(command)
        if rotate:
            ffmpeg.run(argv.set_rotation_argv(encoded, path, rotate))
    return path
