"""The media steps on real ffmpeg: a 6 s clip through probe, plan, encode, audio, poster, package."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.errors import InvalidMedia
from cluster.settings import PipelineSettings, parse_ladder
from pipelines.demo import make_clip
from pipelines.video import argv as build
from pipelines.video import encode, ffmpeg, package
from pipelines.video.media_info import MediaInfo
from pipelines.video.plan import Plan, plan_video, segment_starts
from pipelines.video.probe import probe
from tests.encoding import encode_whole

SETTINGS = PipelineSettings(ladder=parse_ladder("180:300,360:800"))
MPD = "{urn:mpeg:dash:schema:mpd:2011}"


@dataclass
class Run:
    work: Path
    source: Path
    info: MediaInfo
    plan: Plan
    packaged: package.Packaged
    out_dir: Path
    mp3: Path
    poster: Path
    audio: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    work = tmp_path_factory.mktemp("media")
    source = make_clip(work / "source.mp4", seconds=6, width=640, height=360, fps=25)
    info = probe(source)
    plan = plan_video(info, SETTINGS)
    encoded = []
    (work / "encoded").mkdir()
    for rendition in plan.renditions:
        out = work / "encoded" / f"{rendition.name}.mp4"
        encoded.append((rendition, encode_whole(source, out, plan, rendition)))
    audio = encode.encode_aac(source, work / "encoded" / "audio.m4a", plan)
    mp3 = encode.encode_mp3(source, work / "audio.mp3", plan)
    poster = encode.make_poster(source, work / "poster.jpg", plan)
    out_dir = work / "package"
    packaged = package.package(encoded, audio, out_dir, plan)
    return Run(work, source, info, plan, packaged, out_dir, mp3, poster, audio)


def concat(parts: list[Path], out: Path) -> Path:
    out.write_bytes(b"".join(part.read_bytes() for part in parts))
    return out


def keyframe_times(path: Path) -> list[float]:
    packets = ffmpeg.run_json(build.packets_argv(path))["packets"]
    return [round(float(p["pts_time"]), 3) for p in packets if "K" in p["flags"]]


def video_stream(path: Path) -> dict:
    streams = ffmpeg.run_json(build.output_probe_argv(path))["streams"]
    return next(s for s in streams if s["codec_type"] == "video")


def test_probe_describes_the_demo_clip(run: Run) -> None:
    info = run.info
    assert (info.width, info.height, info.rotation, info.fps, info.variable_fps) == (640, 360, 0, 25.0, False)
    assert info.duration_s == pytest.approx(6.0, abs=0.05)
    assert (info.video_codec, info.has_audio, info.audio_codec) == ("h264", True, "aac")
    assert info.subtitle_tracks == ((2, "mov_text", "eng"),)
    assert info.size_bytes == run.source.stat().st_size


def test_package_layout_has_named_rendition_dirs_and_manifests(run: Run) -> None:
    packaged = run.packaged
    assert packaged.segment_files == (
        "180p/init.mp4", "180p/seg-00001.m4s", "180p/seg-00002.m4s",
        "360p/init.mp4", "360p/seg-00001.m4s", "360p/seg-00002.m4s",
        "audio/init.mp4", "audio/seg-00001.m4s", "audio/seg-00002.m4s",
    )  # fmt: skip
    assert packaged.manifest_files == ("180p.m3u8", "360p.m3u8", "audio.m3u8", "master.m3u8", "manifest.mpd")
    on_disk = sorted(str(p.relative_to(run.out_dir)) for p in run.out_dir.rglob("*") if p.is_file())
    assert on_disk == sorted(packaged.files)  # nothing else: no staging dir, no .tmp files


def test_mpd_lists_both_renditions_and_audio_and_every_reference_exists(run: Run) -> None:
    root = ET.parse(run.out_dir / "manifest.mpd").getroot()
    representations = root.findall(f".//{MPD}Representation")
    assert [(r.get("width"), r.get("height"), r.get("mimeType")) for r in representations] == [
        ("320", "180", "video/mp4"),
        ("640", "360", "video/mp4"),
        (None, None, "audio/mp4"),
    ]
    assert [a.get("contentType") for a in root.findall(f".//{MPD}AdaptationSet")] == ["video", "audio"]
    for representation in representations:
        template = representation.find(f"{MPD}SegmentTemplate")
        assert template is not None
        assert (run.out_dir / template.get("initialization", "")).is_file()
        count = len(template.findall(f"{MPD}SegmentTimeline/{MPD}S"))
        for number in range(1, count + 1):
            segment = template.get("media", "").replace("$Number%05d$", f"{number:05d}")
            assert (run.out_dir / segment).is_file(), segment


def test_hls_master_lists_both_renditions_and_every_playlist_entry_exists(run: Run) -> None:
    master = (run.out_dir / "master.m3u8").read_text()
    assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["320x180", "640x360"]
    assert 'TYPE=AUDIO,GROUP-ID="group_A1"' in master and 'URI="audio.m3u8"' in master
    assert [line for line in master.splitlines() if line.endswith(".m3u8")] == ["180p.m3u8", "360p.m3u8"]
    for name in ("180p", "360p", "audio"):
        playlist = (run.out_dir / f"{name}.m3u8").read_text()
        assert f'#EXT-X-MAP:URI="{name}/init.mp4"' in playlist
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and "#EXT-X-ENDLIST" in playlist
        assert "PROGRAM-DATE-TIME" not in playlist
        uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
        assert uris == [f"{name}/seg-00001.m4s", f"{name}/seg-00002.m4s"]


def test_every_segment_starts_on_a_keyframe_at_the_same_time_in_every_rendition(
    run: Run, tmp_path: Path
) -> None:
    expected = segment_starts(run.plan)
    assert expected == [0.0, 4.0]
    for rendition in run.plan.renditions:
        folder = run.out_dir / rendition.name
        segments = sorted(folder.glob("seg-*.m4s"))
        starts = []
        for segment in segments:
            alone = concat([folder / "init.mp4", segment], tmp_path / f"{rendition.name}-{segment.stem}.mp4")
            packets = ffmpeg.run_json(build.packets_argv(alone))["packets"]
            first = min(packets, key=lambda p: float(p["pts_time"]))
            assert "K" in first["flags"], f"{rendition.name}/{segment.name} does not start on a keyframe"
            starts.append(round(float(first["pts_time"]), 3))
        assert starts == expected, rendition.name
        # And no keyframes off the grid (no scene-cut keyframes) anywhere in the rendition.
        whole = concat([folder / "init.mp4", *segments], tmp_path / f"{rendition.name}.mp4")
        assert keyframe_times(whole) == expected


def test_packaged_duration_is_the_source_duration_within_a_frame(run: Run, tmp_path: Path) -> None:
    frame = 1 / run.plan.fps
    assert abs(run.packaged.duration_s - run.info.duration_s) <= frame
    folder = run.out_dir / "360p"
    whole = concat([folder / "init.mp4", *sorted(folder.glob("seg-*.m4s"))], tmp_path / "360p.mp4")
    stream = video_stream(whole)
    assert abs(float(stream["duration"]) - run.info.duration_s) <= frame
    assert (stream["width"], stream["height"], stream["avg_frame_rate"]) == (640, 360, "25/1")


def test_measured_bitrates_are_near_the_targets(run: Run) -> None:
    for packaged, rendition in zip(run.packaged.renditions, run.plan.renditions, strict=True):
        assert (packaged.name, packaged.width, packaged.height) == (
            rendition.name,
            rendition.width,
            rendition.height,
        )
        files = list((run.out_dir / rendition.name).iterdir())
        assert packaged.bytes == sum(f.stat().st_size for f in files)
        assert packaged.bitrate_bps == round(packaged.bytes * 8 / run.packaged.duration_s)
        assert 0.5 < packaged.bitrate_bps / (rendition.video_kbps * 1000) < 1.5
    assert run.packaged.audio_bytes == sum(f.stat().st_size for f in (run.out_dir / "audio").iterdir())
    assert run.packaged.bitrates == {r.name: r.bitrate_bps for r in run.packaged.renditions}
    assert run.packaged.bytes_by_rendition == {r.name: r.bytes for r in run.packaged.renditions}


def test_mp3_lasts_as_long_as_the_source(run: Run) -> None:
    data = ffmpeg.run_json(build.output_probe_argv(run.mp3))
    assert data["format"]["format_name"] == "mp3"
    assert [s["codec_name"] for s in data["streams"]] == ["mp3"]
    assert abs(float(data["format"]["duration"]) - run.info.duration_s) < 0.1


def test_poster_is_a_jpeg_the_size_of_the_top_rendition(run: Run) -> None:
    assert run.poster.read_bytes()[:3] == b"\xff\xd8\xff"
    stream = video_stream(run.poster)
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 640, 360)
    assert not list(run.work.rglob(".*.partial"))


def test_rotated_phone_clip_packages_upright(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "phone.mp4", seconds=2, width=320, height=180, rotate=90, subtitles=False)
    info = probe(source)
    assert (info.width, info.height, info.rotation) == (180, 320, 90)
    plan = plan_video(info, SETTINGS)
    assert [(r.name, r.width, r.height) for r in plan.renditions] == [("180p", 102, 180)]
    rendition = plan.renditions[0]
    encoded = encode_whole(source, tmp_path / "180p.mp4", plan, rendition)
    packaged = package.package([(rendition, encoded)], None, tmp_path / "package", plan)
    folder = tmp_path / "package" / "180p"
    whole = concat([folder / "init.mp4", *sorted(folder.glob("seg-*.m4s"))], tmp_path / "whole.mp4")
    stream = video_stream(whole)
    # Upright pixels: portrait coded size and no display matrix left for players to honour.
    assert (stream["width"], stream["height"]) == (102, 180)
    assert not stream.get("side_data_list") and "rotate" not in stream.get("tags", {})
    assert packaged.renditions[0].width < packaged.renditions[0].height


def test_variable_frame_rate_clip_comes_out_constant(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "vfr.mp4", seconds=3, width=320, height=180, vfr=True, subtitles=False)
    info = probe(source)
    assert info.variable_fps and info.base_fps == 25.0 and info.fps < 20
    plan = plan_video(info, SETTINGS)
    assert plan.fps == 25.0
    encoded = encode_whole(source, tmp_path / "180p.mp4", plan, plan.renditions[0])
    stream = video_stream(encoded)
    assert (stream["r_frame_rate"], stream["avg_frame_rate"]) == ("25/1", "25/1")
    # One frame every 1/25 s from start to end of the source's video (2.92 s: its last frame
    # is at 2.88), with the slow stretch filled by repeated frames.
    times = sorted(float(p["pts_time"]) for p in ffmpeg.run_json(build.packets_argv(encoded))["packets"])
    assert len(times) == round(float(video_stream(source)["duration"]) * 25) == 73
    assert {round(b - a, 6) for a, b in zip(times, times[1:], strict=False)} == {0.04}


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("bad") / "small.mp4", seconds=2, width=320, height=180, subtitles=False
    )


def reason(path: Path) -> str:
    with pytest.raises(InvalidMedia) as caught:
        probe(path)
    assert caught.value.status_code == 422
    return caught.value.detail


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert reason(tmp_path / "empty.mp4") == "the file is empty"


def test_text_named_mp4_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("these are my holiday notes, not a video\n" * 20)
    assert reason(tmp_path / "notes.mp4") == "the file is not a video or audio file that can be read"


def test_truncated_mp4_is_invalid(small_clip: Path, tmp_path: Path) -> None:
    data = small_clip.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # ffmpeg writes the index last: cutting loses it
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert (
        reason(tmp_path / "cut.mp4")
        == "the MP4 file is truncated or incomplete (its index, the moov atom, is missing)"
    )


def test_audio_only_file_is_invalid(run: Run, tmp_path: Path) -> None:
    shutil.copy(run.audio, tmp_path / "song.mp4")
    assert reason(tmp_path / "song.mp4") == "the file has no video stream (audio-only?)"


def test_unknown_video_codec_is_invalid(small_clip: Path, tmp_path: Path) -> None:
    data = bytearray(small_clip.read_bytes())
    entry = data.index(b"avc1", data.index(b"stsd"))  # the sample entry naming the codec
    data[entry : entry + 4] = b"zzzz"
    (tmp_path / "odd.mp4").write_bytes(bytes(data))
    assert reason(tmp_path / "odd.mp4") == "the video codec (zzzz) is not supported"


def test_run_raises_ffmpeg_error_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    plan = plan_video(probe(make_clip(tmp_path / "ok.mp4", seconds=1, width=320, height=180)), SETTINGS)
    with pytest.raises(ffmpeg.FFmpegError) as caught:
        encode_whole(tmp_path / "notes.mp4", tmp_path / "out.mp4", plan, plan.renditions[0])
    assert caught.value.returncode != 0
    assert caught.value.detail.startswith("ffmpeg failed (exit ")
    assert "Invalid data found when processing input" in caught.value.detail
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*partial"))


def test_renditions_whose_even_sizes_differ_in_aspect_share_one_adaptation_set(tmp_path: Path) -> None:
    # 854x480 is not exactly 16:9 (853.3 is not a whole pixel); the DASH muxer refuses to put
    # it beside 640x360 unless both carry the source's display aspect ratio.
    source = make_clip(tmp_path / "480.mp4", seconds=2, width=854, height=480, subtitles=False)
    plan = plan_video(probe(source), PipelineSettings(ladder=parse_ladder("360:800,480:1200")))
    assert [(r.width, r.height) for r in plan.renditions] == [(640, 360), (854, 480)]
    assert plan.display_aspect == "427/240"
    encoded = [(r, encode_whole(source, tmp_path / f"{r.name}.mp4", plan, r)) for r in plan.renditions]
    package.package(encoded, None, tmp_path / "package", plan)
    mpd = ET.parse(tmp_path / "package" / "manifest.mpd").getroot()
    sets = mpd.findall(f".//{MPD}AdaptationSet")
    assert len(sets) == 1
    assert sorted(int(r.get("height", "0")) for r in sets[0].findall(f"{MPD}Representation")) == [360, 480]
    for rendition, path in encoded:
        stream = video_stream(path)
        assert stream["display_aspect_ratio"] == "427:240", rendition.name


def test_sixteen_by_nine_source_gets_exact_sixteen_by_nine_renditions(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "720.mp4", seconds=1, width=1280, height=720, audio=False, subtitles=False)
    plan = plan_video(probe(source), PipelineSettings(ladder=parse_ladder("360:800,480:1200,720:2400")))
    assert plan.display_aspect == "16/9"
    r480 = plan.rendition("480p")
    stream = video_stream(encode_whole(source, tmp_path / "480p.mp4", plan, r480))
    assert (stream["width"], stream["height"], stream["display_aspect_ratio"]) == (854, 480, "16:9")
