"""A real multi-node Ray on this machine: a title's chunks are encoded on more than one node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.test_chunked_encode import video_packets

ROOT = Path(__file__).resolve().parents[2]


def test_chunk_tasks_spread_over_nodes_sharing_one_storage_root(clip: Any, tmp_path: Path) -> None:
    source = clip(seconds=12, width=640, height=360, fps=25, audio=True, subtitles=False)
    data_dir = tmp_path / "data"
    run = subprocess.run(
        [sys.executable, "-m", "tests.integration.multinode_driver", str(data_dir), str(source)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    video, summary = result["video"], result["summary"]
    assert video["status"] == "ready", video
    assert len(result["nodes"]) == 3
    chunk_nodes = {node for key, node in summary["nodes"].items() if "/chunks/" in key}
    assert len([key for key in summary["nodes"] if "/chunks/" in key]) == 6 * 2  # 6 chunks x 2 renditions
    assert len(chunk_nodes) >= 2, f"every chunk ran on one node: {chunk_nodes}"
    assert chunk_nodes <= set(result["nodes"])

    vid = video["id"]
    media_dir = data_dir / "store" / "media" / vid / "360p"
    whole = tmp_path / "360p.mp4"
    segments = sorted(media_dir.glob("seg-*.m4s"))
    whole.write_bytes(b"".join(p.read_bytes() for p in [media_dir / "init.mp4", *segments]))
    packets = video_packets(whole)
    assert len(packets) == 12 * 25
    assert [round(t, 3) for t, key in packets if key] == [float(2 * i) for i in range(6)]
