"""Exact argv of every ffmpeg/ffprobe command, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import plain_ffmpeg
from pipelines.video import argv as build
from pipelines.video import ffmpeg
from pipelines.video.plan import Chunk, Plan, Rendition

PREFIX = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats"]
SRC = Path("/w/src.mp4")
# Before every input that is an upload: the file protocol only, real container demuxers only.
ONE_FILE = [
    "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi,mpegts,mpeg,flv,mxf,asf,ogg",
]  # fmt: skip

R180 = Rendition("180p", 320, 180, 300, 375, 600)
R360 = Rendition("360p", 640, 360, 800, 1000, 1600)


def make_plan(**changes: object) -> Plan:
    fields: dict[str, object] = dict(
        plan_id="abc123def456",
        fps=25.0,
        segment_s=4.0,
        gop_frames=100,
        duration_s=6.0,
        renditions=(R180, R360),
        has_audio=True,
        audio_kbps=128,
        mp3_kbps=192,
        poster_at_s=0.6,
        x264_preset="veryfast",
        display_aspect="16/9",
    )
    fields.update(changes)
    return Plan(**fields)  # type: ignore[arg-type]


def test_probe_argv() -> None:
    assert build.probe_argv(SRC) == [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
        *ONE_FILE, "-i", "/w/src.mp4",
    ]  # fmt: skip


def test_output_probe_argv_reads_any_format_because_only_our_own_files_go_through_it() -> None:
    assert build.output_probe_argv(Path("/w/audio.mp3")) == [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "/w/audio.mp3",
    ]  # fmt: skip


def test_first_frames_argv_decodes_the_first_seconds_of_the_first_video_stream() -> None:
    assert build.first_frames_argv(SRC) == [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+3",
        "-show_entries", "frame=pts_time", "-print_format", "json", *ONE_FILE, "-i", "/w/src.mp4",
    ]  # fmt: skip


def test_packets_argv() -> None:
    assert build.packets_argv(SRC) == [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
        "-print_format", "json", "/w/src.mp4",
    ]  # fmt: skip


def test_plain_rendition_argv_is_cfr_upright_with_keyframes_only_on_the_segment_grid() -> None:
    argv = plain_ffmpeg.rendition_argv(SRC, Path("/w/180p.mp4"), make_plan(), R180)
    assert argv == [
        *PREFIX, "-xerror", *ONE_FILE, "-i", "/w/src.mp4",
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vf", "fps=25,scale=320:180,setdar=dar=16/9:max=100000,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-b:v", "300k", "-maxrate", "375k", "-bufsize", "600k",
        "-g", "100", "-keyint_min", "100", "-sc_threshold", "0",
        "-force_key_frames", "expr:gte(t,n_forced*4)",
        "-f", "mp4", "/w/180p.mp4",
    ]  # fmt: skip


def test_plain_rendition_argv_keeps_ntsc_rates_exact() -> None:
    plan = make_plan(fps=30000 / 1001, gop_frames=120, segment_s=120 / (30000 / 1001))
    argv = plain_ffmpeg.rendition_argv(SRC, Path("/w/360p.mp4"), plan, R360)
    assert (
        argv[argv.index("-vf") + 1]
        == "fps=30000/1001,scale=640:360,setdar=dar=16/9:max=100000,format=yuv420p"
    )
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*4.004)"
    assert argv[argv.index("-g") + 1] == "120"


def test_encode_aac_argv() -> None:
    assert build.encode_aac_argv(SRC, Path("/w/audio.m4a"), make_plan()) == [
        *PREFIX, "-xerror", *ONE_FILE, "-i", "/w/src.mp4",
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000", "-f", "mp4", "/w/audio.m4a",
    ]  # fmt: skip


def test_encode_mp3_argv() -> None:
    assert build.encode_mp3_argv(SRC, Path("/w/audio.mp3"), make_plan()) == [
        *PREFIX, "-xerror", *ONE_FILE, "-i", "/w/src.mp4",
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
        "-c:a", "libmp3lame", "-b:a", "192k", "-ac", "2", "-ar", "48000", "-f", "mp3", "/w/audio.mp3",
    ]  # fmt: skip


def test_poster_argv_seeks_before_input_and_scales_to_the_top_rendition() -> None:
    assert build.poster_argv(SRC, Path("/w/poster.jpg"), make_plan()) == [
        *PREFIX, "-ss", "0.6", *ONE_FILE, "-i", "/w/src.mp4",
        "-map", "0:v:0", "-frames:v", "1", "-vf", "scale=640:360,setsar=1",
        "-q:v", "3", "-f", "image2", "-update", "1", "/w/poster.jpg",
    ]  # fmt: skip


DASH_TAIL = [
    "-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", "4",
    "-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1",
]  # fmt: skip
NAMES = [
    "-init_seg_name", "$RepresentationID$/init.mp4",
    "-media_seg_name", "$RepresentationID$/seg-$Number%05d$.m4s",
]  # fmt: skip


def test_package_argv_with_audio_puts_audio_in_its_own_adaptation_set() -> None:
    argv = build.package_argv(
        [Path("/w/180p.mp4"), Path("/w/360p.mp4")],
        Path("/w/audio.m4a"),
        Path("/w/pkg/manifest.mpd"),
        make_plan(),
    )
    assert argv == [
        *PREFIX, "-i", "/w/180p.mp4", "-i", "/w/360p.mp4", "-i", "/w/audio.m4a",
        "-map", "0:v:0", "-map", "1:v:0", "-map", "2:a:0", "-c", "copy",
        *DASH_TAIL, "-adaptation_sets", "id=0,streams=v id=1,streams=a", *NAMES, "/w/pkg/manifest.mpd",
    ]  # fmt: skip


def test_package_argv_without_audio() -> None:
    argv = build.package_argv([Path("/w/180p.mp4")], None, Path("/w/pkg/manifest.mpd"), make_plan())
    assert argv == [
        *PREFIX, "-i", "/w/180p.mp4", "-map", "0:v:0", "-c", "copy",
        *DASH_TAIL, "-adaptation_sets", "id=0,streams=v", *NAMES, "/w/pkg/manifest.mpd",
    ]  # fmt: skip


def test_package_argv_never_rounds_the_segment_length_up() -> None:
    plan = make_plan(fps=30.0, gop_frames=10, segment_s=1 / 3)
    argv = build.package_argv([Path("/w/a.mp4")], None, Path("/w/m.mpd"), plan)
    assert argv[argv.index("-seg_duration") + 1] == "0.333333"


def test_demo_clip_argv_with_audio_and_subtitles() -> None:
    argv = build.demo_clip_argv(
        Path("/w/clip.mp4"), seconds=6, width=640, height=360, fps=25, audio=True,
        subtitles_srt=Path("/w/cues.srt"), vfr=False,
    )  # fmt: skip
    assert argv == [
        *PREFIX, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-i", "/w/cues.srt",
        "-map", "0:v", "-map", "1:a", "-map", "2:s",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k",
        "-c:s", "mov_text", "-metadata:s:s:0", "language=eng",
        "-t", "6", "-f", "mp4", "/w/clip.mp4",
    ]  # fmt: skip


def test_demo_clip_argv_video_only_vfr() -> None:
    argv = build.demo_clip_argv(
        Path("/w/clip.mp4"), seconds=3, width=320, height=180, fps=25, audio=False,
        subtitles_srt=None, vfr=True,
    )  # fmt: skip
    assert argv == [
        *PREFIX, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-map", "0:v",
        "-vf", "select='lt(t,1)+not(mod(n,3))'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-t", "3", "-f", "mp4", "/w/clip.mp4",
    ]  # fmt: skip


def test_set_rotation_argv_stream_copies_with_the_tag() -> None:
    assert build.set_rotation_argv(Path("/w/a.mp4"), Path("/w/b.mp4"), 90) == [
        *PREFIX, "-i", "/w/a.mp4", "-map", "0", "-c", "copy",
        "-metadata:s:v:0", "rotate=90", "-f", "mp4", "/w/b.mp4",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(4.0, "4"), (0.6, "0.6"), (120 / (30000 / 1001), "4.004"), (1 / 3, "0.333333"), (2.5, "2.5")],
)
def test_seconds_arg(seconds: float, expected: str) -> None:
    assert build.seconds_arg(seconds) == expected


@pytest.mark.parametrize(
    ("fps", "expected"),
    [(25.0, "25"), (30000 / 1001, "30000/1001"), (24000 / 1001, "24000/1001"), (12.5, "25/2")],
)
def test_fps_arg(fps: float, expected: str) -> None:
    assert build.fps_arg(fps) == expected


def test_ffmpeg_error_detail_is_the_last_meaningful_stderr_line() -> None:
    stderr = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d1c2] moov atom not found\nConversion failed!\n"
    error = ffmpeg.FFmpegError(["ffmpeg", "-i", "x.mp4"], 1, stderr)
    assert error.detail == "ffmpeg failed (exit 1): moov atom not found"
    assert error.argv == ["ffmpeg", "-i", "x.mp4"]
    assert error.returncode == 1
    assert error.stderr_tail == stderr


def test_ffmpeg_error_without_stderr_says_so() -> None:
    assert (
        ffmpeg.FFmpegError(["/usr/bin/ffprobe"], 234, "").detail
        == "ffprobe failed (exit 234): no error message"
    )


def test_ffmpeg_error_survives_pickling_as_ray_sends_it() -> None:
    import pickle

    error = ffmpeg.FFmpegError(["ffmpeg", "-i", "x.mp4"], 1, "[mov,mp4 @ 0x5]\nmoov atom not found\n")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, ffmpeg.FFmpegError)
    assert copy.detail == error.detail == "ffmpeg failed (exit 1): moov atom not found"
    assert copy.argv == ["ffmpeg", "-i", "x.mp4"] and copy.returncode == 1


def test_single_command_ladder_argv_matches_the_per_rendition_settings() -> None:
    plan = make_plan()
    argv = plain_ffmpeg.single_command_ladder_argv(Path("in.mp4"), Path("out"), plan)
    assert argv[: len(PREFIX) + len(ONE_FILE) + 2] == [*PREFIX, *ONE_FILE, "-i", "in.mp4"]
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph == (
        "[0:v]fps=25,split=2[s0][s1];"
        "[s0]scale=320:180,setdar=dar=16/9:max=100000,format=yuv420p[v0];"
        "[s1]scale=640:360,setdar=dar=16/9:max=100000,format=yuv420p[v1]"
    )
    # Each rendition's x264 options are the chunk encode's own (one builder), per output stream.
    for i, rendition in enumerate(plan.renditions):
        at = argv.index(f"[v{i}]") + 1
        options = build.x264_args(plan, rendition, stream=f":v:{i}")
        assert argv[at : at + len(options)] == options
    assert argv[argv.index("-b:v:1") + 1] == "800k" and argv[argv.index("-maxrate:v:0") + 1] == "375k"
    assert argv[argv.index("-force_key_frames:v:0") + 1] == "expr:gte(t,n_forced*4)"
    assert argv[-3:] == ["-f", "mp3", "out/audio.mp3"]
    assert "out/manifest.mpd" in argv


def test_every_builder_that_reads_an_upload_reads_it_as_one_file_of_a_real_container() -> None:
    plan = make_plan()
    reading_the_upload = [
        build.probe_argv(SRC),
        build.first_frames_argv(SRC),
        build.encode_chunk_argv(SRC, [(R180, Path("/w/o.mp4"))], plan, Chunk(0, 0, 100), 1),
        build.encode_aac_argv(SRC, Path("/w/o.m4a"), plan),
        build.encode_mp3_argv(SRC, Path("/w/o.mp3"), plan),
        build.poster_argv(SRC, Path("/w/o.jpg"), plan),
        plain_ffmpeg.rendition_argv(SRC, Path("/w/o.mp4"), plan, R180),
        plain_ffmpeg.single_command_ladder_argv(SRC, Path("/w/out"), plan),
    ]
    for command in reading_the_upload:
        at = command.index("/w/src.mp4")
        assert command[at - 5 : at] == [*ONE_FILE, "-i"], command[0]
        assert command.count("-i") == 1, command
    for demuxer in ("hls", "concat", "image2", "sdp", "dash", "tty", "rtp", "webm_dash_manifest"):
        assert demuxer not in build.SOURCE_DEMUXERS
