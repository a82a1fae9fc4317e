"""How the chunked job would scale: measured task costs, replayed on 2..64 simulated CPUs.

1. Measures every task of a real job on this machine, one at a time (no contention between
   them): probe, each chunk encode, audio, poster, storyboard, and package (stitch, package,
   publish to local storage), on a generated source (default 12 s of 1080p).
2. Fits each step's cost to what drives it: an encode chunk to a fixed part plus a part per
   frame, audio and package per second of title, the storyboard per frame (one pass over the
   whole title) or per tile (a seek each, for a long title), probe and poster fixed.
3. For a title of ``--title-s`` (default 10 minutes) plans the job as vodray would on a
   cluster of N CPUs (chunk length from N), builds its task graph from the same specs, and
   replays it with list scheduling (longest ready task first) on N simulated CPUs, the
   serial steps included: probe before everything, package after every encode (the storyboard
   runs beside packaging: the video is ready when both are done). Prints the
   projected wall time, the efficiency (work / (N x wall)) and the step that limits it.

    .venv/bin/python benchmarks/scaling.py [--seconds 12] [--height 1080] [--title-s 600]
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.video.media_info import MediaInfo

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
CPU_COUNTS = (2, 4, 8, 16, 32, 64)
KEYFRAME_S = 10.0
"""Keyframes of the generated source: x264's default, 250 frames at 25 fps."""


@dataclass(frozen=True)
class Costs:
    probe_s: float
    encode_fixed_s: float
    encode_per_frame_s: float
    audio_fixed_s: float
    audio_per_s: float
    """AAC and MP3 are one task each; these are for one of them (their mean)."""
    poster_s: float
    storyboard_per_frame_s: float
    """One pass over the title."""
    storyboard_per_tile_s: float
    """A seek per tile (at most 100), for a long title whose keyframes make it cheaper."""
    package_fixed_s: float
    package_per_frame_s: float

    def package_s(self, frames: int) -> float:
        return self.package_fixed_s + self.package_per_frame_s * frames


def local(remote: Any) -> Any:
    """The function behind a Ray remote function, to time it in this process without Ray."""
    return remote._function


