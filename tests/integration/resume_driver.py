"""A vodray process tree of its own, for the crash test: ``python -m tests.integration.resume_driver``.

``start DATA_DIR SOURCE``: start an embedded Ray and the backend, ingest SOURCE, print the
video id, then keep running until killed. ``resume DATA_DIR``: start them again (the
dispatcher resumes unfinished jobs), record every chunk file's mtime while the job runs,
and print the finished video with those mtimes as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import ray

from cluster.deploy import start_backend
from cluster.runtime import connect
from cluster.settings import Settings, load_settings
from cluster.storage import Storage
from pipelines.ingest import ingest_file
from tests.integration.conftest import integration_env

RESUME_ENV = {"VODRAY_X264_PRESET": "slow", "VODRAY_CHUNK_S": "2", "VODRAY_NUM_CPUS": "2"}


def settings_for(data_dir: Path) -> Settings:
    return load_settings(integration_env(data_dir, **RESUME_ENV))


def chunk_mtimes(storage: Storage, video_id: str) -> dict[str, int]:
    """Encoded chunk key -> mtime in ns (local storage): a re-encoded chunk gets a new one."""
    found = {}
    for key in storage.list(f"work/{video_id}"):
        name = key.rsplit("/", 1)[-1]
        if "/chunks/" in key and name.endswith(".mp4") and not name.startswith("."):
            try:
                found[key] = Path(storage.path(key)).stat().st_mtime_ns
            except FileNotFoundError:
                continue
    return found


def start(data_dir: Path, source: Path) -> None:
    settings = settings_for(data_dir)
    connect(settings, start=True)
    catalog = start_backend(settings).catalog
    ray.get(catalog.create_user.remote("crash", "not-a-login"))
    print(ingest_file(settings, source, title="crash test", owner="crash"), flush=True)
    while True:
        time.sleep(1)


def resume(data_dir: Path) -> None:
    settings = settings_for(data_dir)
    storage = Storage(settings.storage)
    connect(settings, start=True)
    catalog = start_backend(settings).catalog
    (video_id,) = ray.get(catalog.unfinished_jobs.remote())
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 300
    video: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen.update(chunk_mtimes(storage, video_id))
        video = ray.get(catalog.get_video.remote(video_id))
        if video["status"] in ("ready", "failed"):
            break
        time.sleep(0.1)
    print(json.dumps({"video": video, "mtimes": seen}, default=str), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "start":
        start(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        resume(Path(sys.argv[2]))
