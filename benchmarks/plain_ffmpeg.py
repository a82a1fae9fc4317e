"""The plain alternatives the encode benchmarks measure vodray against, as argv lists.

They encode with vodray's own x264 settings (``pipelines.video.argv.x264_args``), so a ratio
compares the way the work is split, never two sets of encoder options. Nothing in vodray runs
them: they live beside the scripts that do.
"""

from __future__ import annotations

from pathlib import Path

from cluster import layout
from pipelines.video.argv import (
    FFMPEG_PREFIX,
    STRICT_DECODE,
    fps_arg,
    input_args,
    seconds_arg,
    storyboard_argv,
    x264_args,
)
from pipelines.video.plan import Plan, Rendition
from pipelines.video.tiles import Storyboard


def _scale(plan: Plan, rendition: Rendition) -> str:
    # setdar approximates its ratio to terms <= max (default 100): 427/240 would become 89/50.
    return f"scale={rendition.width}:{rendition.height},setdar=dar={plan.display_aspect}:max=100000"


def rendition_argv(src: Path, out: Path, plan: Plan, rendition: Rendition) -> list[str]:
    """One video rendition of the whole title, one ffmpeg: upright (ffmpeg autorotates), CFR,
    a keyframe on every segment boundary."""
    video_filter = f"fps={fps_arg(plan.fps)},{_scale(plan, rendition)},format=yuv420p"
    return [
        *FFMPEG_PREFIX, *STRICT_DECODE, *input_args(src),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vf", video_filter, *x264_args(plan, rendition), "-f", "mp4", str(out),
    ]  # fmt: skip


def single_command_ladder_argv(src: Path, out_dir: Path, plan: Plan) -> list[str]:
    """ONE ffmpeg that decodes once, encodes every rendition through ``split``, muxes DASH +
    HLS and writes the MP3. No Ray, no storage, no catalog. The caller makes ``0/``, ``1/``..."""
    count = len(plan.renditions)
    split = f"[0:v]fps={fps_arg(plan.fps)},split={count}" + "".join(f"[s{i}]" for i in range(count))
    scaled = [f"[s{i}]{_scale(plan, r)},format=yuv420p[v{i}]" for i, r in enumerate(plan.renditions)]
    argv = [*FFMPEG_PREFIX, *input_args(src), "-filter_complex", ";".join([split, *scaled])]
    for i, rendition in enumerate(plan.renditions):
        argv += ["-map", f"[v{i}]", *x264_args(plan, rendition, stream=f":v:{i}")]
    if plan.has_audio:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{plan.audio_kbps}k", "-ac", "2", "-ar", "48000"]
    argv += [
        "-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", seconds_arg(plan.segment_s),
        "-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1",
        "-adaptation_sets", "id=0,streams=v" + (" id=1,streams=a" if plan.has_audio else ""),
        "-init_seg_name", layout.MUXER_INIT_TEMPLATE, "-media_seg_name", layout.MUXER_SEGMENT_TEMPLATE,
        str(out_dir / layout.MPD_NAME),
    ]  # fmt: skip
    if plan.has_audio:
        argv += [
            "-map", "0:a:0", "-c:a", "libmp3lame", "-b:a", f"{plan.mp3_kbps}k", "-ac", "2", "-ar", "48000",
            "-f", "mp3", str(out_dir / layout.MP3_NAME),
        ]  # fmt: skip
    return argv


# --- storyboards (benchmarks/storyboard.py) -------------------------------------------------


def storyboard_full_decode_argv(src: Path, out: Path, board: Storyboard) -> list[str]:
    """vodray's one pass without its decoder shortcuts: every frame decoded and deblocked."""
    skipped = ("-skip_frame", "noref", "-skip_loop_filter", "all")
    argv = storyboard_argv(src, out, board)
    at = argv.index(skipped[0])
    assert tuple(argv[at : at + len(skipped)]) == skipped
    return argv[:at] + argv[at + len(skipped) :]


def bframes_clip_argv(out: Path, seconds: float, width: int, height: int) -> list[str]:
    """A test pattern encoded as most uploads are: x264 with B-frames (demo clips have none)."""
    return [
        *FFMPEG_PREFIX, "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25,hue=h=40*t",
        "-t", seconds_arg(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-f", "mp4", str(out),
    ]  # fmt: skip


def raw_rgb_argv(image: Path) -> list[str]:
    """An image's pixels as packed RGB on stdout, to compare two sheets."""
    return [*FFMPEG_PREFIX, "-i", str(image), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
