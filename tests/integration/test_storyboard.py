"""Storyboards end to end on real ffmpeg, Ray, HTTP and storage: the job's ``storyboard:{id}``
task, its files on the media route, what they show, a failure that leaves the video playable,
and ``vodray backfill storyboards`` for videos made without one.

The clip's colours turn (testsrc2's moving pattern under a hue rotating 40 degrees a second),
so frames two seconds apart differ at a glance, and a tile can be matched to its moment.
The session shares its catalog with other test files, in any order: the backfill may meet their
ready videos too (some with no source at all), so these tests look at their own videos.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
import ray
from click.testing import CliRunner

from cluster import layout
from cluster.cli import main
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines import graph, tasks
from pipelines.storyboard_backfill import backfill_storyboards
from pipelines.video.storyboard import make_storyboard, seeks_cheaper
from pipelines.video.tiles import plan_storyboard, webvtt
from tests.integration.client import register_user, upload, wait_finished
from tests.unit.test_storyboard import parse_cues

CLIP_S = 9.5
"""Five tiles, the last one half as long as the others."""
SIZE = (320, 180)
TURN = "hue=h=40*t"
"""The hue turns 40 degrees a second: 80 between two tiles."""
SUMMARY = re.compile(r"storyboards: 0 video\(s\) made, (\d+) skipped \(already there\), \d+ failed")


@pytest.fixture(scope="module")
def turning_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9.5 s of 320x180 whose colours turn; x264 with B-frames and one keyframe (as a camera's)."""
    out = tmp_path_factory.mktemp("storyboard") / "turning.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate=25,{TURN}",
         "-t", str(CLIP_S), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def ready(api: httpx.Client, turning_clip: Path) -> SimpleNamespace:
    """The clip uploaded over HTTP (private) and processed by the real job."""
    user = register_user(api)
    answer = upload(api, user, turning_clip, title="turning")
    assert answer.status_code == 202, answer.text
    vid = answer.json()["id"]
    assert wait_finished(api, user, vid)["status"] == "ready"
    meta = api.get(f"/v1/videos/{vid}", headers=user.headers)
    assert meta.status_code == 200, meta.text
    return SimpleNamespace(user=user, id=vid, meta=meta.json())


def decode(args: list[str], width: int, height: int, data: bytes | None = None) -> np.ndarray:
    """One frame that ffmpeg reads with ``args``, as an RGB array of ``height`` x ``width``."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *args, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.float64)


def jpeg_pixels(data: bytes) -> np.ndarray:
    """A JPEG at its real size (what its header says, read by ffprobe)."""
    found = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "json", "-"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    stream = json.loads(found)["streams"][0]
    return decode(["-f", "image2pipe", "-i", "-"], stream["width"], stream["height"], data)


def frame_at(source: Path, seconds: float, width: int, height: int) -> np.ndarray:
    """The frame on screen at ``seconds``, extracted by ffmpeg and scaled to a tile's size."""
    return decode(["-ss", str(seconds), "-i", str(source), "-vf", f"scale={width}:{height}:flags=area"],
                  width, height)  # fmt: skip


def storyboard_files(api: httpx.Client, meta: dict[str, Any], user: SimpleNamespace) -> tuple[str, bytes]:
    """The WebVTT at ``storyboard_url`` and the sheet it names, both through the media route."""
    vtt = api.get(meta["storyboard_url"], headers=user.headers)
    assert vtt.status_code == 200, vtt.text
    assert vtt.headers["content-type"].startswith("text/vtt")
    sheet = api.get(meta["storyboard_url"].replace(".vtt", ".jpg"), headers=user.headers)
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"] == "image/jpeg"
    return vtt.text, sheet.content


def check_storyboard(vtt: str, sheet: bytes, duration_s: float) -> list[tuple[int, int, np.ndarray]]:
    """The VTT covers ``[0, duration)`` without gap or overlap and every tile lies inside the
    sheet's real size; returns ``(start_ms, end_ms, tile pixels)`` per cue."""
    cues = parse_cues(vtt)
    assert cues and cues[0][0] == 0 and cues[-1][1] == round(duration_s * 1000)
    for (_, end, _, _), (next_start, _, _, _) in zip(cues, cues[1:], strict=False):
        assert end == next_start  # cue i ends where cue i + 1 starts
    assert all(start < end for start, end, _, _ in cues)
    image = jpeg_pixels(sheet)
    tiles = []
    for start, end, name, (x, y, w, h) in cues:
        assert name == layout.STORYBOARD_IMAGE_NAME  # relative: a signed URL of the VTT carries over
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= image.shape[1] and y + h <= image.shape[0], (x, y, w, h, image.shape)
        tiles.append((start, end, image[y : y + h, x : x + w]))
    return tiles


