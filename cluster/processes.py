"""The local processes of a ``vodray up``: who holds a port, and the HAProxy it leaves behind.

Ray Serve runs HAProxy as a child of a Ray actor. When Ray stops that actor abruptly the
child is orphaned and keeps the API port, answering 500 to everything. vodray points every
HAProxy file of a local run (config, admin socket, state) into one private directory per
data dir, so its HAProxy processes are found by their ``-f <config>`` argument and nobody
else's are touched.

Process lookups read ``/proc`` (Linux); elsewhere they find nothing rather than guess.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import Unavailable
from cluster.settings import Settings

_PROC = Path("/proc")
_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Process:
    """A process as a person reads it in a message."""

    pid: int
    argv: tuple[str, ...]
    parent_pid: int

    @property
    def is_haproxy(self) -> bool:
        return bool(self.argv) and os.path.basename(self.argv[0]) == "haproxy"

    def describe(self) -> str:
        command = " ".join(self.argv) or "?"
        if len(command) > 100:
            command = command[:97] + "..."
        return f"pid {self.pid}: {command}"


def haproxy_dir(settings: Settings) -> Path:
    """The private directory of this data dir's HAProxy files (config, admin socket, state).

    Short and under the temp dir on purpose: Ray adds a 56-character node id below it, and a
    Unix socket path may not be longer than 107 bytes.
    """
    digest = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"vodray-{os.getuid()}" / digest


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and its parent owner-only; refuse ones another user owns or can enter."""
    for folder in (path.parent, path):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise Unavailable(
                f"{folder} must be a directory only you can enter (it holds HAProxy's admin "
                "socket); remove it and start again"
            )
    return path


def process(pid: int) -> Process | None:
    """The process ``pid`` if it exists and is not a zombie."""
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
        status = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name in `stat` may hold spaces and parentheses: split after the last ")".
    fields = status.rsplit(")", 1)[-1].split()
    if not fields or fields[0] == "Z":
        return None
    return Process(pid, tuple(a.decode(errors="replace") for a in argv if a), int(fields[1]))


def started_at(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), or None if there is none (or a zombie).

    Without ``/proc`` (macOS) a live pid answers 0.0: "long ago", which never makes a caller
    take it for a newer process than it is."""
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[-1].split()
        boot = next(
            float(line.split()[1])
            for line in (_PROC / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def all_processes() -> list[Process]:
    found = []
    for entry in _PROC.glob("[0-9]*"):
        proc = process(int(entry.name))
        if proc is not None:
            found.append(proc)
    return found


def descendants(pid: int) -> list[Process]:
    """Every process below ``pid``: for ``vodray up``, its whole Ray (GCS, raylet, workers, HAProxy)."""
    children: dict[int, list[Process]] = {}
    for proc in all_processes():
        children.setdefault(proc.parent_pid, []).append(proc)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def _listeners() -> dict[str, tuple[str, int]]:
    """Every listening TCP socket of the machine: ``socket:[inode]`` -> (address, port)."""
    found = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != _TCP_LISTEN:
                continue
            address, port = fields[1].rsplit(":", 1)
            # The kernel prints the address as 32-bit words in host (little-endian) order.
            raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8))
            found[f"socket:[{fields[9]}]"] = (socket.inet_ntop(family, raw), int(port, 16))
    return found


def port_holders(port: int) -> list[Process]:
    """The processes (of those this user may inspect) listening on TCP ``port``."""
    inodes = {inode for inode, (_, bound) in _listeners().items() if bound == port}
    holders: list[Process] = []
    if not inodes:
        return holders
    for entry in _PROC.glob("[0-9]*"):
        if _fd_links(entry / "fd") & inodes:
            proc = process(int(entry.name))
            if proc is not None:
                holders.append(proc)
    return holders


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """Where process ``pid`` listens for TCP connections: (address, port) pairs."""
    listeners = _listeners()
    return sorted(listeners[link] for link in _fd_links(_PROC / str(pid) / "fd") if link in listeners)


def _fd_links(fd_dir: Path) -> set[str]:
    links: set[str] = set()
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return links  # gone, or another user's
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor is one)
    return links


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` now (a closing connection does not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def vodray_haproxies(settings: Settings) -> list[Process]:
    """HAProxy processes started for this data dir (alive or orphaned)."""
    private = str(haproxy_dir(settings)) + os.sep
    return [p for p in all_processes() if p.is_haproxy and any(a.startswith(private) for a in p.argv)]


def is_orphan(proc: Process) -> bool:
    """Whether the Ray actor that started ``proc`` is gone (its parent is init or a reaper)."""
    parent = process(proc.parent_pid)
    return parent is None or proc.parent_pid == 1 or not any("ray::" in a for a in parent.argv)


def stop(processes: list[Process], timeout_s: float = 5.0) -> list[Process]:
    """SIGTERM each process, SIGKILL what is left after ``timeout_s``; returns what survived."""
    left = [p for p in processes if _same_process_alive(p)]  # never signal a reused pid
    for proc in left:
        _signal(proc.pid, signal.SIGTERM)
    left = wait_gone(left, timeout_s)
    for proc in left:
        _signal(proc.pid, signal.SIGKILL)
    return wait_gone(left, 2.0)


def wait_gone(processes: list[Process], timeout_s: float) -> list[Process]:
    """Wait until every process has exited; returns those still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    left = processes
    while True:
        left = [p for p in left if _same_process_alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _same_process_alive(proc: Process) -> bool:
    now = process(proc.pid)
    return now is not None and now.argv == proc.argv


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def who_holds(settings: Settings, port: int) -> str:
    """Who listens on ``port``, said so a person knows what to do about it."""
    holders = port_holders(port)
    ours = {p.pid for p in vodray_haproxies(settings)}
    for proc in holders:
        if proc.pid in ours:
            return f"a stale HAProxy of an earlier vodray ({proc.describe()}); `vodray down` removes it"
        if proc.is_haproxy and is_orphan(proc):
            return f"a stale HAProxy of an earlier Ray Serve ({proc.describe()}); `kill {proc.pid}` stops it"
    if holders:
        return holders[0].describe()
    return "a process of another user"
