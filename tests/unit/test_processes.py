"""cluster.processes: who holds a port, a process's listeners and children, stopping them (real
sockets and processes of this test, read back from /proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.processes import (
    descendants,
    listening_addresses,
    port_holders,
    port_is_free,
    process,
    stop,
    vodray_haproxies,
    who_holds,
)
from cluster.settings import load_settings

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_listening_port_is_taken_and_its_holder_named(listener: socket.socket, tmp_path: Path) -> None:
    port = listener.getsockname()[1]
    assert not port_is_free("127.0.0.1", port)
    assert not port_is_free("0.0.0.0", port)
    assert [p.pid for p in port_holders(port)] == [os.getpid()]
    said = who_holds(load_settings({"VODRAY_DATA_DIR": str(tmp_path)}), port)
    assert said.startswith(f"pid {os.getpid()}: ") and "python" in said
    assert ("127.0.0.1", port) in listening_addresses(os.getpid())


def test_a_closed_port_is_free_again(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
    assert port_is_free("127.0.0.1", port)
    assert port_holders(port) == []


def test_children_are_found_and_stopped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        found = [p for p in descendants(os.getpid()) if p.pid == child.pid]
        assert found and found[0].argv[-1] == "import time; time.sleep(60)"
        assert stop(found, timeout_s=5) == []
        assert child.wait(5) == -15  # SIGTERM was enough
        assert process(child.pid) is None
    finally:
        child.kill()
        child.wait()


def test_no_haproxy_of_a_fresh_data_dir(tmp_path: Path) -> None:
    assert vodray_haproxies(load_settings({"VODRAY_DATA_DIR": str(tmp_path)})) == []