def test_a_ready_video_lists_its_storyboard_and_the_media_route_serves_both_files(
    api: httpx.Client, base_url: str, ready: SimpleNamespace
) -> None:
    assert ready.meta["storyboard_url"] == f"{base_url}/media/{ready.id}/storyboard.vtt"
    vtt, sheet = storyboard_files(api, ready.meta, ready.user)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n")
    assert sheet[:2] == b"\xff\xd8"  # a JPEG
    ranged = api.get(ready.meta["storyboard_url"], headers={**ready.user.headers, "Range": "bytes=0-5"})
    assert ranged.status_code == 206 and ranged.text == "WEBVTT"
    # A private video's storyboard is as private as its stream.
    stranger = register_user(api)
    for name in (layout.STORYBOARD_VTT_NAME, layout.STORYBOARD_IMAGE_NAME):
        assert api.get(f"/media/{ready.id}/{name}", headers=stranger.headers).status_code == 404
        assert api.get(f"/media/{ready.id}/{name}").status_code == 404


def test_the_vtt_covers_the_whole_duration_and_each_tile_shows_the_frame_at_its_time(
    api: httpx.Client, ready: SimpleNamespace, turning_clip: Path
) -> None:
    # The stream's duration: 238 whole frames at 25 fps (9.5 s rounds to an even 238).
    assert ready.meta["duration_s"] == 9.52
    vtt, sheet = storyboard_files(api, ready.meta, ready.user)
    tiles = check_storyboard(vtt, sheet, ready.meta["duration_s"])
    assert [(start, end) for start, end, _ in tiles] == [(0, 2000), (2000, 4000), (4000, 6000), (6000, 8000),
                                                          (8000, 9520)]  # fmt: skip
    assert jpeg_pixels(sheet).shape == (90, 800, 3)
    for index, (start, _, tile) in enumerate(tiles):
        frame = frame_at(turning_clip, start / 1000, tile.shape[1], tile.shape[0])
        own = float(np.abs(frame - tile).mean())
        others = [float(np.abs(frame - other).mean()) for i, (_, _, other) in enumerate(tiles) if i != index]
        # Its own tile is close (JPEG, a reference frame at most a few frames earlier: 3.7 to
        # 8.2 here); every other moment's tile is far (57 or more): the colours have turned 80
        # degrees or more since. The frame from the middle of its span instead (fps's default
        # rounding) is 50 to 57 from it.
        assert own < 15 and min(others) > 3 * own, (index, own, others)


def test_a_storyboard_task_whose_files_exist_is_skipped(
    storage: Storage, ready: SimpleNamespace, settings: Settings
) -> None:
    keys = layout.storyboard_keys(ready.id)
    before = [(storage.read_bytes(key), Path(storage.path(key)).stat().st_mtime_ns) for key in keys]
    spec = graph.storyboard_spec(ready.id, plan_storyboard(ready.meta["duration_s"], Fraction(*SIZE)))
    result = tasks.make_storyboard(storage, None, spec)
    assert result[spec.output]["reused"] is True
    assert result[spec.output]["storyboard"]["tiles"] == 5
    assert [(storage.read_bytes(key), Path(storage.path(key)).stat().st_mtime_ns) for key in keys] == before


def test_seeking_to_each_tile_gives_the_tiles_of_the_one_pass(turning_clip: Path, tmp_path: Path) -> None:
    board = plan_storyboard(CLIP_S, Fraction(*SIZE))
    sheets = []
    for way, seek in (("pass", False), ("seeks", True)):
        sheet, vtt = make_storyboard(turning_clip, tmp_path / way, board, seek=seek)
        assert vtt.read_text() == webvtt(board, layout.STORYBOARD_IMAGE_NAME)
        sheets.append(jpeg_pixels(sheet.read_bytes()))
    assert sheets[0].shape == sheets[1].shape == (90, 800, 3)
    # A frame or two apart at most (the pass shows the last reference frame up to a tile's
    # moment, a seek the first from it): 6 here, where two moments a tile apart differ by 57+.
    assert float(np.abs(sheets[0] - sheets[1]).mean()) < 12
    # No tile or partial file is left behind.
    names = ["pass", "seeks", "storyboard.jpg", "storyboard.jpg", "storyboard.vtt", "storyboard.vtt"]
    assert sorted(path.name for path in tmp_path.rglob("*")) == names


@pytest.mark.parametrize(
    ("keyframes", "seeks"),
    [
        (["-g", "20"], True),  # every 10 s: far under one pass
        (["-g", "100000", "-sc_threshold", "0"], False),  # one keyframe: each seek would decode from 0
    ],
)
def test_a_long_title_seeks_per_tile_when_its_keyframes_make_it_cheaper(
    tmp_path: Path, keyframes: list[str], seeks: bool
) -> None:
    """1000 s at 2 frames a second (100 tiles, one every 10 s, each on a frame), the hue turning
    120 degrees a tile."""
    long = tmp_path / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=2,hue=h=12*t",
         "-t", "1000", "-c:v", "libx264", "-preset", "ultrafast", *keyframes, "-pix_fmt", "yuv420p",
         str(long)],
        check=True,
    )  # fmt: skip
    board = plan_storyboard(1000, Fraction(*SIZE))
    assert (board.tiles, board.columns, board.rows, board.interval_ms) == (100, 10, 10, 10000)
    assert seeks_cheaper(long, board) is seeks
    sheet, vtt = make_storyboard(long, tmp_path / "out", board)
    tiles = check_storyboard(vtt.read_text(), sheet.read_bytes(), 1000)
    assert jpeg_pixels(sheet.read_bytes()).shape == (900, 1600, 3)
    for index in (0, 1, 37, 98, 99):
        start, _, tile = tiles[index]
        frame = frame_at(long, start / 1000, tile.shape[1], tile.shape[0])
        own = float(np.abs(frame - tile).mean())
        near = [i for i in (index - 1, index + 1) if 0 <= i < len(tiles)]
        neighbours = [float(np.abs(frame - tiles[i][2]).mean()) for i in near]
        assert own < 15 and min(neighbours) > 3 * own, (index, own, neighbours)


