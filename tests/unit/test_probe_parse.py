"""parse_probe on hand-written ffprobe JSON: what a file is, or why it is not a video."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.errors import InvalidMedia
from pipelines.video.probe import parse_probe


def video_stream(**changes: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "index": 0,
        "codec_name": "h264",
        "codec_type": "video",
        "codec_tag_string": "avc1",
        "width": 1920,
        "height": 1080,
        "sample_aspect_ratio": "1:1",
        "pix_fmt": "yuv420p",
        "r_frame_rate": "30/1",
        "avg_frame_rate": "30/1",
        "duration": "12.000000",
        "disposition": {"default": 1, "attached_pic": 0},
        "tags": {"language": "und"},
    }
    stream.update(changes)
    return stream


AAC = {"index": 1, "codec_name": "aac", "codec_type": "audio", "channels": 2, "duration": "12.0"}


def probe_data(
    *streams: dict[str, Any], duration: str | None = "12.000000", fmt: str = "mov,mp4"
) -> dict[str, Any]:
    data: dict[str, Any] = {"streams": list(streams), "format": {"format_name": fmt}}
    if duration is not None:
        data["format"]["duration"] = duration
    return data


def test_plain_video_with_audio_and_subtitles() -> None:
    subs = {"index": 2, "codec_name": "mov_text", "codec_type": "subtitle", "tags": {"language": "eng"}}
    untagged = {"index": 3, "codec_name": "subrip", "codec_type": "subtitle"}
    info = parse_probe(probe_data(video_stream(), AAC, subs, untagged), size_bytes=1234)
    assert (info.width, info.height, info.rotation) == (1920, 1080, 0)
    assert (info.fps, info.variable_fps, info.duration_s) == (30.0, False, 12.0)
    assert (info.video_codec, info.pix_fmt, info.format_name, info.size_bytes) == (
        "h264",
        "yuv420p",
        "mov,mp4",
        1234,
    )
    assert (info.has_audio, info.audio_codec, info.audio_channels) == (True, "aac", 2)
    assert info.subtitle_tracks == ((2, "mov_text", "eng"), (3, "subrip", "und"))


def test_phone_video_rotated_by_display_matrix_has_portrait_display_size() -> None:
    side_data = [{"side_data_type": "Display Matrix", "rotation": -90}]
    info = parse_probe(probe_data(video_stream(side_data_list=side_data), AAC), size_bytes=1)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 270)


def test_old_ffprobe_rotate_tag_is_clockwise() -> None:
    info = parse_probe(probe_data(video_stream(tags={"rotate": "90"})), size_bytes=1)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 270)


def test_upside_down_video_keeps_its_size() -> None:
    side_data = [{"side_data_type": "Display Matrix", "rotation": 180}]
    info = parse_probe(probe_data(video_stream(side_data_list=side_data)), size_bytes=1)
    assert (info.width, info.height, info.rotation) == (1920, 1080, 180)


def test_anamorphic_video_reports_display_width() -> None:
    info = parse_probe(
        probe_data(video_stream(width=720, height=576, sample_aspect_ratio="64:45")), size_bytes=1
    )
    assert (info.width, info.height) == (1024, 576)


def test_variable_frame_rate_keeps_average_and_base_rate() -> None:
    stream = video_stream(r_frame_rate="30/1", avg_frame_rate="2400/100")
    info = parse_probe(probe_data(stream), size_bytes=1)
    assert (info.fps, info.base_fps, info.variable_fps) == (24.0, 30.0, True)


def test_ntsc_rate_is_not_variable() -> None:
    stream = video_stream(r_frame_rate="30000/1001", avg_frame_rate="2997/100")
    info = parse_probe(probe_data(stream), size_bytes=1)
    assert info.variable_fps is False
    assert info.fps == pytest.approx(29.97)


def test_missing_average_rate_falls_back_to_base_rate() -> None:
    info = parse_probe(probe_data(video_stream(avg_frame_rate="0/0", r_frame_rate="25/1")), size_bytes=1)
    assert (info.fps, info.variable_fps) == (25.0, False)


def test_duration_falls_back_to_the_video_stream() -> None:
    info = parse_probe(probe_data(video_stream(duration="7.5"), duration=None), size_bytes=1)
    assert info.duration_s == 7.5


def test_video_without_audio() -> None:
    info = parse_probe(probe_data(video_stream()), size_bytes=1)
    assert (info.has_audio, info.audio_codec, info.audio_channels) == (False, None, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (probe_data(AAC), "the file has no video stream (audio-only?)"),
        (
            probe_data(AAC, video_stream(index=1, codec_name="mjpeg", disposition={"attached_pic": 1})),
            "the file has no video stream (audio-only?)",
        ),
        (probe_data(), "the file has no video stream"),
        (
            probe_data(video_stream(codec_name=None, codec_tag_string="zzzz")),
            "the video codec (zzzz) is not supported",
        ),
        (
            probe_data(video_stream(codec_name="mjpeg"), fmt="image2"),
            "the file is a still image, not a video",
        ),
        (
            probe_data(video_stream(codec_name="png"), fmt="png_pipe"),
            "the file is a still image, not a video",
        ),
        (probe_data(video_stream(duration=None), duration=None), "the video has no duration (zero length)"),
        (probe_data(video_stream(), duration="0.000000"), "the video has no duration (zero length)"),
        (
            probe_data(video_stream(), duration="99999999.0"),
            "the file claims an impossible duration (99999999 s); it is probably damaged",
        ),
        (probe_data(video_stream(width=0, height=0)), "the video stream has no picture size"),
        (
            probe_data(video_stream(avg_frame_rate="0/0", r_frame_rate="0/0")),
            "the video stream has no frame rate",
        ),
    ],
)
def test_not_a_playable_video_says_why(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidMedia) as caught:
        parse_probe(data, size_bytes=10)
    assert caught.value.detail == reason
    assert caught.value.status_code == 422
