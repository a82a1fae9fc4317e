"""The storyboard's pure parts: the tile grid in time and in the sheet, its WebVTT, the exact
ffmpeg argv, its task spec in the job, its catalog record and its URL in the metadata."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from catalog.store import CatalogStore
from cluster import layout
from cluster.settings import load_settings
from cluster.storage import Storage
from pipelines import graph
from pipelines.video import argv as build
from pipelines.video.tiles import Storyboard, plan_storyboard, seek_is_cheaper, vtt_time, webvtt
from serve.app import create_app
from serve.routes.videos import video_view
from tests.unit.test_ffmpeg_argv import ONE_FILE, PREFIX, SRC, make_plan

WIDE = Fraction(16, 9)
CUE = re.compile(
    r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)#xywh=(\d+),(\d+),(\d+),(\d+)"
)


def parse_cues(text: str) -> list[tuple[int, int, str, tuple[int, int, int, int]]]:
    """``(start_ms, end_ms, image, (x, y, w, h))`` of every cue of a storyboard WebVTT."""
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for found in CUE.finditer(text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(found.group(i)) for i in range(1, 9))
        start = ((h1 * 60 + m1) * 60 + s1) * 1000 + ms1
        end = ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2
        x, y, w, h = (int(found.group(i)) for i in range(10, 14))
        cues.append((start, end, found.group(9), (x, y, w, h)))
    assert len(cues) == text.count("-->")
    return cues


def test_a_short_title_has_a_tile_every_two_seconds_the_last_one_ending_at_its_end() -> None:
    board = plan_storyboard(9.5, WIDE)
    assert board == Storyboard(
        duration_ms=9500, interval_ms=2000, tiles=5, columns=5, rows=1, tile_width=160, tile_height=90
    )
    assert (board.width, board.height, board.rate) == (800, 90, Fraction(1, 2))
    assert webvtt(board, "storyboard.jpg") == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n\n"
        "00:00:02.000 --> 00:00:04.000\nstoryboard.jpg#xywh=160,0,160,90\n\n"
        "00:00:04.000 --> 00:00:06.000\nstoryboard.jpg#xywh=320,0,160,90\n\n"
        "00:00:06.000 --> 00:00:08.000\nstoryboard.jpg#xywh=480,0,160,90\n\n"
        "00:00:08.000 --> 00:00:09.500\nstoryboard.jpg#xywh=640,0,160,90\n"
    )


def test_a_title_under_two_seconds_is_one_tile() -> None:
    board = plan_storyboard(0.04, WIDE)
    assert (board.tiles, board.columns, board.rows, board.interval_ms) == (1, 1, 1, 2000)
    assert parse_cues(webvtt(board, "s.jpg")) == [(0, 40, "s.jpg", (0, 0, 160, 90))]


@pytest.mark.parametrize(
    ("duration_s", "interval_ms", "tiles", "rows"),
    [
        (200.0, 2000, 100, 10),  # the longest title at one tile every 2 s
        (200.001, 2001, 100, 10),  # past it, the duration split in 100
        (201.0, 2010, 100, 10),
        (3600.0, 36000, 100, 10),
        (14400.0, 144000, 100, 10),  # VODRAY_MAX_DURATION_S: still 100 tiles, 1600x900
        (1e6, 10_000_000, 100, 10),
    ],
)
def test_any_length_has_at_most_100_tiles_and_a_sheet_of_at_most_1600_px(
    duration_s: float, interval_ms: int, tiles: int, rows: int
) -> None:
    board = plan_storyboard(duration_s, WIDE)
    assert (board.interval_ms, board.tiles, board.columns, board.rows) == (interval_ms, tiles, 10, rows)
    assert board.width <= 1600 and board.height <= 1600


@pytest.mark.parametrize(
    ("aspect", "size"),
    [
        (Fraction(16, 9), (160, 90)),
        (Fraction(4, 3), (160, 120)),
        (Fraction(1), (160, 160)),
        (Fraction(9, 16), (90, 160)),  # a phone held upright
        (Fraction(427, 240), (160, 90)),  # 854x480
        (Fraction(4000, 16), (160, 2)),  # the thinnest accepted video still has a tile
    ],
)
def test_tiles_keep_the_aspect_ratio_with_even_sides_the_longer_one_160(
    aspect: Fraction, size: tuple[int, int]
) -> None:
    board = plan_storyboard(30, aspect)
    assert (board.tile_width, board.tile_height) == size


@pytest.mark.parametrize("duration_s", [0.001, 0.5, 1.999, 2.0, 2.001, 9.999, 61.7, 199.999, 437.25, 86399.9])
def test_the_cues_cover_the_title_without_gap_or_overlap_and_every_tile_is_inside_the_sheet(
    duration_s: float,
) -> None:
    board = plan_storyboard(duration_s, Fraction(9, 16))
    cues = parse_cues(webvtt(board, "storyboard.jpg"))
    assert len(cues) == board.tiles <= 100
    assert cues[0][0] == 0 and cues[-1][1] == round(duration_s * 1000)
    for (_, end, _, _), (start, _, _, _) in zip(cues, cues[1:], strict=False):
        assert end == start  # cue i ends where cue i + 1 starts
    assert all(start < end for start, end, _, _ in cues)
    boxes = [box for _, _, _, box in cues]
    assert len(set(boxes)) == len(boxes)  # no two cues show the same tile
    for x, y, w, h in boxes:
        assert (w, h) == (board.tile_width, board.tile_height)
        assert x >= 0 and y >= 0 and x + w <= board.width and y + h <= board.height
    assert [board.tile_at(start / 1000) for start, _, _, _ in cues] == list(range(board.tiles))
    assert board.tile_at(duration_s) == board.tiles - 1


def test_vtt_time_always_names_the_hours() -> None:
    assert vtt_time(0) == "00:00:00.000"
    assert vtt_time(3_723_004) == "01:02:03.004"
    assert vtt_time(14_400_000) == "04:00:00.000"


def test_storyboard_argv_is_one_pass_over_the_upload_to_one_jpeg() -> None:
    board = plan_storyboard(61.7, WIDE)
    assert build.storyboard_argv(SRC, Path("/w/.storyboard.jpg.partial"), board) == [
        *PREFIX, "-threads", "1", "-skip_frame", "noref", "-skip_loop_filter", "all",
        *ONE_FILE, "-i", "/w/src.mp4",
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-filter_threads", "1",
        "-vf", "fps=fps=1/2:start_time=0:round=up,scale=160:90:flags=area,setsar=1,tile=10x4",
        "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "8",
        "-f", "image2", "-update", "1", "/w/.storyboard.jpg.partial",
    ]  # fmt: skip


def test_storyboard_argv_reads_an_s3_source_by_range_and_a_long_title_at_its_own_rate() -> None:
    url = "https://bucket.example/sources/v1/source?X-Amz-Signature=abc"
    argv = build.storyboard_argv(url, Path("/w/s.jpg"), plan_storyboard(3600.0, Fraction(9, 16)))
    at = argv.index("-i")
    assert argv[at - 4 : at + 2] == ["-protocol_whitelist", "https,http,tls,tcp", *ONE_FILE[2:], "-i", url]
    assert argv[argv.index("-vf") + 1] == (
        "fps=fps=1/36:start_time=0:round=up,scale=90:160:flags=area,setsar=1,tile=10x10"
    )


def test_the_job_has_a_storyboard_task_publishing_beside_the_manifests_packaging_does_not_wait_for() -> None:
    plan = make_plan(duration_s=61.7, chunks=())
    specs = graph.job_specs("v1", plan)
    boards = [spec for spec in specs if spec.step == "storyboard"]
    assert len(boards) == 1
    board = boards[0]
    assert board.name == "storyboard:v1" and board.num_cpus == 1.0
    assert board.inputs == ("sources/v1/source",)
    assert board.outputs == ("media/v1/storyboard.jpg", "media/v1/storyboard.vtt")
    # As long as the stream: its whole frames (1542 at 25 fps), what the metadata's duration says.
    assert board.storyboard == plan_storyboard(61.68, WIDE)
    assert board.storyboard.duration_ms == 61680
    package = specs[-1]
    assert package.step == "package" and not set(board.outputs) & set(package.inputs)
    # The whole title's decode outweighs the poster, so Ray starts it first of the two.
    steps = [spec.step for spec in specs]
    assert steps.index("storyboard") < steps.index("poster")


def test_playback_urls_name_the_storyboard_only_when_there_is_one() -> None:
    assert layout.storyboard_keys("v1") == ("media/v1/storyboard.jpg", "media/v1/storyboard.vtt")
    assert layout.playback_urls("http://h", "v1", has_audio=True)["storyboard_url"] is None
    with_one = layout.playback_urls("http://h", "v1", has_audio=True, has_storyboard=True)
    assert with_one["storyboard_url"] == "http://h/media/v1/storyboard.vtt"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    opened = CatalogStore(tmp_path / "catalog.duckdb")
    yield opened
    opened.close()


def _ready(store: CatalogStore, video_id: str, storyboard: dict | None = None) -> None:
    store.create_video(video_id, "alice", "t", "", "public", f"sources/{video_id}/source", 10)
    store.mark_ready(
        video_id, duration_s=9.5, width=640, height=360, renditions=[], has_audio=False, media_bytes=1,
        storyboard=storyboard,
    )  # fmt: skip


def test_the_catalog_keeps_the_storyboard_and_the_metadata_lists_its_url(store: CatalogStore) -> None:
    record = plan_storyboard(9.5, WIDE).to_json()
    assert record == {
        "interval_s": 2.0, "tiles": 5, "columns": 5, "rows": 1, "tile_width": 160, "tile_height": 90,
    }  # fmt: skip
    _ready(store, "made", record)
    _ready(store, "older")
    store.create_video("queued", "alice", "t", "", "public", "sources/queued/source", 10)
    made, older = store.get_video("made"), store.get_video("older")
    assert made is not None and older is not None
    assert made["storyboard"] == record and older["storyboard"] is None
    assert video_view(made, "http://h")["storyboard_url"] == "http://h/media/made/storyboard.vtt"
    assert video_view(older, "http://h")["storyboard_url"] is None
    assert [(v["id"], v["has_storyboard"]) for v in store.storyboard_candidates()] == [
        ("made", True),
        ("older", False),
    ]  # ready videos only: the queued one has no duration yet

    assert store.set_storyboard("older", record) is True
    assert store.storyboard_candidates()[1]["has_storyboard"] is True
    older = store.get_video("older")
    assert older is not None and older["storyboard"] == record
    assert store.set_storyboard("queued", record) is False  # not ready: nothing recorded
    assert store.set_storyboard("gone", record) is False
    queued = store.get_video("queued")
    assert queued is not None and queued["storyboard"] is None


def test_a_long_title_seeks_per_tile_only_when_its_keyframes_make_that_decode_under_half() -> None:
    board = plan_storyboard(3600.0, WIDE)  # a tile every 36 s: one pass decodes 3600 s
    starts = [board.start_s(i) for i in range(board.tiles)]
    assert starts[:2] == [0.0, 36.0] and starts[-1] == 3564.0
    assert seek_is_cheaper(board, starts)  # a keyframe on every tile: 100 x 2 s of start-up
    assert seek_is_cheaper(board, [max(0.0, t - 10) for t in starts])  # 10 s before each: 1200 s
    assert not seek_is_cheaper(board, [max(0.0, t - 20) for t in starts])  # 20 s before: 2200 s
    assert not seek_is_cheaper(board, [0.0] * 100)  # one keyframe: every seek decodes from 0
    assert not seek_is_cheaper(board, starts[:99])  # a tile's seek found nothing: no estimate
    short = plan_storyboard(199.9, WIDE)
    assert not short.may_seek and plan_storyboard(200.0, WIDE).may_seek
    assert not seek_is_cheaper(short, [short.start_s(i) for i in range(short.tiles)])


def test_where_each_tiles_seek_lands_is_one_ffprobe_reading_a_packet_a_tile() -> None:
    board = plan_storyboard(250.0, WIDE)  # a tile every 2.5 s
    argv = build.keyframes_before_argv(SRC, board)
    intervals = ",".join(f"{spec}%+#1" for spec in ["0", "2.5", "5", "7.5"] + [
        str(i * 2.5).removesuffix(".0") for i in range(4, 100)
    ])  # fmt: skip
    assert argv == [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", intervals,
        "-show_entries", "packet=pts_time", "-print_format", "json", *ONE_FILE, "-i", "/w/src.mp4",
    ]  # fmt: skip


def test_a_long_titles_tiles_are_seeks_by_range_then_one_sheet() -> None:
    board = plan_storyboard(3600.0, WIDE)
    assert build.storyboard_tile_argv(SRC, Path("/w/t/tile-001.png"), board, 1) == [
        *PREFIX, "-threads", "1", "-skip_frame", "noref", "-skip_loop_filter", "all",
        "-ss", "36", *ONE_FILE, "-i", "/w/src.mp4",
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-filter_threads", "1",
        "-vf", "scale=160:90:flags=area,setsar=1", "-frames:v", "1", "-c:v", "png",
        "-f", "image2", "-update", "1", "/w/t/tile-001.png",
    ]  # fmt: skip
    first = build.storyboard_tile_argv(SRC, Path("/w/t/tile-000.png"), board, 0)
    assert "-ss" not in first  # the first tile is the first frame
    assert build.storyboard_sheet_argv(Path("/w/t/tile-%03d.png"), Path("/w/s.jpg"), board) == [
        *PREFIX, "-f", "image2", "-start_number", "0", "-i", "/w/t/tile-%03d.png",
        "-vf", "tile=10x10", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "8",
        "-f", "image2", "-update", "1", "/w/s.jpg",
    ]  # fmt: skip


def test_the_job_orders_a_long_titles_storyboard_by_its_tiles_not_its_frames() -> None:
    plans = [make_plan(duration_s=seconds, chunks=()) for seconds in (199.0, 3600.0)]
    cost = [next(graph.task_cost(p, s) for s in graph.job_specs("v", p) if s.storyboard) for p in plans]
    top = 640 * 360
    assert cost[0] == pytest.approx(graph.STORYBOARD_DECODE_COST * top * 4975)  # every frame
    assert cost[1] == pytest.approx(graph.STORYBOARD_DECODE_COST * top * 100 * graph.STORYBOARD_SEEK_FRAMES)


def test_the_openapi_says_what_storyboard_url_is(tmp_path: Path) -> None:
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)})
    app = create_app(settings, None, None, Storage(settings.storage))
    operation = app.openapi_schema.paths["/v1/videos/{video_id}"].get  # type: ignore[index, union-attr]
    assert operation is not None and operation.description is not None
    assert "`storyboard_url`: a WebVTT of seek-bar previews" in operation.description


def test_the_ready_event_carries_the_storyboard_so_the_webhook_names_its_url(store: CatalogStore) -> None:
    record = plan_storyboard(9.5, WIDE).to_json()
    owner = store.create_user("ana", "h")["id"]
    store.create_endpoint(owner, "http://127.0.0.1:1/a", ["video.ready"], "whsec_a", 10)
    store.create_video("v1", owner, "t", "", "private", "sources/v1/source", 10)
    store.mark_ready(
        "v1", duration_s=9.5, width=640, height=360, renditions=[], has_audio=False, media_bytes=1,
        storyboard=record,
    )  # fmt: skip
    (event,) = store.due_deliveries([], 10, 100)["due"]
    assert event["type"] == "video.ready" and event["video"]["storyboard"] == record
    assert video_view(event["video"], "http://h")["storyboard_url"] == "http://h/media/v1/storyboard.vtt"
