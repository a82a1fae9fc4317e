"""The storyboard step over local paths: the sprite sheet of seek-bar previews and its WebVTT.

The sheet comes from one ffmpeg pass over the source (``argv.storyboard_argv``), or, for a long
title whose keyframes make it cheaper (``tiles.seek_is_cheaper``, from one ffprobe that asks
where each tile's seek would land), from one seek per tile and one command that lays the tiles
out. The WebVTT comes from the grid alone (``pipelines.video.tiles``). Both files are written
under a temporary name and renamed when complete. The Ray task (``pipelines.tasks``) publishes
them beside the manifests, the sheet first: a VTT that exists names a sheet that exists.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cluster import layout
from pipelines.video import argv
from pipelines.video.encode import atomic_output
from pipelines.video.ffmpeg import Source, run, run_json
from pipelines.video.tiles import Storyboard, seek_is_cheaper, webvtt

TILE_NAME = "tile-{:03d}.png"
TILE_PATTERN = "tile-%03d.png"
"""The image2 pattern of ``TILE_NAME`` (tiles numbered from 0)."""


def make_storyboard(
    src: Source, out_dir: Path, board: Storyboard, *, seek: bool | None = None
) -> tuple[Path, Path]:
    """``(sheet, vtt)`` in ``out_dir``, named as published (``storyboard.jpg``, ``storyboard.vtt``).
    ``seek`` chooses the way (benchmarks, tests); None lets ``seeks_cheaper`` decide."""
    sheet = out_dir / layout.STORYBOARD_IMAGE_NAME
    vtt = out_dir / layout.STORYBOARD_VTT_NAME
    with atomic_output(sheet) as partial:
        if seeks_cheaper(src, board) if seek is None else seek:
            _sheet_by_seeking(src, partial, board)
        else:
            run(argv.storyboard_argv(src, partial, board))
    with atomic_output(vtt) as partial:
        partial.write_text(webvtt(board, layout.STORYBOARD_IMAGE_NAME), encoding="utf-8")
    return sheet, vtt


def _sheet_by_seeking(src: Source, out: Path, board: Storyboard) -> None:
    with tempfile.TemporaryDirectory(prefix="vodray-tiles-", dir=out.parent) as tmp:
        tiles = Path(tmp)
        for index in range(board.tiles):
            run(argv.storyboard_tile_argv(src, tiles / TILE_NAME.format(index), board, index))
        run(argv.storyboard_sheet_argv(tiles / TILE_PATTERN, out, board))


def seeks_cheaper(src: Source, board: Storyboard) -> bool:
    """For a long title, where each tile's seek would land (one ffprobe reading the index and a
    packet a tile), and whether seeking then decodes less than one pass."""
    if not board.may_seek:
        return False
    found = run_json(argv.keyframes_before_argv(src, board))
    return seek_is_cheaper(board, [float(packet["pts_time"]) for packet in found.get("packets", [])])
