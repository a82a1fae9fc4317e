"""An embedded ``vodray up`` never joins a Ray it was not told about.

``ray.init()`` with no address joins whatever ``{ray temp dir}/ray_current_cluster`` names. Here
Ray's temp dir is a private one (``RAY_TMPDIR``), so the shared ``/tmp/ray`` of this machine is
never read or written: a stale address file there (what ``ray start`` leaves when it is killed
without ``ray stop``) changes nothing and ``vodray up`` is ready in the usual time; a live
``ray start`` cluster there (its own ports, stopped by its own Ctrl-C at the end) is not joined.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.processes import descendants, process
from serve.deployment import free_port
from tests.integration.test_up_down import START_TIMEOUT_S, vodray_up

USUAL_START_S = 120.0
"""A start here takes 15-50 s on a small shared machine; a stale address costs minutes."""


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A private Ray temp dir, short enough for Ray's Unix sockets (107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="vr-"))
    (folder / "ray").mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data dir (and HOME) of the ``vodray up`` under test."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def ray_address_of(data_dir: Path) -> str:
    return str(json.loads((data_dir / "ray-address.json").read_text())["address"])


def starts_its_own_gcs(pid: int) -> bool:
    return any("gcs_server" in " ".join(p.argv) for p in descendants(pid))


def test_a_stale_cluster_address_changes_nothing(data: Path, ray_tmp: Path) -> None:
    stale = f"127.0.0.1:{free_port()}"  # nobody listens there: a `ray start` killed without `ray stop`
    address_file = ray_tmp / "ray" / "ray_current_cluster"
    address_file.write_text(stale)
    started = time.monotonic()
    with vodray_up(data, RAY_TMPDIR=str(ray_tmp)) as running:
        took = time.monotonic() - started
        assert took < USUAL_START_S, f"ready after {took:.0f} s"
        assert ray_address_of(data) != stale
        assert starts_its_own_gcs(running.proc.pid)
        assert any(ray_tmp.joinpath("ray").glob("session_*")), "Ray did not use the private temp dir"
    assert address_file.read_text() == stale


def test_a_live_ray_start_cluster_is_not_joined(tmp_path: Path, data: Path, ray_tmp: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    gcs_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")},
        "RAY_TMPDIR": str(ray_tmp),
        "HOME": str(home),  # its auth token stays in here
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    ray = Path(sys.executable).with_name("ray")
    other = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={gcs_port}", "--num-cpus=1",
         "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
         f"--temp-dir={ray_tmp / 'ray'}", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    address_file = ray_tmp / "ray" / "ray_current_cluster"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not address_file.exists():
            assert other.poll() is None, "ray start exited"
            assert time.monotonic() < deadline, "ray start did not write its address"
            time.sleep(0.5)
        theirs = address_file.read_text().strip()
        assert theirs.endswith(f":{gcs_port}")
        with vodray_up(data, RAY_TMPDIR=str(ray_tmp)) as running:
            assert ray_address_of(data) != theirs
            assert starts_its_own_gcs(running.proc.pid)
        assert other.poll() is None, "the other cluster is still up and untouched"
    finally:
        left = descendants(other.pid)
        other.send_signal(signal.SIGINT)  # `ray start --block` stops its cluster on Ctrl-C
        try:
            other.wait(60)
        except subprocess.TimeoutExpired:
            other.kill()
            other.wait()
        time.sleep(1)
        stragglers = [p for p in left if (now := process(p.pid)) is not None and now.argv == p.argv]
        for straggler in stragglers:
            os.kill(straggler.pid, signal.SIGKILL)
    assert not stragglers, [p.describe() for p in stragglers]
