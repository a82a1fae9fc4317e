"""One upload end to end: a vodray job against ONE plain ffmpeg command making the same ladder.

Both produce DASH + HLS over CMAF segments of the same renditions (same x264 settings and
keyframe grid) and an MP3. The vodray side is the whole job through the real stack (local
Ray, catalog and dispatcher actors, storage): probe, per-rendition encode tasks in parallel,
whole-title audio, poster, package, publish, catalog. The plain side is
``pipelines.ffmpeg.single_command_ladder_argv``: one process, one decode, no Ray.
Rounds alternate so drift hits both; prints medians and the ratio plain / vodray (above 1
means vodray finished sooner).

    .venv/bin/python benchmarks/encode_ladder.py [--seconds 20] [--height 720] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the generated source")
    parser.add_argument("--height", type=int, default=720, choices=[360, 480, 720, 1080])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import ray

    from cluster.deploy import start_backend
    from cluster.runtime import connect
    from cluster.settings import load_settings
    from pipelines import ffmpeg
    from pipelines.demo import make_clip
    from pipelines.ingest import ingest_file, wait_until_finished
    from pipelines.plan import plan_video
    from pipelines.probe import probe

    with tempfile.TemporaryDirectory(prefix="vodray-bench-") as tmp:
        root = Path(tmp)
        settings = load_settings({"VODRAY_DATA_DIR": str(root / "data")})
        source = make_clip(
            root / "source.mp4", seconds=args.seconds, width=args.height * 16 // 9, height=args.height, fps=25
        )
        plan = plan_video(probe(source), settings.pipeline)
        connect(settings, start=True)
        try:
            catalog = start_backend(settings).catalog
            ray.get(catalog.create_user.remote("bench", "not-a-login"))
            times: dict[str, list[float]] = {"vodray job": [], "plain ffmpeg": []}
            for round_ in range(args.rounds):
                start = time.perf_counter()
                video_id = ingest_file(settings, source, title=f"round {round_}", owner="bench")
                video = wait_until_finished(settings, video_id, show_progress=False)
                times["vodray job"].append(time.perf_counter() - start)
                assert video["status"] == "ready", video["error"]

                out = root / f"plain-{round_}"
                for index in range(len(plan.renditions) + 1):
                    (out / str(index)).mkdir(parents=True)
                start = time.perf_counter()
                ffmpeg.run(ffmpeg.single_command_ladder_argv(source, out, plan))
                times["plain ffmpeg"].append(time.perf_counter() - start)
        finally:
            ray.shutdown()

    job, plain = statistics.median(times["vodray job"]), statistics.median(times["plain ffmpeg"])
    ladder = ", ".join(r.name for r in plan.renditions)
    cpus = os.cpu_count()
    print(
        f"{args.seconds} s {args.height}p source -> {ladder} + audio + MP3; {args.rounds} rounds, {cpus} CPUs"
    )
    print(f"  vodray job   : {job:.2f} s (median)  [{', '.join(f'{t:.2f}' for t in times['vodray job'])}]")
    print(
        f"  plain ffmpeg : {plain:.2f} s (median)  [{', '.join(f'{t:.2f}' for t in times['plain ffmpeg'])}]"
    )
    print(f"  ratio plain/vodray: {plain / job:.2f}x")


if __name__ == "__main__":
    main()
