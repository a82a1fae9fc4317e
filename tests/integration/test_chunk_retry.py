"""A worker killed mid-chunk costs that chunk only; a failed job keeps its finished chunks.

Encodes are counted from the outside: a watcher thread reads /proc for the ffmpeg chunk
encodes of the test's source (each identified by where it seeks to) while the job runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from cluster.layout import source_key, work_root
from pipelines.job import Job

CHUNKS = 4
"""16 s in 2 s segments on the 2 CPUs of the test's Ray: three chunks a CPU wanted, 4 s each."""


class ChunkEncodes(threading.Thread):
    """Every ffmpeg chunk encode of ``source`` seen running: pid -> (seek point, parent pid)."""

    def __init__(self, source_key_path: str) -> None:
        super().__init__(daemon=True)
        self.needle = source_key_path
        self.seen: dict[int, tuple[str, int]] = {}
        self.running: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            now = set()
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    continue
                words = [a.decode(errors="replace") for a in argv]
                if words and words[0] == "ffmpeg" and "-filter_complex" in words and self.needle in words:
                    seek = words[words.index("-ss") + 1] if "-ss" in words else "0"
                    self.seen.setdefault(int(entry.name), (seek, ppid))
                    now.add(int(entry.name))
            self.running = now
            time.sleep(0.01)

    def stop(self) -> Counter[str]:
        self._halt.set()
        self.join()
        return Counter(seek for seek, _ in self.seen.values())


def finished_chunks(storage: Any, video_id: str) -> list[str]:
    return [
        key
        for key in storage.list(work_root(video_id))
        if "/chunks/" in key and not key.rsplit("/", 1)[-1].startswith(".")
    ]


