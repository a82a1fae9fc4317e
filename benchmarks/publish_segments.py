"""Publishing segments to S3 with latency: vodray's uploader against two plain ways.

An S3 round trip costs tens of milliseconds; a loopback server has none, so every request goes
through a proxy that adds ``--latency-ms`` (``tests/integration/s3_proxy.py``) in front of moto's
server, each in a process of their own. Three sides publish the same files, alternating
rounds so drift hits each alike:

- sequential boto3: one client, one ``put_object`` after another;
- batches of 10 per Ray task: the usual hand-made pattern, one task per 10 files, each making
  its own client and putting its files one after another;
- vodray: ``pipelines.video.publish.publish`` (batches as Ray tasks, parallel PUTs in each over one
  warm connection pool per worker process).

Prints objects/s of each (median round) and vodray's speed-up over both.

    .venv/bin/python benchmarks/publish_segments.py [--objects 500] [--kib 256] [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cluster.settings import StorageSettings

REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench"
PLAIN_BATCH = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--kib", type=int, default=256, help="size of one segment")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="added to every request")
    parser.add_argument("--rounds", type=int, default=3)
    defaults = StorageSettings(url="s3://")
    parser.add_argument("--tasks", type=int, default=defaults.upload_tasks, help="VODRAY_UPLOAD_TASKS")
    parser.add_argument(
        "--batch", type=int, default=defaults.upload_batch_files, help="VODRAY_UPLOAD_BATCH_FILES"
    )
    parser.add_argument(
        "--concurrency", type=int, default=defaults.upload_concurrency, help="VODRAY_UPLOAD_CONCURRENCY"
    )
    args = parser.parse_args()

    # Before Ray starts, so its workers inherit them: credentials for the loopback S3.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import boto3
    import ray

    from cluster.storage import Storage, content_type
    from pipelines.video.publish import publish
    from serve.deployment import free_port

    # moto and the proxy each in a process of their own: neither waits on the other's GIL.
    moto_port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream = f"http://127.0.0.1:{moto_port}"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.s3_proxy", "--latency-ms", str(args.latency_ms)]
        + ["--upstream", upstream],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdout is not None and proxy.stdin is not None
    endpoint = proxy.stdout.readline().split()[0]
    wait_for_server(upstream)
    ray.init(include_dashboard=False, logging_level="WARNING")
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)

        @ray.remote
        def put_batch(files: list[tuple[Path, str]]) -> None:
            client = boto3.client("s3", endpoint_url=endpoint)
            for local, key in files:
                with open(local, "rb") as body:
                    client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type(key))

        sequential_client = boto3.client("s3", endpoint_url=endpoint)

        def sequential(files: list[tuple[Path, str]]) -> None:
            for local, key in files:
                with open(local, "rb") as body:
                    sequential_client.put_object(
                        Bucket=BUCKET, Key=key, Body=body, ContentType=content_type(key)
                    )

        def batches_of_ten(files: list[tuple[Path, str]]) -> None:
            ray.get([put_batch.remote(files[i : i + PLAIN_BATCH]) for i in range(0, len(files), PLAIN_BATCH)])

        storage = Storage(
            StorageSettings(
                url=f"s3://{BUCKET}",
                s3_endpoint_url=endpoint,
                upload_tasks=args.tasks,
                upload_batch_files=args.batch,
                upload_concurrency=args.concurrency,
            )
        )

        def vodray(files: list[tuple[Path, str]]) -> None:
            publish(storage, files, [], video_id=uuid.uuid4().hex)

        sides: dict[str, Callable[[list[tuple[Path, str]]], None]] = {
            "sequential boto3": sequential,
            f"batches of {PLAIN_BATCH} per Ray task": batches_of_ten,
            "vodray publish": vodray,
        }
        with tempfile.TemporaryDirectory(prefix="vodray-bench-") as tmp:
            locals_ = []
            for i in range(args.objects):
                path = Path(tmp) / f"seg-{i + 1:05d}.m4s"
                path.write_bytes(os.urandom(args.kib * 1024))
                locals_.append(path)

            def files_for(side: str, round_: int) -> list[tuple[Path, str]]:
                prefix = f"{side.split()[0]}/{round_}"
                return [(path, f"{prefix}/{path.name}") for path in locals_]

            # One whole untimed round first: every side's worker processes started, its clients
            # made and its connections open, as in a service that has published before.
            for side, run in sides.items():
                run(files_for(side, -1))
            seconds: dict[str, list[float]] = {side: [] for side in sides}
            server_cpu_s = {"moto": -cpu_seconds(moto.pid), "proxy": -cpu_seconds(proxy.pid)}
            for round_ in range(args.rounds):
                for side, run in sides.items():
                    start = time.perf_counter()
                    run(files_for(side, round_))
                    seconds[side].append(time.perf_counter() - start)
            server_cpu_s["moto"] += cpu_seconds(moto.pid)
            server_cpu_s["proxy"] += cpu_seconds(proxy.pid)
    finally:
        ray.shutdown()
        proxy.stdin.close()
        proxy.wait(30)
        moto.terminate()
        moto.wait(30)

    print(
        f"{args.objects} objects x {args.kib} KiB, {args.latency_ms:g} ms added per request, "
        f"{args.rounds} rounds, {os.cpu_count()} CPUs; vodray: {storage.settings.upload_tasks} tasks x "
        f"{storage.settings.upload_concurrency} PUTs, {storage.settings.upload_batch_files} files per task"
    )
    rate = {side: args.objects / statistics.median(times) for side, times in seconds.items()}
    for side, times in seconds.items():
        rounds = ", ".join(f"{t:.2f}" for t in times)
        print(f"  {side:30s}: {rate[side]:7.1f} objects/s  (median of {rounds} s)")
    puts = args.objects * args.rounds * len(sides)
    moto_ms, proxy_ms = (1000 * server_cpu_s[name] / puts for name in ("moto", "proxy"))
    print(
        f"  server CPU per PUT: moto {moto_ms:.1f} ms, proxy {proxy_ms:.1f} ms; with a whole core each, "
        f"no client can beat {1000 / max(moto_ms, proxy_ms):.0f} objects/s here "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    ours = rate["vodray publish"]
    print(f"  vodray / sequential boto3          : {ours / rate['sequential boto3']:.1f}x  (goal >= 8)")
    batches = rate[f"batches of {PLAIN_BATCH} per Ray task"]
    print(f"  vodray / batches of {PLAIN_BATCH} per Ray task: {ours / batches:.2f}x  (goal >= 1.5)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_server(url: str, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    main()
