"""Chunk planning, the job's task specs, the key layout and the chunk commands: pure, no I/O."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cluster import layout
from cluster.errors import BadRequest
from cluster.settings import PipelineSettings, load_settings
from pipelines.graph import job_specs
from pipelines.job import failed_part
from pipelines.video import argv as build
from pipelines.video.plan import Chunk, chunk_frames_for, plan_chunks, plan_video
from tests.unit.test_ffmpeg_argv import ONE_FILE, PREFIX, R180, R360, make_plan
from tests.unit.test_plan import media

SETTINGS = PipelineSettings()  # 4 s segments, 30 fps: 120 frames a segment


def test_chunks_cover_every_frame_once_on_the_keyframe_grid() -> None:
    chunks = plan_chunks(total_frames=1000, chunk_frames=240)
    assert [(c.start_frame, c.end_frame) for c in chunks] == [
        (0, 240), (240, 480), (480, 720), (720, 960), (960, 1000),
    ]  # fmt: skip
    assert [c.name for c in chunks] == ["00000", "00001", "00002", "00003", "00004"]
    assert chunks[-1].frames == 40


def test_chunk_length_keeps_every_cpu_busy_but_never_goes_under_a_segment() -> None:
    ten_minutes = 600 * 30  # 150 segments of 120 frames
    assert chunk_frames_for(ten_minutes, 120, 30.0, cluster_cpus=2) == 25 * 120  # 6 chunks, 3 full waves
    # 3 a CPU would be 38 chunks of 4 segments: 3 waves, the last one 6/16 full. 75 of 2
    # segments make 5 waves of which only the last misses one chunk.
    assert chunk_frames_for(ten_minutes, 120, 30.0, cluster_cpus=16) == 2 * 120
    assert chunk_frames_for(ten_minutes, 120, 30.0, cluster_cpus=64) == 120  # one segment each
    assert chunk_frames_for(5 * 30, 120, 30.0, cluster_cpus=8) == 120


def test_a_pinned_chunk_length_is_rounded_to_whole_segments() -> None:
    assert chunk_frames_for(18000, 120, 30.0, cluster_cpus=64, pinned_s=10.0) == 2 * 120
    assert chunk_frames_for(18000, 120, 30.0, cluster_cpus=64, pinned_s=1.0) == 120


def test_plan_carries_its_chunks_and_they_change_the_plan_id() -> None:
    two = plan_video(media(duration_s=60.0), SETTINGS, cluster_cpus=2)
    eight = plan_video(media(duration_s=60.0), SETTINGS, cluster_cpus=8)
    assert two.chunk_frames == 2 * 120 and len(two.chunks) == 8
    assert eight.chunk_frames == 120 and len(eight.chunks) == 15
    assert sum(c.frames for c in two.chunks) == two.total_frames == 1800
    assert two.plan_id != eight.plan_id
    # A resumed job keeps the chunking it started with, whatever the cluster's size now.
    kept = plan_video(media(duration_s=60.0), SETTINGS, cluster_cpus=8, chunk_frames=two.chunk_frames)
    assert kept == two
    pinned = plan_video(media(duration_s=60.0), replace(SETTINGS, chunk_s=8.0), cluster_cpus=8)
    assert pinned.chunk_frames == 240


def test_keys_live_in_one_layout() -> None:
    work = layout.work_prefix("v1", "p1")
    assert layout.source_key("v1") == "sources/v1/source"
    assert work == "work/v1/p1"
    assert Chunk(3, 360, 480).key(work, "720p") == "work/v1/p1/chunks/720p/00003.mp4"
    assert layout.media_key("v1", "720p/seg-00001.m4s") == "media/v1/720p/seg-00001.m4s"
    assert layout.video_prefixes("v1") == ("sources/v1", "work/v1", "media/v1")
    assert layout.playback_urls("http://h", "v1", has_audio=False) == {
        "manifest_url": "http://h/media/v1/manifest.mpd",
        "hls_url": "http://h/media/v1/master.m3u8",
        "mp3_url": None,
        "poster_url": "http://h/media/v1/poster.jpg",
        "storyboard_url": None,
    }


def test_split_strategy_is_one_named_task_per_chunk_writing_every_rendition() -> None:
    plan = plan_video(media(duration_s=20.0, width=854, height=480), replace(SETTINGS, chunk_s=8.0))
    specs = job_specs("v1", plan, strategy="split", threads=2)
    encodes = [s for s in specs if s.step == "encode"]
    assert [s.name for s in encodes] == ["encode:v1:00000", "encode:v1:00001", "encode:v1:00002"]
    work = f"work/v1/{plan.plan_id}"
    assert encodes[1].outputs == (f"{work}/chunks/360p/00001.mp4", f"{work}/chunks/480p/00001.mp4")
    assert encodes[1].inputs == ("sources/v1/source",)
    assert {s.num_cpus for s in encodes} == {2.0}
    assert [s.name for s in specs[len(encodes) :]] == [
        "audio:v1", "storyboard:v1", "mp3:v1", "poster:v1", "package:v1",
    ]  # fmt: skip


def test_per_rendition_strategy_is_one_task_per_chunk_and_rendition() -> None:
    plan = plan_video(media(duration_s=20.0, width=854, height=480), replace(SETTINGS, chunk_s=8.0))
    names = [s.name for s in job_specs("v1", plan, strategy="per-rendition") if s.step == "encode"]
    # The costliest first: the 8 s chunks' 480p, then their 360p, then the 4 s last chunk's.
    assert names == [
        "encode:v1:480p:00000", "encode:v1:480p:00001", "encode:v1:360p:00000",
        "encode:v1:360p:00001", "encode:v1:480p:00002", "encode:v1:360p:00002",
    ]  # fmt: skip


def test_chunks_of_a_part_full_last_wave_are_encoded_per_rendition() -> None:
    # 5 chunks on 2 CPUs: the fifth would run alone with a CPU idle; its renditions share both.
    plan = plan_video(media(duration_s=20.0, width=854, height=480), replace(SETTINGS, chunk_s=4.0))
    specs = job_specs("v1", plan, strategy="split", slots=2)
    # The longest first, whatever their step, so the short ones fill the last wave.
    assert [s.name for s in specs] == [
        "encode:v1:00000", "encode:v1:00001", "encode:v1:00002", "encode:v1:00003",
        "encode:v1:480p:00004", "audio:v1", "encode:v1:360p:00004", "storyboard:v1", "mp3:v1",
        "poster:v1", "package:v1",
    ]  # fmt: skip
    encodes = [s for s in specs if s.step == "encode"]
    every = sorted(key for s in encodes for key in s.outputs)
    assert every == sorted(
        c.key(f"work/v1/{plan.plan_id}", r.name) for c in plan.chunks for r in plan.renditions
    )
    # A full last wave (4 chunks on 2 CPUs) keeps one task per chunk.
    even = plan_video(media(duration_s=16.0, width=854, height=480), replace(SETTINGS, chunk_s=4.0))
    assert len([s for s in job_specs("v1", even, slots=2) if s.step == "encode"]) == 4


def test_package_depends_on_every_other_spec_but_the_storyboard_through_its_inputs() -> None:
    plan = plan_video(media(duration_s=20.0, width=854, height=480), replace(SETTINGS, chunk_s=8.0))
    specs = job_specs("v1", plan)
    *others, package = specs
    # The storyboard publishes its own files; packaging reads none of them, so it does not wait.
    made = [key for spec in others if spec.step != "storyboard" for key in spec.outputs]
    assert list(package.inputs) == made and len(set(made)) == len(made)
    assert package.output == "media/v1/manifest.mpd"
    # The others read only the source: they all run at once.
    assert all(spec.inputs == ("sources/v1/source",) for spec in others)


def test_errors_name_the_step_the_rendition_and_the_chunk() -> None:
    plan = plan_video(media(duration_s=20.0, width=1280, height=720), replace(SETTINGS, chunk_s=8.0))
    per_rendition = {s.name: s for s in job_specs("v1", plan, strategy="per-rendition")}
    assert (
        failed_part(per_rendition["encode:v1:720p:00001"]).describe()
        == "encoding chunk 1 of the 720p rendition"
    )
    split = job_specs("v1", plan, strategy="split")
    assert failed_part(split[0]).describe() == "encoding chunk 0 of every rendition"
    assert failed_part(split[-1]).describe() == "packaging and publishing the stream"


def test_encode_chunk_argv_seeks_before_the_chunk_and_keeps_exactly_its_frames() -> None:
    plan = make_plan()
    chunk = Chunk(index=2, start_frame=200, end_frame=300)
    argv = build.encode_chunk_argv(
        Path("/w/src.mp4"), [(R180, Path("/w/a.mp4")), (R360, Path("/w/b.mp4"))], plan, chunk, threads=1
    )
    x264 = [
        "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    grid = [
        "-g",
        "100",
        "-keyint_min",
        "100",
        "-sc_threshold",
        "0",
        "-force_key_frames",
        "expr:gte(t,n_forced*4)",
    ]
    assert argv == [
        *PREFIX, "-xerror", "-threads", "1", "-ss", "7", *ONE_FILE, "-i", "/w/src.mp4",
        "-filter_threads", "1",
        "-filter_complex",
        "[0:v:0]fps=25:start_time=0,trim=start_frame=25,setpts=PTS-STARTPTS,split=2[s0][s1]"
        ";[s0]scale=320:180,setdar=dar=16/9:max=100000,format=yuv420p[v0]"
        ";[s1]scale=640:360,setdar=dar=16/9:max=100000,format=yuv420p[v1]",
        "-map", "[v0]", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", *x264,
        "-b:v", "300k", "-maxrate", "375k", "-bufsize", "600k", *grid,
        "-frames:v", "100", "-f", "mp4", "/w/a.mp4",
        "-map", "[v1]", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", *x264,
        "-b:v", "800k", "-maxrate", "1000k", "-bufsize", "1600k", *grid,
        "-frames:v", "100", "-f", "mp4", "/w/b.mp4",
    ]  # fmt: skip


def test_the_first_chunk_does_not_seek_and_reads_a_presigned_url_as_given() -> None:
    url = "https://bucket.s3.example/sources/v1/source?X-Amz-Signature=abc"
    argv = build.encode_chunk_argv(url, [(R180, Path("/w/a.mp4"))], make_plan(), Chunk(0, 0, 100), threads=2)
    # A presigned URL needs the network protocols; still only real container demuxers.
    assert argv[argv.index("-i") - 6 : argv.index("-i") + 2] == [
        "-threads", "2", "-protocol_whitelist", "https,http,tls,tcp",
        "-format_whitelist", ",".join(build.SOURCE_DEMUXERS), "-i", url,
    ]  # fmt: skip
    assert "trim=start_frame=0" in argv[argv.index("-filter_complex") + 1]


def test_stitch_lists_each_chunk_with_its_exact_duration() -> None:
    listing = build.concat_list([Path("/w/0.mp4"), Path("/w/1.mp4")], [100, 37], 25.0)
    assert listing == "ffconcat version 1.0\nfile '/w/0.mp4'\nduration 4\nfile '/w/1.mp4'\nduration 1.48\n"
    argv = build.package_argv(
        [Path("/w/180p.ffconcat"), Path("/w/360p.mp4")], None, Path("/w/m.mpd"), make_plan()
    )
    assert argv[len(PREFIX) : len(PREFIX) + 8] == [
        "-f", "concat", "-safe", "0", "-i", "/w/180p.ffconcat", "-i", "/w/360p.mp4",
    ]  # fmt: skip


def test_chunk_settings_are_read_and_checked(tmp_path: Path) -> None:
    env = {"VODRAY_DATA_DIR": str(tmp_path), "VODRAY_JWT_SECRET": "h7Qm2vXc9LpR4tYb8NwK3sJd6FgZ1aUe5iOo0yTq"}
    pipeline = load_settings(
        {**env, "VODRAY_CHUNK_S": "12", "VODRAY_CHUNK_STRATEGY": "per-rendition",
         "VODRAY_ENCODE_THREADS": "2", "VODRAY_JOB_ATTEMPTS": "5"}
    ).pipeline  # fmt: skip
    assert (pipeline.chunk_s, pipeline.chunk_strategy, pipeline.encode_threads, pipeline.job_attempts) == (
        12.0, "per-rendition", 2, 5,
    )  # fmt: skip
    assert load_settings(env).pipeline.chunk_strategy == "split"
    for name, raw in [
        ("CHUNK_STRATEGY", "fast"),
        ("CHUNK_S", "-1"),
        ("ENCODE_THREADS", "0"),
        ("JOB_ATTEMPTS", "0"),
    ]:
        with pytest.raises(BadRequest, match=f"VODRAY_{name}"):
            load_settings({**env, f"VODRAY_{name}": raw})
