"""The dispatcher sweeps scratch dirs of killed workers on every node, never a running task's.

Dirs are planted in the workers' temp dir under names of processes that are gone; while a job
encodes, a sweep with no grace period leaves the running encodes' own dirs. Only the dirs of gone
processes go."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from cluster.processes import descendants
from tests.integration.client import upload, wait_finished

OLD = 3600.0


def gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def running_encode_dirs() -> list[Path]:
    """Scratch dirs of encodes running now in this test session's Ray."""
    mine = {p.pid for p in descendants(os.getpid())}
    found = []
    for entry in Path(tempfile.gettempdir()).glob("vodray-enc-p*-*"):
        owner = re.match(r"vodray-enc-p(\d+)-", entry.name)
        if owner and int(owner.group(1)) in mine:
            found.append(entry)
    return found


def test_the_dispatcher_sweeps_dead_workers_dirs_and_keeps_running_ones(
    api: Any, dispatcher: Any, new_user: Any, clip: Any
) -> None:
    root = Path(tempfile.gettempdir())
    dead = [root / f"vodray-{kind}-p{gone_pid()}-{os.urandom(4).hex()}" for kind in ("enc", "pkg", "sub")]
    fresh = root / f"vodray-enc-p{gone_pid()}-{os.urandom(4).hex()}"  # gone too, but just written
    for folder in [*dead, fresh]:
        folder.mkdir()
        (folder / "chunk.mp4").write_bytes(b"x" * 1000)
    for folder in dead:
        os.utime(folder, (time.time() - OLD, time.time() - OLD))
    try:
        swept = {Path(r).name for r in ray.get(dispatcher.sweep_scratch.remote())}
        assert swept >= {folder.name for folder in dead}
        assert not any(folder.exists() for folder in dead)
        assert fresh.exists(), (
            "a dir changed in the last 5 minutes is left (an orphaned ffmpeg may write there)"
        )

        user = new_user()
        source = clip(seconds=20, width=1280, height=720, fps=25, audio=True, subtitles=False)
        vid = upload(api, user, source, title="swept around").json()["id"]
        deadline = time.monotonic() + 240
        while not (running := running_encode_dirs()):
            assert time.monotonic() < deadline, "no encode ran"
            time.sleep(0.05)
        # No grace at all: only whether the process that made a dir still runs decides.
        swept = {Path(r).name for r in ray.get(dispatcher.sweep_scratch.remote(0.0))}
        assert not swept & {folder.name for folder in running}, "a running encode's dir was swept"
        assert fresh.name in swept and not fresh.exists()
        assert wait_finished(api, user, vid)["status"] == "ready"
        assert not any(folder.exists() for folder in running), "the tasks removed their own dirs"
    finally:
        for folder in [*dead, fresh]:
            subprocess.run(["rm", "-rf", str(folder)], check=False)
