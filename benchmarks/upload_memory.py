"""Memory of a large upload: the extra RSS of the ingress and the API replica while
``POST /v1/videos`` streams a file of random bytes, against holding the body whole.

For each ingress (``VODRAY_HTTP_INGRESS``: Serve's Python proxy, Serve's HAProxy ingress) it
starts a local Ray and the whole vodray stack as the integration tests do, uploads ``--mb`` MiB
over loopback as multipart (a generator body read from a temp file, never built in memory),
samples the memory of the ingress process and the replica every 50 ms, and prints each one's
peak above its idle RSS as a ratio of the upload size. The plain alternative, the body held
whole in one process, is a ratio of 1.0 (before any copies of it).

    .venv/bin/python benchmarks/upload_memory.py [--mb 400] [--mbps 0] [--ingress both]

``--mbps`` throttles the client (0: as fast as loopback goes, the hardest case). Neither
ingress passes back-pressure from the replica to the client, so the replica holds whatever
arrives faster than it writes: unthrottled on a machine of few cores, where the client, the
ingress and the replica share them, the numbers move with who gets the CPU (run it twice).
Each stored source is checked byte for byte against what was sent. "private" leaves out shared
pages: Ray's object store is shared memory, and what of it a process touched counts in its RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cluster.settings import INGRESSES
from cluster.storage import Storage
from serve.deployment import free_port

MIB = 1024 * 1024
SAMPLE_INTERVAL_S = 0.05
INGRESS_PROCESS = {"serve": ("Serve proxy", "ray::ProxyActor"), "haproxy": ("HAProxy", "haproxy")}
"""Per ingress: a label, and how its process is told apart (a command line prefix)."""
REPLICA_PROCESS = ("API replica", "ray::ServeReplica:vodray:VodrayApi")


@dataclass
class MemorySampler:
    """Samples the memory of a few processes from a thread; keeps the idle baseline and the peak.

    Two measures per process: ``rss``, and ``private``: RSS less its shared pages.
    """

    pids: dict[str, int]
    baseline: dict[tuple[str, str], int] = field(default_factory=dict)
    peak: dict[tuple[str, str], int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        import psutil  # vendored by Ray (ray/thirdparty_files), importable once ray is

        self._procs = {name: psutil.Process(pid) for name, pid in self.pids.items()}

    def sample(self) -> dict[tuple[str, str], int]:
        values = {}
        for name, proc in self._procs.items():
            info = proc.memory_info()
            values[name, "rss"] = info.rss
            values[name, "private"] = info.rss - info.shared
        return values

    def settle(self, seconds: float = 1.0) -> None:
        """The idle baseline: the lowest value over a short quiet period."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for key, value in self.sample().items():
                self.baseline[key] = min(value, self.baseline.get(key, value))
            time.sleep(SAMPLE_INTERVAL_S)
        self.peak = dict(self.baseline)

    def extra(self, name: str, measure: str) -> int:
        return self.peak[name, measure] - self.baseline[name, measure]

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            for key, value in self.sample().items():
                self.peak[key] = max(value, self.peak[key])


def find_processes(ingress: str) -> dict[str, int]:
    """The ingress and the replica of this process's embedded Ray (its descendants only)."""
    import psutil

    wanted = dict([INGRESS_PROCESS[ingress], REPLICA_PROCESS])
    found: dict[str, psutil.Process] = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            title = Path((proc.cmdline() or [""])[0]).name  # Ray workers retitle themselves
        except psutil.Error:
            continue
        for name, prefix in wanted.items():
            # HAProxy reloads by starting a new process: the newest is the one serving.
            newest = name not in found or proc.create_time() > found[name].create_time()
            if title.startswith(prefix) and newest:
                found[name] = proc
    missing = set(wanted) - set(found)
    if missing:
        raise RuntimeError(f"did not find the process of: {', '.join(sorted(missing))}")
    return {name: proc.pid for name, proc in found.items()}


def make_source(path: Path, size: int) -> str:
    """Random bytes into ``path``, 4 MiB at a time, flushed to disk (so that writing them back
    does not slow the upload down); returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(4 * MIB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def multipart_body(source: Path, boundary: str, chunk: int, mbps: float) -> tuple[int, Iterator[bytes]]:
    """The form (``title`` then ``file``) as a length and a generator, paced to ``mbps`` if set."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nupload benchmark\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="source.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + source.stat().st_size + len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        started = time.monotonic()
        sent = 0
        with source.open("rb") as body:
            while block := body.read(chunk):
                yield block
                sent += len(block)
                if mbps > 0:
                    ahead = sent / (mbps * 1e6) - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        yield tail

    return length, chunks()


