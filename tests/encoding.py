"""A whole title encoded in one ffmpeg run through vodray's own chunk encode: the reference the
chunked-encode tests compare stitched chunks with, and the way media tests make a rendition."""

from __future__ import annotations

from pathlib import Path

from pipelines.video import encode
from pipelines.video.ffmpeg import Source
from pipelines.video.plan import Chunk, Plan, Rendition


def whole_title(plan: Plan) -> Chunk:
    """One chunk from the first frame to the last: what one long encode makes."""
    return Chunk(0, plan.chunks[0].start_frame, plan.chunks[-1].end_frame)


def encode_whole(src: Source, out: Path, plan: Plan, rendition: Rendition, threads: int = 2) -> Path:
    """``rendition`` of the whole title as one MP4, keyframes on the segment grid."""
    return encode.encode_chunk(src, [(rendition, out)], plan, whole_title(plan), threads)[0]
