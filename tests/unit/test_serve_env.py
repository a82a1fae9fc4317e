"""What vodray tells Serve about its ingress, without starting Ray."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cluster.settings import load_settings
from serve.deployment import PORT_RANGE, free_port, serve_env_vars


def test_haproxy_ingress_gets_its_switch_and_side_ports_in_the_safe_range(tmp_path: Path) -> None:
    env = serve_env_vars(load_settings({"VODRAY_DATA_DIR": str(tmp_path)}))
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    ports = [int(env[name]) for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")]
    assert all(PORT_RANGE[0] <= port <= PORT_RANGE[1] for port in ports)


def test_serve_ingress_leaves_serve_alone(tmp_path: Path) -> None:
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path), "VODRAY_HTTP_INGRESS": "serve"})
    assert serve_env_vars(settings) == {}


def test_what_the_operator_set_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "8404")
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path)})
    assert serve_env_vars(dataclasses.replace(settings))["RAY_SERVE_HAPROXY_STATS_PORT"] == "8404"


def test_free_port_is_in_range_and_bindable() -> None:
    import socket

    port = free_port()
    assert PORT_RANGE[0] <= port <= PORT_RANGE[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