def stored_sha256(storage: Storage, video_id: str) -> str:
    digest = hashlib.sha256()
    with storage.open(f"sources/{video_id}/source", "rb") as stored:
        while block := stored.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


def register(client: httpx.Client) -> dict[str, str]:
    credentials = {"username": f"bench{uuid.uuid4().hex[:8]}", "password": f"pw-{uuid.uuid4().hex}"}
    client.post("/v1/auth/register", json=credentials).raise_for_status()
    tokens = client.post("/v1/auth/login", json=credentials)
    tokens.raise_for_status()
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


@dataclass(frozen=True)
class Measured:
    ingress: str
    seconds: float
    sampler: MemorySampler


def measure(ingress: str, args: argparse.Namespace, source: Path, digest: str, data_dir: Path) -> Measured:
    """One whole stack with ``ingress``, one upload, then everything stopped again."""
    import ray
    from ray import serve

    from cluster.deploy import deploy
    from cluster.runtime import connect
    from cluster.settings import load_settings

    settings = load_settings(
        {
            "HOME": str(data_dir),
            "VODRAY_DATA_DIR": str(data_dir),
            "VODRAY_HTTP_INGRESS": ingress,
            "VODRAY_MAX_UPLOAD_MB": str(args.mb + 16),
            "VODRAY_UPLOADS_PER_HOUR": "1000",
            "VODRAY_HTTP_PORT": str(free_port()),
        }
    )
    connect(settings, start=True)
    try:
        with httpx.Client(base_url=deploy(settings).api_url, timeout=600) as client:
            headers = register(client)
            sampler = MemorySampler(find_processes(ingress))
            sampler.settle()
            boundary = uuid.uuid4().hex
            length, body = multipart_body(source, boundary, args.chunk_kib * 1024, args.mbps)
            headers |= {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            }
            with sampler:
                started = time.perf_counter()
                response = client.post("/v1/videos", content=body, headers=headers)
                seconds = time.perf_counter() - started
                time.sleep(0.5)  # late growth, e.g. a backlog drained after the answer
        if response.status_code != 202:
            raise SystemExit(f"{ingress}: upload failed: HTTP {response.status_code} {response.text[:300]}")
        if stored_sha256(Storage(settings.storage), response.json()["id"]) != digest:
            raise SystemExit(f"{ingress}: the stored source differs from the bytes sent")
        return Measured(ingress, seconds, sampler)
    finally:
        serve.shutdown()
        ray.shutdown()


def report(results: list[Measured], args: argparse.Namespace) -> None:
    size = args.mb * MIB
    rate = f"{args.mbps:g} MB/s" if args.mbps > 0 else "unthrottled"
    print(f"\nupload of {args.mb} MiB over loopback, client {rate}; peak memory above idle while it streams")
    columns = ("MB/s", 6), ("idle RSS MiB", 14), ("extra RSS MiB", 15), ("ratio", 8), ("private", 9)
    print(f"{'ingress':<9}{'process':<13}" + "".join(f"{title:>{width}}" for title, width in columns))
    for result in results:
        speed = size / result.seconds / 1e6
        for name in result.sampler.pids:
            extra = result.sampler.extra(name, "rss")
            private = result.sampler.extra(name, "private")
            idle = result.sampler.baseline[name, "rss"] / MIB
            print(
                f"{result.ingress:<9}{name:<13}{speed:>6.0f}{idle:>14.0f}{extra / MIB:>15.1f}"
                f"{extra / size:>8.3f}{private / size:>9.3f}"
            )
    print(f"{'the plain alternative: the body held whole in one process':<70}{1.0:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=400, help="size of the uploaded file (MiB)")
    parser.add_argument("--mbps", type=float, default=0.0, help="client send rate in MB/s; 0: unthrottled")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="size of the client's writes")
    parser.add_argument("--ingress", choices=(*INGRESSES, "both"), default="both")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

    work = Path(tempfile.mkdtemp(prefix="vodray-upload-bench-"))
    try:
        source = work / "source.bin"
        digest = make_source(source, args.mb * MIB)
        ingresses = INGRESSES if args.ingress == "both" else (args.ingress,)
        results = [measure(ingress, args, source, digest, work / ingress) for ingress in ingresses]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)


if __name__ == "__main__":
    main()
