"""A crash in the middle of a title loses only the chunks being encoded at that moment.

The whole local Ray (driver, GCS, raylet, workers) is SIGKILLed, as a power cut would, while
a title is half encoded; a fresh start resumes the job from the catalog and re-encodes only
the chunks that were not finished (counted by the chunk files' modification times).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cluster.settings import load_settings
from cluster.storage import Storage
from tests.integration.conftest import integration_env
from tests.integration.resume_driver import RESUME_ENV, chunk_mtimes
from tests.integration.test_chunked_encode import video_packets

ROOT = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def driver(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.resume_driver", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_killing_the_whole_ray_mid_title_reencodes_only_unfinished_chunks(clip: Any, tmp_path: Path) -> None:
    source = clip(seconds=20, width=640, height=360, fps=25, audio=True, subtitles=False)
    data_dir = tmp_path / "data"
    storage = Storage(load_settings(integration_env(data_dir, **RESUME_ENV)).storage)

    first = driver("start", str(data_dir), str(source))
    tree: list[int] = []
    try:
        assert first.stdout is not None
        video_id = first.stdout.readline().strip()
        assert len(video_id) == 32, video_id
        total = 20 // 2 * 2  # 10 chunks x 2 renditions
        deadline = time.monotonic() + 240
        while len(chunk_mtimes(storage, video_id)) < total // 2:
            assert time.monotonic() < deadline, "the encode never got half way"
            assert first.poll() is None, "the first vodray exited by itself"
            time.sleep(0.05)
        tree = descendants(first.pid)
        for pid in tree:  # all at once: nothing gets to clean up or hand over
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    before = chunk_mtimes(storage, video_id)
    assert 0 < len(before) < total, "kill in the middle of the title"

    second = driver("resume", str(data_dir))
    out, _ = second.communicate(timeout=400)
    assert second.returncode == 0
    result = json.loads(out.strip().splitlines()[-1])
    video, after = result["video"], result["mtimes"]
    assert video["status"] == "ready", video
    assert video["job"]["attempts"] == 2
    assert (video["job"]["chunks_done"], video["job"]["chunks_total"]) == (10, 10)
    assert set(after) >= set(before) and len(after) == total
    reencoded = [key for key, mtime in after.items() if before.get(key) != mtime]
    assert all(after[key] == mtime for key, mtime in before.items()), "a finished chunk was encoded again"
    assert len(reencoded) == total - len(before)
    assert storage.list(f"work/{video_id}") == [], "work files are removed once the job succeeds"

    # The resumed title is whole: every frame once, keyframes on the grid.
    whole = tmp_path / "360p.mp4"
    media_dir = Path(storage.path(f"media/{video_id}/360p"))
    segments = sorted(media_dir.glob("seg-*.m4s"))
    whole.write_bytes(b"".join(p.read_bytes() for p in [media_dir / "init.mp4", *segments]))
    packets = video_packets(whole)
    assert len(packets) == 20 * 25
    assert [round(t, 3) for t, key in packets if key] == [float(2 * i) for i in range(10)]
