"""A storyboard's grid, pure: which moment each seek-bar preview tile shows, where it sits in
the sprite sheet, and the WebVTT that tells a player so. No I/O, no Ray, no ffmpeg.

Time is counted in whole milliseconds (WebVTT's resolution), so cue boundaries are exact: tile
``i`` covers ``[i * interval_ms, (i + 1) * interval_ms)`` and shows the frame on screen at its
start; the last tile ends at the title's duration. The interval is ``MIN_INTERVAL_MS`` or the
duration split into ``MAX_TILES``, whichever is longer, so any title has at most 100 tiles and
the sheet stays at most ``COLUMNS * TILE_LONG_SIDE_PX`` (1600) pixels a side: far inside
JPEG's 65535, and small enough for a page to fetch before the first hover.

There are two ways to read the frames: one pass over the source, which decodes every frame and
so grows with the title; or a seek per tile, which decodes from the keyframe before each tile
and so grows with the tiles (at most 100) and the distance between keyframes. A long title with
keyframes every few seconds costs ten times less by seeking; one whose keyframes are minutes
apart would cost more than the pass. ``seek_is_cheaper`` decides from where the keyframes are;
``benchmarks/storyboard.py`` measures both ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

MAX_TILES = 100
"""Tiles of a long title: its duration split in this many."""
MIN_INTERVAL_MS = 2000
"""Tiles of a short title: one every 2 s (a preview per second would show near-identical frames)."""
TILE_LONG_SIDE_PX = 160
"""A tile's longer side: 160x90 for 16:9, 90x160 for a portrait 9:16 phone video."""
COLUMNS = 10
"""Tiles per row of the sheet (fewer for a title of fewer tiles)."""
MIN_SIDE_PX = 2
SEEK_FROM_MS = 200_000
"""Shorter titles are read in one pass without asking where their keyframes are: it decodes at
most 200 s, and 100 seeks cost about as much (a keyframe every 2 s, 1080p, measured)."""
SEEK_OVERHEAD_S = 2.0
"""What starting one seeking ffmpeg costs (a process, the container's index), in seconds of
video decoded: about 0.05 CPU-s, 1 s of 1080p or 8 s of 360p."""
SEEK_SHARE = 0.5
"""Seek only when it decodes at most half of what the one pass would: the estimate is rough."""


@dataclass(frozen=True)
class Storyboard:
    duration_ms: int
    interval_ms: int
    tiles: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int

    @property
    def width(self) -> int:
        """The sprite sheet's width in pixels."""
        return self.columns * self.tile_width

    @property
    def height(self) -> int:
        return self.rows * self.tile_height

    @property
    def rate(self) -> Fraction:
        """Tiles per second, exact (``1/2`` for one tile every 2 s)."""
        return Fraction(1000, self.interval_ms)

    def span_ms(self, index: int) -> tuple[int, int]:
        """``[start, end)`` of tile ``index``: contiguous, the last one ending at the duration."""
        start = index * self.interval_ms
        return start, min(start + self.interval_ms, self.duration_ms)

    def start_s(self, index: int) -> float:
        """The moment tile ``index`` shows."""
        return self.span_ms(index)[0] / 1000

    @property
    def may_seek(self) -> bool:
        """Long enough for seeking per tile to be worth asking about."""
        return self.duration_ms >= SEEK_FROM_MS

    def tile_at(self, seconds: float) -> int:
        """The tile a player shows for a moment of the title."""
        ms = math.floor(round(seconds * 1000, 3))  # 66.528 s is 66528 ms, not 66527.99...
        return min(self.tiles - 1, max(0, ms // self.interval_ms))

    def xywh(self, index: int) -> tuple[int, int, int, int]:
        """Tile ``index`` in the sheet, row by row from the top left."""
        row, column = divmod(index, self.columns)
        return column * self.tile_width, row * self.tile_height, self.tile_width, self.tile_height

    def to_json(self) -> dict[str, int | float]:
        """What the catalog keeps (the video's ``storyboard`` column)."""
        return {
            "interval_s": self.interval_ms / 1000,
            "tiles": self.tiles,
            "columns": self.columns,
            "rows": self.rows,
            "tile_width": self.tile_width,
            "tile_height": self.tile_height,
        }


def plan_storyboard(duration_s: float, aspect: Fraction) -> Storyboard:
    """The grid for a title of ``duration_s`` whose frames display at ``aspect`` (width/height)."""
    duration_ms = max(1, round(duration_s * 1000))
    interval_ms = max(MIN_INTERVAL_MS, math.ceil(duration_ms / MAX_TILES))
    tiles = math.ceil(duration_ms / interval_ms)
    columns = min(COLUMNS, tiles)
    width, height = tile_size(aspect)
    return Storyboard(
        duration_ms=duration_ms,
        interval_ms=interval_ms,
        tiles=tiles,
        columns=columns,
        rows=math.ceil(tiles / columns),
        tile_width=width,
        tile_height=height,
    )


def seek_is_cheaper(board: Storyboard, keyframes_s: list[float]) -> bool:
    """Whether seeking to each tile decodes less than one pass, given the keyframe each tile's
    seek lands on (``keyframes_s[i]`` at or before tile ``i``'s moment, as ffprobe finds them).
    Anything else than one keyframe per tile means the estimate cannot be made: one pass."""
    if not board.may_seek or len(keyframes_s) != board.tiles:
        return False
    decoded = sum(
        SEEK_OVERHEAD_S + max(0.0, board.start_s(index) - keyframe)
        for index, keyframe in enumerate(keyframes_s)
    )
    return decoded <= SEEK_SHARE * board.duration_ms / 1000


def tile_size(aspect: Fraction) -> tuple[int, int]:
    """Even sides (JPEG's chroma halves them), the longer one ``TILE_LONG_SIDE_PX``."""
    if aspect >= 1:
        return TILE_LONG_SIDE_PX, _even(TILE_LONG_SIDE_PX / aspect)
    return _even(TILE_LONG_SIDE_PX * aspect), TILE_LONG_SIDE_PX


def _even(value: Fraction | float) -> int:
    return max(MIN_SIDE_PX, 2 * math.floor(value / 2 + Fraction(1, 2)))


def vtt_time(ms: int) -> str:
    """``HH:MM:SS.mmm`` (hours always present: a title may pass 99 minutes)."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def webvtt(board: Storyboard, image: str) -> str:
    """One cue per tile naming its part of ``image`` (relative to the VTT, so a signed or
    proxied URL of the VTT carries over to the image): ``storyboard.jpg#xywh=160,0,160,90``."""
    lines = ["WEBVTT", ""]
    for index in range(board.tiles):
        start, end = board.span_ms(index)
        x, y, w, h = board.xywh(index)
        lines += [f"{vtt_time(start)} --> {vtt_time(end)}", f"{image}#xywh={x},{y},{w},{h}", ""]
    return "\n".join(lines)
