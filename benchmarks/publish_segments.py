"""Publishing a rendition's segments: ``Storage.put_many`` against sequential boto3 PUTs.

Both run side by side in one process against the same S3 endpoint on loopback (moto's
threaded server), alternating rounds so drift hits both equally. Prints the median of each
and the ratio (sequential / parallel; above 1 means put_many is faster).

    .venv/bin/python benchmarks/publish_segments.py [--segments 200] [--kib 64] [--rounds 5]

Loopback has no network latency, so this understates the gain against a real S3 endpoint,
where each PUT waits tens of milliseconds and parallel PUTs overlap those waits.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import boto3

from cluster.settings import StorageSettings
from cluster.storage import Storage
from serve.deployment import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--kib", type=int, default=64, help="size of one segment")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's per-request log
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="bench")
        storage = Storage(
            StorageSettings(
                url="s3://bench/vod", s3_endpoint_url=endpoint, upload_concurrency=args.concurrency
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for i in range(args.segments):
                path = Path(tmp) / f"seg-{i:05d}.m4s"
                path.write_bytes(os.urandom(args.kib * 1024))
                files.append(path)

            def sequential(round_: int) -> None:
                for path in files:
                    client.upload_file(str(path), "bench", f"seq/{round_}/{path.name}")

            def parallel(round_: int) -> None:
                storage.put_many([(path, f"par/{round_}/{path.name}") for path in files])

            parallel(-1)  # warm both connection pools
            sequential(-1)
            times: dict[str, list[float]] = {"sequential boto3": [], "Storage.put_many": []}
            for round_ in range(args.rounds):
                for name, run in (("sequential boto3", sequential), ("Storage.put_many", parallel)):
                    start = time.perf_counter()
                    run(round_)
                    times[name].append(time.perf_counter() - start)
    finally:
        server.stop()

    seq = statistics.median(times["sequential boto3"])
    par = statistics.median(times["Storage.put_many"])
    print(f"{args.segments} segments x {args.kib} KiB, {args.rounds} rounds, concurrency {args.concurrency}")
    print(f"  sequential boto3 : {seq:.3f} s (median)")
    print(f"  Storage.put_many : {par:.3f} s (median)")
    print(f"  ratio sequential/put_many: {seq / par:.2f}x")


if __name__ == "__main__":
    main()
