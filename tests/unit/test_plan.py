"""Planning: which renditions, what sizes, one frame rate, one keyframe grid, one plan id."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cluster.errors import InvalidMedia
from cluster.settings import PipelineSettings, parse_ladder
from pipelines.video.media_info import MediaInfo
from pipelines.video.plan import plan_video, segment_starts

SETTINGS = PipelineSettings()  # ladder 360:800,480:1200,720:2400,1080:4500; 4 s segments; max 30 fps


def media(**changes: object) -> MediaInfo:
    info = MediaInfo(
        duration_s=60.0,
        width=1920,
        height=1080,
        rotation=0,
        fps=30.0,
        base_fps=30.0,
        variable_fps=False,
        video_codec="h264",
        pix_fmt="yuv420p",
        has_audio=True,
        audio_codec="aac",
        audio_channels=2,
        subtitle_tracks=(),
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        size_bytes=10_000_000,
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def sizes(info: MediaInfo, settings: PipelineSettings = SETTINGS) -> list[tuple[str, int, int, int]]:
    return [(r.name, r.width, r.height, r.video_kbps) for r in plan_video(info, settings).renditions]


def test_1080p_source_gets_every_rung_smallest_first() -> None:
    assert sizes(media()) == [
        ("360p", 640, 360, 800),
        ("480p", 854, 480, 1200),
        ("720p", 1280, 720, 2400),
        ("1080p", 1920, 1080, 4500),
    ]


def test_360p_source_gets_only_360p() -> None:
    assert sizes(media(width=640, height=360)) == [("360p", 640, 360, 800)]


def test_source_between_rungs_is_never_upscaled() -> None:
    assert [name for name, *_ in sizes(media(width=1600, height=900))] == ["360p", "480p", "720p"]


def test_source_below_the_lowest_rung_gets_one_even_rendition_at_its_own_size() -> None:
    # Bitrate scales with pixel count: (200/360)^2 of the lowest rung's 800 kbps.
    assert sizes(media(width=355, height=201)) == [("200p", 354, 200, 247)]


def test_odd_aspect_ratios_give_even_widths_that_never_exceed_the_source() -> None:
    renditions = plan_video(media(width=853, height=480), SETTINGS).renditions
    assert [(r.width, r.height) for r in renditions] == [(640, 360), (852, 480)]
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in renditions)


def test_cinemascope_widths_are_even() -> None:
    assert [(w, h) for _, w, h, _ in sizes(media(width=1998, height=1080))] == [
        (666, 360),
        (888, 480),
        (1332, 720),
        (1998, 1080),
    ]


def test_rotated_phone_video_plans_portrait_renditions_by_display_height() -> None:
    # probe reports the display size: 1080x1920 for a 1920x1080 stream rotated 90 degrees.
    assert [(w, h) for _, w, h, _ in sizes(media(width=1080, height=1920, rotation=90))] == [
        (202, 360),
        (270, 480),
        (406, 720),
        (608, 1080),
    ]


def test_renditions_carry_peak_rate_and_buffer_for_the_encoder() -> None:
    top = plan_video(media(), SETTINGS).renditions[-1]
    assert (top.maxrate_kbps, top.bufsize_kbps) == (5625, 9000)


@pytest.mark.parametrize(
    ("source_fps", "expected"),
    [
        (25.0, 25.0),
        (30.0, 30.0),
        (29.97, 30000 / 1001),
        (23.976, 24000 / 1001),
        (60.0, 30.0),
        (59.94, 30000 / 1001),
        (50.0, 25.0),  # divided, not clamped to 30: every other frame, no judder
        (120.0, 30.0),
        (14.99, 15.0),
    ],
)
def test_fps_is_standardised_and_capped_by_an_integer_divisor(source_fps: float, expected: float) -> None:
    plan = plan_video(media(fps=source_fps, base_fps=source_fps), SETTINGS)
    assert plan.fps == pytest.approx(expected, abs=1e-9)


def test_fps_cap_follows_the_setting() -> None:
    assert plan_video(media(), replace(SETTINGS, max_fps=60.0)).fps == 30.0
    assert plan_video(media(fps=60.0, base_fps=60.0), replace(SETTINGS, max_fps=60.0)).fps == 60.0


def test_variable_frame_rate_source_is_planned_at_its_base_rate() -> None:
    plan = plan_video(media(fps=16.75, base_fps=25.0, variable_fps=True), SETTINGS)
    assert plan.fps == 25.0


def test_vfr_with_a_timebase_as_base_rate_uses_the_average() -> None:
    plan = plan_video(media(fps=29.6, base_fps=90000.0, variable_fps=True), SETTINGS)
    assert plan.fps == 30.0


def test_segment_grid_is_a_whole_number_of_frames() -> None:
    plan = plan_video(media(duration_s=10.0, fps=25.0, base_fps=25.0), SETTINGS)
    assert (plan.gop_frames, plan.segment_s) == (100, 4.0)
    assert segment_starts(plan) == [0.0, 4.0, 8.0]


def test_ntsc_segments_stretch_to_whole_frames() -> None:
    plan = plan_video(media(duration_s=9.0, fps=29.97, base_fps=29.97), SETTINGS)
    assert plan.gop_frames == 120
    assert plan.segment_s == pytest.approx(4.004)
    assert segment_starts(plan) == pytest.approx([0.0, 4.004, 8.008])


def test_segment_starts_of_an_exact_multiple_has_no_empty_tail() -> None:
    plan = plan_video(media(duration_s=8.0, fps=25.0, base_fps=25.0), SETTINGS)
    assert segment_starts(plan) == [0.0, 4.0]


def test_audio_and_poster_plan() -> None:
    plan = plan_video(media(duration_s=6.0), SETTINGS)
    assert (plan.has_audio, plan.audio_kbps, plan.mp3_kbps, plan.x264_preset) == (True, 128, 192, "veryfast")
    assert plan.poster_at_s == 0.6
    assert plan_video(media(duration_s=600.0), SETTINGS).poster_at_s == 10.0
    assert plan_video(media(has_audio=False), SETTINGS).has_audio is False


def test_too_long_is_invalid_media() -> None:
    settings = replace(SETTINGS, max_duration_s=3600.0)
    with pytest.raises(InvalidMedia) as caught:
        plan_video(media(duration_s=5400.0), settings)
    assert caught.value.detail == "the video is 1:30:00 long; the limit is 1:00:00"


def test_too_large_is_invalid_media() -> None:
    settings = replace(SETTINGS, max_height_px=2160)
    with pytest.raises(InvalidMedia) as caught:
        plan_video(media(width=4096, height=2160), settings)
    assert caught.value.detail == "the video is 4096x2160; the largest accepted dimension is 2160 px"


def test_too_small_is_invalid_media() -> None:
    with pytest.raises(InvalidMedia, match="the video is 8x8; the smallest accepted side is 16 px"):
        plan_video(media(width=8, height=8), SETTINGS)


def test_plan_id_is_stable_and_changes_with_what_shapes_the_output() -> None:
    first = plan_video(media(), SETTINGS)
    assert first.plan_id == plan_video(media(), PipelineSettings()).plan_id
    assert len(first.plan_id) == 12 and int(first.plan_id, 16) >= 0
    other_ladder = replace(SETTINGS, ladder=parse_ladder("360:800,720:2400"))
    assert plan_video(media(), other_ladder).plan_id != first.plan_id
    assert plan_video(media(), replace(SETTINGS, x264_preset="slow")).plan_id != first.plan_id
    assert plan_video(media(duration_s=61.0), SETTINGS).plan_id != first.plan_id
    # Fields that do not reach the output (file size, codec of the source) do not change it.
    assert plan_video(media(size_bytes=1, video_codec="hevc"), SETTINGS).plan_id == first.plan_id


def test_small_ladder_used_by_the_integration_tests() -> None:
    settings = PipelineSettings(ladder=parse_ladder("180:300,360:800"))
    assert sizes(media(width=640, height=360), settings) == [("180p", 320, 180, 300), ("360p", 640, 360, 800)]