def measure(seconds: int, height: int) -> tuple[Costs, MediaInfo, float]:
    """Time every task of one real job, one after another; returns the fitted costs."""
    from cluster.layout import source_key
    from cluster.settings import load_settings
    from cluster.storage import Storage
    from pipelines import graph, tasks
    from pipelines.demo import make_clip
    from pipelines.video.plan import plan_video
    from pipelines.video.storyboard import make_storyboard

    with tempfile.TemporaryDirectory(prefix="vodray-scaling-") as tmp:
        root = Path(tmp)
        settings = load_settings({**os.environ, "VODRAY_DATA_DIR": str(root / "data")})
        source = make_clip(
            root / "source.mp4", seconds=seconds, width=height * 16 // 9, height=height, fps=25
        )
        storage = Storage(settings.storage)
        video_id = "scaling"
        storage.put_file(source, source_key(video_id))
        start = time.perf_counter()
        info = local(tasks.probe_source)(storage, source_key(video_id))
        probe_s = time.perf_counter() - start
        # Chunks of one segment: many points for the fit, and the short last one pins the fixed part.
        plan = plan_video(info, replace(settings.pipeline, chunk_s=settings.pipeline.segment_s))
        specs = graph.job_specs(video_id, plan, strategy=settings.pipeline.chunk_strategy)
        timings: list[tuple[graph.TaskSpec, float]] = []
        *parallel, package = specs
        for spec in parallel:
            start = time.perf_counter()
            local(tasks.RUNNERS[spec.step])(storage, plan, spec)
            timings.append((spec, time.perf_counter() - start))
            print(f"  measured {spec.name:<28} {timings[-1][1]:6.2f} s", flush=True)
        # Audio again on a quarter of the title: ffmpeg's start-up is no cost per second.
        short = make_clip(
            root / "short.mp4", seconds=max(1, seconds // 4), width=height * 16 // 9, height=height
        )
        storage.put_file(short, source_key("short"))
        short_plan = plan_video(local(tasks.probe_source)(storage, source_key("short")), settings.pipeline)
        audio = []
        for name, audio_plan in (("short", short_plan), (video_id, plan)):
            for spec in graph.job_specs(name, audio_plan):
                if spec.step in ("audio", "mp3"):
                    runs = []
                    for _ in range(3):  # the best of three: one slow run would rule 64 CPUs
                        storage.delete(spec.output)
                        start = time.perf_counter()
                        local(tasks.RUNNERS[spec.step])(storage, audio_plan, spec)
                        runs.append(time.perf_counter() - start)
                    audio.append((audio_plan.duration_s, min(runs)))
        # The storyboard's other way, for a long title: a seek per tile.
        board = next(spec.storyboard for spec in specs if spec.storyboard is not None)
        assert board is not None
        start = time.perf_counter()
        make_storyboard(source, root / "seeking", board, seek=True)
        per_tile_s = (time.perf_counter() - start) / board.tiles
        print(f"  measured storyboard:{video_id} (a seek per tile) {per_tile_s:6.2f} s a tile", flush=True)
        # Package the first chunk alone and the whole title: its fixed part (a dozen ffmpeg
        # runs, manifests) must not be scaled up with the title's length. Quick and noisy on
        # a shared machine: the best of three each.
        packages = []
        for chunks in (plan.chunks[:1], plan.chunks):
            frames = sum(chunk.frames for chunk in chunks)
            part = replace(plan, chunks=chunks, duration_s=frames / plan.fps)
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                local(tasks.package_and_publish)(storage, part, package, video_id)
                runs.append(time.perf_counter() - start)
            packages.append((float(frames), min(runs)))
            print(f"  measured {package.name} ({frames} frames) {min(runs):6.2f} s", flush=True)
    encodes = [(float(spec.chunk.frames), s) for spec, s in timings if spec.step == "encode" and spec.chunk]
    fixed, per_frame = fit_line(encodes)
    by_step = {spec.step: s for spec, s in timings if spec.step != "encode"}
    package_fixed, package_per_frame = fit_line(packages)
    costs = Costs(
        probe_s=probe_s,
        encode_fixed_s=fixed,
        encode_per_frame_s=per_frame,
        audio_fixed_s=fit_line(audio)[0],
        audio_per_s=fit_line(audio)[1],
        poster_s=by_step["poster"],
        storyboard_per_frame_s=by_step["storyboard"] / plan.total_frames,
        storyboard_per_tile_s=per_tile_s,
        package_fixed_s=package_fixed,
        package_per_frame_s=package_per_frame,
    )
    return costs, info, sum(s for _, s in timings) + probe_s + packages[-1][1]


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``seconds = fixed + per_frame * frames``; no negative parts."""
    xs, ys = [float(x) for x, _ in points], [y for _, y in points]
    if len(set(xs)) < 2:
        return 0.0, statistics.mean(ys) / statistics.mean(xs)
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    fixed = my - slope * mx
    if fixed < 0 or slope < 0:
        return 0.0, sum(ys) / sum(xs)
    return fixed, slope


@dataclass(frozen=True)
class Node:
    name: str
    step: str
    cost_s: float
    cpus: float
    after: tuple[str, ...]


def job_graph(costs: Costs, info: MediaInfo, title_s: float, cpus: int) -> list[Node]:
    """The job vodray would run for a ``title_s`` title on ``cpus`` CPUs, with modelled costs."""
    from cluster.settings import load_settings
    from pipelines import graph
    from pipelines.video.plan import plan_video
    from pipelines.video.tiles import seek_is_cheaper

    settings = load_settings({**os.environ, "VODRAY_DATA_DIR": tempfile.gettempdir()}).pipeline
    plan = plan_video(replace(info, duration_s=title_s), settings, cluster_cpus=cpus)
    slots = max(1, cpus // settings.encode_threads)
    specs = graph.job_specs(
        "v", plan, strategy=settings.chunk_strategy, threads=settings.encode_threads, slots=slots
    )
    every_rendition = tuple(r.name for r in plan.renditions)
    nodes = [Node("probe", "probe", costs.probe_s, 0.5, ())]
    for spec in specs:
        if spec.step == "encode" and spec.chunk is not None:
            # Measured for a chunk in every rendition: a task of fewer renditions costs its
            # share of the pixels, plus a whole decode of the chunk.
            whole = replace(spec, renditions=every_rendition)
            share = graph.encode_cost(plan, spec) / graph.encode_cost(plan, whole)
            cost = costs.encode_fixed_s + costs.encode_per_frame_s * spec.chunk.frames * share
        elif spec.step in ("audio", "mp3"):
            cost = costs.audio_fixed_s + costs.audio_per_s * title_s
        elif spec.step == "poster":
            cost = costs.poster_s
        elif spec.storyboard is not None:
            # The way the task would choose for a source like the measured one (a keyframe
            # every KEYFRAME_S): a seek per tile only if that decodes under half of one pass.
            board = spec.storyboard
            keyframes = [KEYFRAME_S * math.floor(board.start_s(i) / KEYFRAME_S) for i in range(board.tiles)]
            if seek_is_cheaper(board, keyframes):
                cost = costs.storyboard_per_tile_s * board.tiles
            else:
                cost = costs.storyboard_per_frame_s * plan.total_frames
        else:
            cost = costs.package_s(plan.total_frames)
        # A spec waits for the specs that write its inputs (packaging reads no storyboard).
        writers = tuple(s.name for s in specs if set(s.outputs) & set(spec.inputs))
        after = ("probe",) if spec.step != "package" else writers
        nodes.append(Node(spec.name, spec.step, cost, spec.num_cpus, after))
    return nodes


def list_schedule(nodes: list[Node], cpus: int) -> float:
    """Wall time of the graph on ``cpus`` CPUs: whenever CPUs are free, start the longest ready task."""
    waiting = {node.name: set(node.after) for node in nodes}
    by_name = {node.name: node for node in nodes}
    dependants: dict[str, list[str]] = {}
    for node in nodes:
        for parent in node.after:
            dependants.setdefault(parent, []).append(node.name)
    ready = [node for node in nodes if not node.after]
    running: list[tuple[float, str]] = []
    now, free = 0.0, float(cpus)
    while ready or running:
        ready.sort(key=lambda n: -n.cost_s)
        for node in list(ready):
            if node.cpus <= free + 1e-9:
                free -= node.cpus
                ready.remove(node)
                heapq.heappush(running, (now + node.cost_s, node.name))
        now, name = heapq.heappop(running)
        free += by_name[name].cpus
        for child in dependants.get(name, []):
            waiting[child].discard(name)
            if not waiting[child]:
                ready.append(by_name[child])
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12, help="length of the measured source")
    parser.add_argument("--height", type=int, default=1080, choices=[360, 480, 720, 1080])
    parser.add_argument("--title-s", type=float, default=600.0, help="length of the projected title")
    args = parser.parse_args()

    print(f"measuring every task of a {args.seconds} s {args.height}p job, one at a time:")
    costs, info, measured_total = measure(args.seconds, args.height)
    print(f"  all tasks one after another: {measured_total:.1f} s for {args.seconds} s of video")
    print(
        f"fitted: probe {costs.probe_s:.2f} s, encode chunk {costs.encode_fixed_s:.2f} s + "
        f"{costs.encode_per_frame_s * 1000:.1f} ms/frame, audio {costs.audio_fixed_s:.2f} s + "
        f"{costs.audio_per_s:.3f} s per s, "
        f"poster {costs.poster_s:.2f} s, storyboard {costs.storyboard_per_frame_s * 1000:.2f} ms/frame"
        f" (one pass) or {costs.storyboard_per_tile_s:.2f} s/tile (seeking), "
        f"package {costs.package_fixed_s:.2f} s + "
        f"{costs.package_per_frame_s * 1000:.2f} ms/frame"
    )
    print(
        f"projection for a {args.title_s:.0f} s {args.height}p title (list scheduling over the task graph):"
    )
    print(f"  {'CPUs':>4}  {'encodes':>7}  {'wall':>9}  {'efficiency':>10}  limited by (wall lost to each)")
    for cpus in CPU_COUNTS:
        nodes = job_graph(costs, info, args.title_s, cpus)
        wall = list_schedule(nodes, cpus)
        work = sum(node.cost_s * node.cpus for node in nodes)
        # Wall time beyond the perfect share (work / CPUs), by cause: the serial steps before
        # and after the encodes, and the parallel phase running longer than its share (the
        # last wave of chunks only part full, or one long audio task).
        serial = {
            "probe": costs.probe_s,
            "package": next(n.cost_s for n in nodes if n.step == "package"),
        }
        # The storyboard is one task over the whole title: what it costs beyond its share of
        # the CPUs is how much later the job ends than without it, less that share.
        without = [n for n in nodes if n.step != "storyboard"]
        wall_without = list_schedule(without, cpus)
        storyboard_work = sum(n.cost_s * n.cpus for n in nodes if n.step == "storyboard")
        parallel_work = sum(n.cost_s * n.cpus for n in without if n.step not in serial)
        losses = {
            **{f"serial {step}": seconds * (1 - 1 / cpus) for step, seconds in serial.items()},
            "uneven last wave": wall_without - sum(serial.values()) - parallel_work / cpus,
            "storyboard": max(0.0, wall - wall_without - storyboard_work / cpus),
        }
        limiter = max(losses, key=lambda cause: losses[cause])
        encodes = [n.cost_s for n in nodes if n.step == "encode"]
        print(
            f"  {cpus:>4}  {len(encodes):>7}  {wall:8.1f}s  {work / (cpus * wall):>10.0%}  "
            f"{limiter} ({losses[limiter] / wall:.0%} of wall; "
            + ", ".join(f"{cause} {seconds:.1f} s" for cause, seconds in losses.items())
            + ")"
        )


if __name__ == "__main__":
    main()
