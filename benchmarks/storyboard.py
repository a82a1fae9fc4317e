"""Storyboard CPU: vodray's two ways (one pass, a seek per tile) against a pass decoding every frame.

For a generated source of ``--seconds`` at ``--height`` (x264 with B-frames, as most uploads
are, and the demo clip's x264 ``ultrafast``, which has none), side by side, ``--rounds`` times
in turn, each through ``pipelines.video.storyboard.make_storyboard`` or its argv:

- one pass (vodray's way unless seeking is cheaper): skips non-reference frames and deblocking;
- full decode (plain): the same pass decoding every frame;
- seek per tile (vodray's way for a long title whose keyframes make it cheaper): one ffmpeg per
  tile, decoding from the keyframe before it, then one that lays the tiles out.

Prints the median CPU seconds (of the ffmpeg children) and wall of each, the ratios, how far
the one pass's tiles are from the full decode's (mean absolute difference, 0..255), and, from
the measured costs, the title length from which seeking costs less CPU (the one pass grows with
the title, the seeks with the tiles: at most 100) and what each would cost for 2 hours.

    .venv/bin/python benchmarks/storyboard.py [--seconds 60] [--height 1080] [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import plain_ffmpeg  # beside this script

from cluster import layout
from pipelines.demo import make_clip
from pipelines.video.ffmpeg import run
from pipelines.video.storyboard import make_storyboard
from pipelines.video.tiles import MAX_TILES, Storyboard, plan_storyboard

FPS = 25


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(work: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds of the ffmpeg it ran, wall seconds) of one run."""
    cpu, start = children_cpu_s(), time.perf_counter()
    work()
    return children_cpu_s() - cpu, time.perf_counter() - start


def one_pass(src: Path, out: Path, board: Storyboard) -> None:
    make_storyboard(src, out, board, seek=False)


def full_decode(src: Path, out: Path, board: Storyboard) -> None:
    run(plain_ffmpeg.storyboard_full_decode_argv(src, out / layout.STORYBOARD_IMAGE_NAME, board))


def seek_per_tile(src: Path, out: Path, board: Storyboard) -> None:
    make_storyboard(src, out, board, seek=True)


SIDES: dict[str, Callable[[Path, Path, Storyboard], None]] = {
    "one pass": one_pass,
    "full decode": full_decode,
    "seek per tile": seek_per_tile,
}


def pixels(image: Path, board: Storyboard) -> np.ndarray:
    raw = subprocess.run(plain_ffmpeg.raw_rgb_argv(image), capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(board.height, board.width, 3).astype(np.float64)


def compare(name: str, src: Path, root: Path, seconds: float, rounds: int) -> None:
    board = plan_storyboard(seconds, Fraction(16, 9))
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    wall: dict[str, list[float]] = {side: [] for side in SIDES}
    for _ in range(rounds):
        for side, work in SIDES.items():
            out = root / name / side
            out.mkdir(parents=True, exist_ok=True)
            used, took = measured(lambda: work(src, out, board))  # noqa: B023 - called at once
            cpu[side].append(used)
            wall[side].append(took)
    median = {side: statistics.median(values) for side, values in cpu.items()}
    print(f"{name}: {seconds:.0f} s, {board.tiles} tiles every {board.interval_ms / 1000:g} s")
    for side in SIDES:
        print(f"  {side:<14} CPU {median[side]:6.2f} s   wall {statistics.median(wall[side]):6.2f} s")
    print(
        f"  full decode / one pass (CPU): {median['full decode'] / median['one pass']:.2f}x;"
        f" seek per tile / one pass (CPU): {median['seek per tile'] / median['one pass']:.2f}x"
    )
    sheets = [pixels(root / name / side / layout.STORYBOARD_IMAGE_NAME, board) for side in SIDES]
    difference = float(np.abs(sheets[0] - sheets[1]).mean())
    print(f"  one pass's tiles against the full decode's: mean absolute difference {difference:.1f} (0..255)")
    per_frame = median["one pass"] / (seconds * FPS)
    per_tile = median["seek per tile"] / board.tiles
    crossover_s = MAX_TILES * per_tile / (per_frame * FPS)
    two_hours = 7200 * FPS
    print(
        f"  one pass {per_frame * 1000:.2f} ms a frame, a seek {per_tile:.2f} s a tile: seeking costs less"
        f" from about {crossover_s / 60:.0f} min of this source; projected for 2 h: one pass"
        f" {per_frame * two_hours:.0f} CPU-s, 100 seeks {per_tile * MAX_TILES:.0f} CPU-s"
        f" ({per_frame * two_hours / (per_tile * MAX_TILES):.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--height", type=int, default=1080, choices=[360, 480, 720, 1080])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    width = args.height * 16 // 9
    with tempfile.TemporaryDirectory(prefix="vodray-storyboard-") as tmp:
        root = Path(tmp)
        bframes = root / "bframes.mp4"
        run(plain_ffmpeg.bframes_clip_argv(bframes, args.seconds, width, args.height))
        compare("x264 veryfast (B-frames, a keyframe every 10 s)", bframes, root, args.seconds, args.rounds)
        ultrafast = make_clip(
            root / "ultrafast.mp4", seconds=args.seconds, width=width, height=args.height, audio=False,
            subtitles=False,
        )  # fmt: skip
        compare("x264 ultrafast (no B-frames, the demo clip)", ultrafast, root, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
