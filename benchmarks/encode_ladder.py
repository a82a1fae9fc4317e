"""One upload end to end: the chunked vodray job against plain ffmpeg making the same ladder.

Every side produces DASH + HLS over CMAF segments of the same renditions (same x264 settings
and keyframe grid) plus the stream's audio and an MP3:

  (a) vodray job: the whole job through the real stack (local Ray, catalog and dispatcher
      actors, storage): probe, chunk encodes in parallel, whole-title audio, poster, stitch,
      package, publish, catalog.
  (b) plain ffmpeg, one command: ``plain_ffmpeg.single_command_ladder_argv``, one decode through ``split``.
  (c) plain ffmpeg, one per rendition: every rendition and the audio as its own ffmpeg, all
      at once, then one stream-copy packaging command.

CPU utilisation is the CPU time of this process's whole tree (Ray's raylet and workers,
ffmpeg children included) over wall time times the CPUs. Rounds alternate the sides so drift
hits all of them; prints medians and **best plain / vodray** (above 1: vodray finished sooner).

    .venv/bin/python benchmarks/encode_ladder.py [--seconds 60] [--height 1080] [--rounds 1]
        [--strategy split|per-rendition]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """CPU seconds used by ``root`` and every process below it, reaped children included."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the command.
        times[pid] = sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
    total = 0.0
    for pid, cpu in times.items():
        ancestor = pid
        while ancestor not in (0, 1, root):
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            total += cpu
    return total


def measured(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process tree) of one run."""
    cpu, start = tree_cpu_s(os.getpid()), time.perf_counter()
    run()
    return time.perf_counter() - start, tree_cpu_s(os.getpid()) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the generated source")
    parser.add_argument("--height", type=int, default=1080, choices=[360, 480, 720, 1080])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--strategy", choices=["split", "per-rendition"], default=None)
    args = parser.parse_args()

    import ray
    from plain_ffmpeg import rendition_argv, single_command_ladder_argv  # beside this script

    from cluster.deploy import start_backend
    from cluster.runtime import connect
    from cluster.settings import load_settings
    from pipelines.demo import make_clip
    from pipelines.ingest import ingest_file
    from pipelines.video import encode, ffmpeg, package
    from pipelines.video.plan import plan_video
    from pipelines.video.probe import probe

    env = {}
    if args.strategy:
        env["VODRAY_CHUNK_STRATEGY"] = args.strategy
    with tempfile.TemporaryDirectory(prefix="vodray-bench-") as tmp:
        root = Path(tmp)
        settings = load_settings({**os.environ, **env, "VODRAY_DATA_DIR": str(root / "data")})
        source = make_clip(
            root / "source.mp4", seconds=args.seconds, width=args.height * 16 // 9, height=args.height, fps=25
        )
        plan = plan_video(probe(source), settings.pipeline)
        connect(settings, start=True)
        cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        chunks = len(
            plan_video(
                probe(source),
                settings.pipeline,
                cluster_cpus=max(1, cpus // settings.pipeline.encode_threads),
            ).chunks
        )
        try:
            backend = start_backend(settings)
            catalog, dispatcher = backend.catalog, backend.dispatcher
            ray.get(catalog.create_user.remote("bench", "not-a-login"))

            def vodray_job(round_: int) -> None:
                video_id = ingest_file(settings, source, title=f"round {round_}", owner="bench")
                # The dispatcher notices its job end within 0.1 s and costs no CPU meanwhile;
                # polling the catalog costs ~4 ms of CPU a poll, or a late finish between polls.
                assert ray.get(dispatcher.wait_idle.remote(3600.0))
                video = ray.get(catalog.get_video.remote(video_id))
                assert video["status"] == "ready", video["error"]

            def one_command(round_: int) -> None:
                out = root / f"one-{round_}"
                for index in range(len(plan.renditions) + 1):
                    (out / str(index)).mkdir(parents=True)
                ffmpeg.run(single_command_ladder_argv(source, out, plan))

            def per_rendition(round_: int) -> None:
                out = root / f"parallel-{round_}"
                out.mkdir()
                aac, mp3 = out / "audio.m4a", out / "audio.mp3"
                with ThreadPoolExecutor(len(plan.renditions) + 2) as pool:
                    encoded = [
                        pool.submit(ffmpeg.run, rendition_argv(source, out / f"{r.name}.mp4", plan, r))
                        for r in plan.renditions
                    ]
                    audio = [pool.submit(encode.encode_aac, source, aac, plan)]
                    audio.append(pool.submit(encode.encode_mp3, source, mp3, plan))
                    for future in encoded:
                        future.result()
                    paths = [out / f"{r.name}.mp4" for r in plan.renditions]
                    for future in audio:
                        future.result()
                package.package(list(zip(plan.renditions, paths, strict=True)), aac, out / "package", plan)

            sides = {
                "(a) vodray job": vodray_job,
                "(b) one ffmpeg, split": one_command,
                "(c) ffmpeg per rendition": per_rendition,
            }
            walls: dict[str, list[float]] = {name: [] for name in sides}
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            for round_ in range(args.rounds):
                for name, side in sides.items():
                    wall, used = measured(functools.partial(side, round_))
                    walls[name].append(wall)
                    cpu[name].append(used)
        finally:
            ray.shutdown()

    ladder = ", ".join(r.name for r in plan.renditions)
    strategy = settings.pipeline.chunk_strategy
    print(
        f"{args.seconds} s {args.height}p source -> {ladder} + audio + MP3; {args.rounds} round(s),"
        f" {cpus} CPUs; vodray: {chunks} chunks, strategy {strategy},"
        f" {settings.pipeline.encode_threads} thread(s) a task"
    )
    median = {name: statistics.median(values) for name, values in walls.items()}
    for name in sides:
        wall = median[name]
        utilisation = statistics.median(c / w for c, w in zip(cpu[name], walls[name], strict=True)) / cpus
        print(
            f"  {name:<26}: {wall:7.2f} s  {args.seconds / wall:5.2f}x realtime  CPU {utilisation:4.0%}"
            f"  [{', '.join(f'{t:.2f}' for t in walls[name])}]"
        )
    best_plain = min(median["(b) one ffmpeg, split"], median["(c) ffmpeg per rendition"])
    print(f"  best plain / vodray: {best_plain / median['(a) vodray job']:.2f}x")


if __name__ == "__main__":
    main()
