"""Chunked encode, stitch and package with real ffmpeg: a player cannot tell it from one encode.

Every title here has at least 5 chunks (2 s segments, one segment per chunk). Checked with
ffprobe on the packaged CMAF (init + segments, as a player reads them): the frame count,
evenly spaced increasing timestamps (no frame duplicated or dropped at a seam), keyframes
exactly on the segment grid in every rendition, audio as long as the video, and each frame
as close to a one-process encode of the whole title as lossy coding allows.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cluster import layout
from cluster.settings import PipelineSettings, parse_ladder
from pipelines.video import encode, package
from pipelines.video.plan import Plan, plan_video
from pipelines.video.probe import probe
from tests.encoding import encode_whole
from tests.integration.conftest import TEST_LADDER, TEST_SEGMENT_S
from tests.integration.test_pipeline import ffprobe as ffprobe_json

SETTINGS = PipelineSettings(
    ladder=parse_ladder(TEST_LADDER),
    segment_s=TEST_SEGMENT_S,
    x264_preset="ultrafast",
    chunk_s=TEST_SEGMENT_S,
)
MIN_PSNR_DB = 30.0
"""A dropped or repeated frame at a seam shifts every later frame by one: far below this."""


def video_packets(path: Path) -> list[tuple[float, bool]]:
    """(pts, keyframe) of every video packet, in decode order; asserts decode times increase."""
    packets = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time,flags")[
        "packets"
    ]
    dts = [float(p["dts_time"]) for p in packets]
    assert all(a < b for a, b in zip(dts, dts[1:], strict=False)), f"{path.name}: decode times go back"
    return [(float(p["pts_time"]), p["flags"].startswith("K")) for p in packets]


def stream_duration(path: Path, selector: str) -> float:
    stream = ffprobe_json(path, "-select_streams", selector, "-show_entries", "stream=duration")["streams"][0]
    return float(stream["duration"])


def joined(package_dir: Path, name: str, out: Path) -> Path:
    """A rendition's init segment and media segments in order: the bytes a player appends."""
    segments = sorted((package_dir / name).glob("seg-*.m4s"))
    out.write_bytes(b"".join(p.read_bytes() for p in [package_dir / name / layout.INIT_NAME, *segments]))
    return out


def min_psnr(a: Path, b: Path) -> float:
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(a), "-i", str(b),
         "-lavfi", "[0:v][1:v]psnr=stats_file=-", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    values = [float(v) for v in re.findall(r"psnr_avg:(\S+)", result.stdout) if v != "inf"]
    assert values, result.stderr[-500:]
    return min(values)


def encode_chunked(source: Path, tmp: Path, plan: Plan, strategy: str) -> Path:
    """What the job's tasks do, over local files: every chunk, then stitch and package."""
    chunk_dir = tmp / "chunks"
    chunk_dir.mkdir()
    for chunk in plan.chunks:
        outputs = [(r, chunk_dir / f"{r.name}-{chunk.name}.mp4") for r in plan.renditions]
        groups = [outputs] if strategy == "split" else [[output] for output in outputs]
        for group in groups:
            encode.encode_chunk(source, group, plan, chunk, threads=1)
    stitched = [
        (
            r,
            package.stitch(
                [chunk_dir / f"{r.name}-{c.name}.mp4" for c in plan.chunks], plan, tmp / f"{r.name}.mp4"
            ),
        )
        for r in plan.renditions
    ]
    aac = encode.encode_aac(source, tmp / layout.AAC_NAME, plan) if plan.has_audio else None
    package.package(stitched, aac, tmp / "package", plan)
    return tmp / "package"


def check_player_view(package_dir: Path, plan: Plan, tmp: Path, expected_frames: int) -> dict[str, Path]:
    grid = [round(i * plan.segment_s, 3) for i in range(plan.segment_count)]
    wholes = {}
    for rendition in plan.renditions:
        whole = joined(package_dir, rendition.name, tmp / f"whole-{rendition.name}.mp4")
        packets = video_packets(whole)
        times = sorted(t for t, _ in packets)
        assert len(packets) == expected_frames, rendition.name
        steps = {round(b - a, 4) for a, b in zip(times, times[1:], strict=False)}
        assert steps == {round(1 / plan.fps, 4)}, f"{rendition.name}: uneven frame spacing {steps}"
        assert times[0] == 0.0
        keys = [round(t, 3) for t, key in packets if key]
        assert keys == grid, f"{rendition.name}: keyframes {keys} are not the segment grid {grid}"
        if plan.has_audio:
            audio = joined(package_dir, layout.AUDIO_DIR, tmp / "whole-audio.mp4")
            video_s = expected_frames / plan.fps
            assert abs(stream_duration(audio, "a:0") - video_s) < 0.05, "audio out of step with video"
        wholes[rendition.name] = whole
    return wholes


@pytest.mark.parametrize("strategy", ["split", "per-rendition"])
def test_chunks_of_a_title_not_a_whole_number_of_segments_play_as_one_encode(
    clip: Any, tmp_path: Path, strategy: str
) -> None:
    source = clip(seconds=11.3, width=640, height=360, fps=25, audio=True, subtitles=False)
    plan = plan_video(probe(source), SETTINGS)
    assert len(plan.chunks) >= 5 and plan.chunks[-1].frames < plan.gop_frames
    source_frames = len(video_packets(source))
    assert plan.total_frames == source_frames

    package_dir = encode_chunked(source, tmp_path, plan, strategy)
    wholes = check_player_view(package_dir, plan, tmp_path, source_frames)

    # Frame by frame against one ffmpeg encoding the whole title: a seam that lost or
    # repeated a frame would put every later frame one step off.
    reference = encode_whole(source, tmp_path / "reference.mp4", plan, plan.renditions[-1])
    assert min_psnr(wholes[plan.renditions[-1].name], reference) > MIN_PSNR_DB


def test_a_variable_frame_rate_source_is_chunked_onto_a_constant_grid(clip: Any, tmp_path: Path) -> None:
    source = clip(seconds=13, width=640, height=360, fps=25, audio=True, subtitles=False, vfr=True)
    info = probe(source)
    assert info.variable_fps
    plan = plan_video(info, SETTINGS)
    assert len(plan.chunks) >= 5

    package_dir = encode_chunked(source, tmp_path, plan, "split")
    wholes = check_player_view(package_dir, plan, tmp_path, plan.total_frames)

    reference = encode_whole(source, tmp_path / "reference.mp4", plan, plan.renditions[-1])
    assert len(video_packets(reference)) == plan.total_frames
    assert min_psnr(wholes[plan.renditions[-1].name], reference) > MIN_PSNR_DB
