"""The API as a Ray Serve deployment, and ``deploy_api`` to run it.

Each replica builds its own Litestar app at start-up. In Ray Serve 2.60 a builder given as
``serve.ingress(builder)`` is called with no arguments, so it could not receive the settings;
``serve.ingress()`` without an app instead calls the class's ``__serve_build_asgi_app__``
after ``__init__`` (which gets the settings from ``.bind(settings)``), on the replica. The
actor handles are looked up there too, by name, so a replica that restarts finds them again.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from ray import serve

from cluster.errors import Unavailable
from cluster.settings import Settings

APP_NAME = "vodray"
READY_TIMEOUT_S = 120.0
MAX_ONGOING_REQUESTS = 256
"""Per replica. Serve's default (5) would let five long polls or uploads block everything else."""


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
            settings, get_catalog(settings), get_dispatcher(settings), Storage(settings.storage)
        )


def deploy_api(settings: Settings) -> str:
    """Run the API (app ``vodray`` at ``/``) on the settings' host and port; returns its base URL.

    Ray must be connected (``cluster.runtime.connect``). Safe to call again: Serve's proxy is
    started once, and running the app again updates it in place.
    """
    import ray

    if not ray.is_initialized():
        raise Unavailable("Ray is not connected: call cluster.runtime.connect(settings) first")
    serve.start(http_options={"host": settings.http.host, "port": settings.http.port})
    serve.run(VodrayApi.bind(settings), name=APP_NAME, route_prefix="/")  # type: ignore[attr-defined]
    base_url = api_base_url(settings)
    wait_until_healthy(base_url)
    return base_url


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