def new_video(catalog: Any, storage: Storage, user: SimpleNamespace, source: bytes | Path) -> str:
    """A queued video whose source is in storage, not yet handed to the dispatcher."""
    vid = uuid.uuid4().hex
    if isinstance(source, Path):
        storage.put_file(source, layout.source_key(vid))
    else:
        storage.write_bytes(layout.source_key(vid), source)
    ray.get(catalog.create_video.remote(vid, user.id, "old", "", "private", layout.source_key(vid), 1))
    return vid


def test_a_storyboard_that_fails_leaves_the_video_ready_without_one(
    api: httpx.Client, catalog: Any, dispatcher: Any, storage: Storage, turning_clip: Path
) -> None:
    user = register_user(api)
    vid = new_video(catalog, storage, user, turning_clip)
    # A directory where the sheet is published: storage refuses the file, the step fails.
    blocker = Path(storage.path(layout.storyboard_keys(vid)[0]))
    blocker.mkdir(parents=True)
    (blocker / "in-the-way").write_bytes(b"x")
    ray.get(dispatcher.submit.remote(vid))
    status = wait_finished(api, user, vid)
    assert status["status"] == "ready" and status["error"] is None, status
    meta = api.get(f"/v1/videos/{vid}", headers=user.headers).json()
    assert meta["storyboard_url"] is None and meta["hls_url"].endswith("/master.m3u8")
    assert not storage.exists(layout.storyboard_keys(vid)[1])
    assert ray.get(catalog.get_video.remote(vid))["storyboard"] is None
    (blocker / "in-the-way").unlink()
    blocker.rmdir()


def test_backfill_gives_videos_made_without_one_a_storyboard_and_skips_them_on_a_rerun(
    api: httpx.Client,
    catalog: Any,
    settings: Settings,
    storage: Storage,
    ready: SimpleNamespace,
    turning_clip: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    user = register_user(api)
    # Ready as a vodray before storyboards left it: its source kept, no storyboard recorded or
    # published (``mark_ready`` without one, as the job called it then).
    old = new_video(catalog, storage, user, turning_clip)
    broken = new_video(catalog, storage, user, b"not a video at all")
    for vid in (old, broken):
        ray.get(catalog.mark_ready.remote(
            vid, duration_s=CLIP_S, width=SIZE[0], height=SIZE[1], renditions=[], has_audio=False,
            media_bytes=1,
        ))  # fmt: skip
    assert api.get(f"/v1/videos/{old}", headers=user.headers).json()["storyboard_url"] is None

    summary = backfill_storyboards(settings)
    assert "recording storyboards: 100%" in capfd.readouterr().err  # the progress bar
    assert old in summary.made and ready.id in summary.skipped
    assert summary.failed[broken].startswith("making the storyboard (seek-bar previews) failed: ")
    assert "sources/" not in summary.failed[broken]  # a sentence, no storage keys
    assert not any(storage.exists(key) for key in layout.storyboard_keys(broken))
    meta = api.get(f"/v1/videos/{old}", headers=user.headers).json()
    assert meta["storyboard_url"] == meta["hls_url"].replace("master.m3u8", "storyboard.vtt")
    vtt, sheet = storyboard_files(api, meta, user)
    assert len(check_storyboard(vtt, sheet, CLIP_S)) == 5
    assert ray.get(catalog.get_video.remote(old))["storyboard"]["tiles"] == 5

    # Again from the CLI: the video is skipped, its files untouched; the broken one fails again.
    files = {key: storage.read_bytes(key) for key in layout.storyboard_keys(old)}
    rerun = CliRunner().invoke(
        main, ["backfill", "storyboards", "--no-progress"], env={"VODRAY_DATA_DIR": str(settings.data_dir)}
    )
    assert rerun.exit_code == 1, rerun.output  # the broken video is listed
    done = SUMMARY.search(rerun.output)
    assert done is not None and int(done.group(1)) >= 2, rerun.output
    assert f"  {broken}: making the storyboard (seek-bar previews) failed: " in rerun.output
    assert f"  {old}:" not in rerun.output
    assert {key: storage.read_bytes(key) for key in layout.storyboard_keys(old)} == files