def kill_one_running_encode(storage: Any, video_id: str, watcher: ChunkEncodes) -> str:
    """Once two chunks are done, SIGKILL the Ray worker running a chunk encode (and its ffmpeg)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        running = [pid for pid in watcher.running if watcher.seen[pid][0] != "0"]
        if len(finished_chunks(storage, video_id)) >= 2 and running:
            pid = running[0]
            seek, worker = watcher.seen[pid]
            os.kill(worker, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
            return seek
        time.sleep(0.01)
    raise AssertionError("no chunk encode to kill")


def new_video(catalog: Any, storage: Any, user: Any, source: Path) -> str:
    vid = uuid.uuid4().hex
    storage.put_file(source, source_key(vid))
    ray.get(catalog.create_video.remote(vid, user.id, "chunks", "", "private", source_key(vid), 1))
    return vid


def test_a_worker_killed_mid_chunk_reruns_only_that_chunk(
    dispatcher: Any, catalog: Any, storage: Any, clip: Any, new_user: Any
) -> None:
    source = clip(seconds=16, width=1920, height=1080, fps=25, audio=True, subtitles=False)
    vid = new_video(catalog, storage, new_user(), source)
    watcher = ChunkEncodes(storage.path(source_key(vid)))
    watcher.start()
    try:
        ray.get(dispatcher.submit.remote(vid))
        killed = kill_one_running_encode(storage, vid, watcher)
        assert ray.get(dispatcher.wait_idle.remote(300))
    finally:
        launches = watcher.stop()
    video = ray.get(catalog.get_video.remote(vid))
    assert video["status"] == "ready", video
    assert video["job"]["attempts"] == 1, "Ray retried the task; the job itself ran once"
    assert len(launches) == CHUNKS, launches
    assert launches[killed] == 2
    assert all(count == 1 for seek, count in launches.items() if seek != killed), launches


def test_a_failed_job_keeps_finished_chunks_and_its_retry_reuses_them(
    settings: Any, deployment: Any, catalog: Any, storage: Any, clip: Any, new_user: Any
) -> None:
    source = clip(seconds=16, width=1920, height=1080, fps=25, audio=True, subtitles=False)
    vid = new_video(catalog, storage, new_user(), source)
    no_retries = replace(settings, pipeline=replace(settings.pipeline, task_retries=0))
    watcher = ChunkEncodes(storage.path(source_key(vid)))
    watcher.start()
    try:
        loop = asyncio.new_event_loop()
        job = loop.create_task(Job(vid, no_retries, catalog).run())
        killer = loop.run_in_executor(None, kill_one_running_encode, storage, vid, watcher)
        first, killed = loop.run_until_complete(asyncio.gather(job, killer))
        failed = ray.get(catalog.get_video.remote(vid))
        kept = finished_chunks(storage, vid)
        first_launches = Counter(watcher.stop())
        watcher = ChunkEncodes(storage.path(source_key(vid)))
        watcher.start()
        second = loop.run_until_complete(Job(vid, settings, catalog).run())
        loop.close()
    finally:
        second_launches = watcher.stop()

    assert first is None and failed["status"] == "failed"
    assert re.fullmatch(
        r"encoding chunk \d+ of every rendition failed: the worker running it stopped unexpectedly; "
        r"the job can be run again",
        failed["error"],
    ), failed["error"]
    assert kept, "finished chunks must survive a failed job"
    assert second is not None
    video = ray.get(catalog.get_video.remote(vid))
    assert video["status"] == "ready" and video["job"]["attempts"] == 2
    reused = {key for key in second["reused"] if "/chunks/" in key}
    assert reused >= set(kept), "the retry must reuse every chunk the failed run finished"
    assert killed in second_launches
    # The retry encoded exactly the chunks it did not find: none finished earlier ran twice.
    assert sum(second_launches.values()) == CHUNKS - len(reused) // 2
    assert first_launches[killed] == 1
    assert storage.list(work_root(vid)) == []


def test_a_job_that_keeps_crashing_stops_after_its_attempts(
    settings: Any, deployment: Any, catalog: Any, storage: Any, clip: Any, new_user: Any
) -> None:
    vid = new_video(catalog, storage, new_user(), clip(seconds=3))
    # What a job that brought its worker down on every run leaves: still running, attempts used up.
    limit = settings.pipeline.job_attempts
    ray.get(catalog.update_job.remote(vid, state="running", step="encode", attempts=limit))
    assert asyncio.run(Job(vid, settings, catalog).run()) is None
    video = ray.get(catalog.get_video.remote(vid))
    assert video["status"] == "failed"
    assert video["error"] == f"gave up after {limit} attempts; the last one: it stopped during encode"
    assert vid not in ray.get(catalog.unfinished_jobs.remote())
    assert storage.exists(source_key(vid)), "the source stays"


def test_a_resumed_job_keeps_its_chunking_when_the_cluster_changed_size(
    settings: Any, deployment: Any, catalog: Any, storage: Any, clip: Any, new_user: Any, tmp_path: Path
) -> None:
    import json

    from cluster import layout
    from pipelines.video import encode
    from pipelines.video.plan import plan_video
    from pipelines.video.probe import probe

    source = clip(seconds=16, width=640, height=360, fps=25, audio=True, subtitles=False)
    vid = new_video(catalog, storage, new_user(), source)
    # The first run was planned on 8 CPUs (chunks of one segment) and finished 3 chunks.
    earlier = plan_video(probe(source), settings.pipeline, cluster_cpus=8)
    assert (
        len(earlier.chunks) == 8
        and earlier.plan_id != plan_video(probe(source), settings.pipeline, 2).plan_id
    )
    work = layout.work_prefix(vid, earlier.plan_id)
    storage.write_bytes(
        layout.plan_record_key(work), json.dumps({"chunk_frames": earlier.chunk_frames}).encode()
    )
    made = []
    for chunk in earlier.chunks[:3]:
        outputs = [(r, tmp_path / f"{r.name}-{chunk.name}.mp4") for r in earlier.renditions]
        encode.encode_chunk(source, outputs, earlier, chunk, threads=1)
        for rendition, local in outputs:
            storage.put_file(local, chunk.key(work, rendition.name))
            made.append(chunk.key(work, rendition.name))

    summary = asyncio.run(Job(vid, settings, catalog).run())  # this Ray has 2 CPUs
    assert summary is not None
    video = ray.get(catalog.get_video.remote(vid))
    assert video["status"] == "ready" and video["job"]["plan_id"] == earlier.plan_id
    assert video["job"]["chunks_total"] == 8
    assert sorted(key for key in summary["reused"] if "/chunks/" in key) == sorted(made)
