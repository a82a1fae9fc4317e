"""The storyboard step over local paths: the sprite sheet of seek-bar previews and its WebVTT.

One ffmpeg pass over the source (``argv.storyboard_argv``) writes the sheet; the WebVTT comes
from the grid alone (``pipelines.video.tiles``). Both are written under a temporary name and
renamed when complete. The Ray task (``pipelines.tasks``) publishes them beside the manifests,
the sheet first: a VTT that exists names a sheet that exists.
"""

from __future__ import annotations

from pathlib import Path

from cluster import layout
from pipelines.video import argv
from pipelines.video.encode import atomic_output
from pipelines.video.ffmpeg import Source, run
from pipelines.video.tiles import Storyboard, webvtt


def make_storyboard(src: Source, out_dir: Path, board: Storyboard) -> tuple[Path, Path]:
    """``(sheet, vtt)`` in ``out_dir``, named as published (``storyboard.jpg``, ``storyboard.vtt``)."""
    sheet = out_dir / layout.STORYBOARD_IMAGE_NAME
    vtt = out_dir / layout.STORYBOARD_VTT_NAME
    with atomic_output(sheet) as partial:
        run(argv.storyboard_argv(src, partial, board))
    with atomic_output(vtt) as partial:
        partial.write_text(webvtt(board, layout.STORYBOARD_IMAGE_NAME), encoding="utf-8")
    return sheet, vtt
