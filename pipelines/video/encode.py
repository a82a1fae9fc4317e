"""Step functions over local paths: encode chunks of renditions, the audio and the poster.

Ray tasks (``pipelines.tasks``) call these with files in a temp dir of their own; nothing here
knows about Ray or storage. Outputs are written under a temporary name and renamed when
complete, so a crashed step never leaves a file that looks finished ("skip what exists" stays
safe).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipelines.video import argv
from pipelines.video.ffmpeg import Source, run
from pipelines.video.plan import Chunk, Plan, Rendition


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A temporary path next to ``out``, renamed onto it only if the block succeeds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        yield partial
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def encode_chunk(
    src: Source, outputs: Sequence[tuple[Rendition, Path]], plan: Plan, chunk: Chunk, threads: int
) -> list[Path]:
    """One chunk in every rendition of ``outputs``; each file appears whole or not at all."""
    partials = [(rendition, out.with_name(f".{out.name}.partial")) for rendition, out in outputs]
    try:
        run(argv.encode_chunk_argv(src, partials, plan, chunk, threads))
        for (_, partial), (_, out) in zip(partials, outputs, strict=True):
            os.replace(partial, out)
    finally:
        for _, partial in partials:
            partial.unlink(missing_ok=True)
    return [out for _, out in outputs]


def encode_aac(src: Source, out: Path, plan: Plan) -> Path:
    return _encode_audio(argv.encode_aac_argv, src, out, plan)


def encode_mp3(src: Source, out: Path, plan: Plan) -> Path:
    return _encode_audio(argv.encode_mp3_argv, src, out, plan)


def _encode_audio(
    build: Callable[[Source, Path, Plan], list[str]], src: Source, out: Path, plan: Plan
) -> Path:
    if not plan.has_audio:
        raise ValueError("the plan has no audio to encode")
    with atomic_output(out) as partial:
        run(build(src, partial, plan))
    return out


def make_poster(src: Source, out: Path, plan: Plan) -> Path:
    with atomic_output(out) as partial:
        run(argv.poster_argv(src, partial, plan))
    return out
