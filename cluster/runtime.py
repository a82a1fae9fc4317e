"""Connecting to Ray: an embedded local Ray by default, an existing cluster with an address.

The same code runs on a laptop and on a cluster: only ``VODRAY_RAY_ADDRESS`` (or ``--address``)
changes. The project is installed on every node (``ray-cluster.yaml`` setup commands), so
no code is shipped through a runtime env.

An embedded start never joins a cluster it was not told about. ``ray.init()`` with no address
joins whatever ``RAY_ADDRESS`` or ``/tmp/ray/ray_current_cluster`` names: another person's
``ray start``, or a dead one killed without ``ray stop`` (whose GCS it then waits minutes for).
So the embedded start asks for ``address="local"``, which reads neither.

``ray`` is imported inside the functions on purpose: joining a running ``vodray up`` may
have to set ``RAY_AUTH_MODE`` first, and Ray reads it once, when it is imported.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from cluster.settings import Settings

RAY_AUTH_MODE = "RAY_AUTH_MODE"


@dataclass(frozen=True)
class Connection:
    """What a person needs to know about the Ray they are connected to."""

    address: str
    dashboard_url: str | None
    started_here: bool


def _address_file(settings: Settings) -> Path:
    return settings.data_dir / "ray-address.json"


def advertise(settings: Settings) -> None:
    """Let other vodray commands with the same data dir join this process's Ray, until it exits."""
    import ray

    path = _address_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "address": ray.get_runtime_context().gcs_address,
        "pid": os.getpid(),
        # Ray turns token auth on for a new local cluster by default (the token itself is in
        # ~/.ray/auth_token); a driver joining by address uses it only when told to.
        "auth_mode": os.environ.get(RAY_AUTH_MODE),
    }
    path.write_text(json.dumps(record))
    atexit.register(forget_address, settings)


def forget_address(settings: Settings) -> None:
    """Stop advertising this process's Ray (``advertise``), if this process advertised it."""
    if advertised_pid(settings) == os.getpid():
        _address_file(settings).unlink(missing_ok=True)


def running_address(settings: Settings) -> str | None:
    """The address of a live ``vodray up`` with the same data dir, if any; adopts its auth mode.

    Call it before anything imports ``ray`` (the CLI does, first thing) for the auth mode
    to take effect.
    """
    try:
        record = json.loads(_address_file(settings).read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    if record.get("auth_mode"):
        os.environ.setdefault(RAY_AUTH_MODE, str(record["auth_mode"]))
    return str(record["address"])


def connect(settings: Settings, *, start: bool = True, interactive: bool = False) -> Connection:
    """Connect this process to Ray, idempotently.

    With ``settings.ray.address`` set, join that cluster. Otherwise join the local Ray of a
    running ``vodray up``, or, when ``start`` is true, start an embedded Ray. ``interactive``
    (``vodray up``) adds the dashboard and keeps worker logs off the terminal.
    """
    address = settings.ray.address or running_address(settings)
    import ray

    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        return Connection(ctx.gcs_address, _dashboard_url(), started_here=False)
    # Quiet, predictable workers: no usage-stats prompt or upload from a laptop or CI.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is not None:
        info = ray.init(address=address, namespace=settings.ray.namespace, logging_level=logging.WARNING)
        return Connection(address, _url(info.dashboard_url), started_here=False)
    if not start:
        raise ConnectionError("no vodray is running here: start one with `vodray up`, or pass --address")
    info = ray.init(
        address="local",  # a new Ray here, whatever RAY_ADDRESS or ray_current_cluster names
        namespace=settings.ray.namespace,
        num_cpus=settings.ray.num_cpus,
        include_dashboard=interactive,
        dashboard_host=settings.ray.dashboard_host,
        dashboard_port=settings.ray.dashboard_port,
        logging_level=logging.WARNING,
        # `vodray up` owns its terminal (URLs, progress); worker logs stay in the dashboard.
        log_to_driver=not interactive,
    )
    if interactive and threading.current_thread() is threading.main_thread():
        # Ray's native handler answers SIGTERM (systemd, containers, `vodray down`) with a
        # crash dump and an abort that leaves HAProxy behind; stop the way Ctrl-C does instead.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    gcs = ray.get_runtime_context().gcs_address
    return Connection(gcs, _url(info.dashboard_url), started_here=True)


def advertised_pid(settings: Settings) -> int | None:
    """The pid a ``vodray up`` with this data dir advertised, if its record is still there."""
    try:
        return int(json.loads(_address_file(settings).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _url(dashboard: str | None) -> str | None:
    if not dashboard:
        return None
    return dashboard if dashboard.startswith("http") else f"http://{dashboard}"


def _dashboard_url() -> str | None:
    import ray

    try:
        return _url(ray.worker.get_dashboard_url())
    except Exception:  # noqa: BLE001 - no dashboard is not an error
        return None
