"""Start everything vodray runs, idempotently: the catalog and dispatcher actors and the API.

Safe to call again on a running cluster: named actors are found, not duplicated, and Serve
updates the app in place.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass
from typing import Any

from cluster.processes import descendants, haproxy_dir, stop, vodray_haproxies
from cluster.runtime import Connection, advertise, connect
from cluster.settings import Settings


@dataclass(frozen=True)
class Backend:
    catalog: Any
    dispatcher: Any
    notifier: Any = None


@dataclass(frozen=True)
class Deployment:
    connection: Connection
    backend: Backend
    api_url: str


def start_backend(settings: Settings) -> Backend:
    """The catalog actor first (the dispatcher reads unfinished jobs from it, the notifier its
    outbox), then the dispatcher and the notifier; scratch dirs of workers killed earlier are
    swept here and by the dispatcher."""
    import ray

    from catalog.actor import start_catalog
    from cluster.scratch import sweep
    from pipelines.dispatcher import start_dispatcher
    from pipelines.notify.notifier import start_notifier

    sweep()  # what workers killed in an earlier run left in this node's temp dir
    catalog = start_catalog(settings)
    ray.get(catalog.ping.remote())
    dispatcher = start_dispatcher(settings)
    return Backend(catalog=catalog, dispatcher=dispatcher, notifier=start_notifier(settings))


def deploy(settings: Settings, *, interactive: bool = False) -> Deployment:
    """Connect (embedded Ray unless an address is set), start the actors and the Serve app.

    ``interactive`` is ``vodray up``: dashboard on, and other commands may join this Ray.
    """
    from serve.deployment import deploy_api

    connection = connect(settings, interactive=interactive)
    if interactive and connection.started_here:
        advertise(settings)
    backend = start_backend(settings)
    return Deployment(connection=connection, backend=backend, api_url=deploy_api(settings))


SERVE_SHUTDOWN_S = 4.0
"""How long ``undeploy`` lets Serve drain before Ray itself is stopped (which kills the rest)."""
RAY_EXIT_S = 2.0
"""How long the processes of a stopped Ray get after SIGTERM before they are killed."""


def undeploy(settings: Settings) -> list[str]:
    """Stop what ``deploy`` started in this process's embedded Ray; returns what it had to force.

    Serve first (its replicas drain and it stops HAProxy itself), then Ray. Ray kills the actor
    that owns HAProxy without letting it stop its child, so an HAProxy could outlive it, keep
    the API port and answer 500 to every request: every process this one started, and any
    HAProxy of this data dir, is stopped and waited for.
    """
    import ray
    from ray import serve

    forced: list[str] = []
    if not ray.is_initialized():
        return forced  # stopped before Ray started
    ours = descendants(os.getpid())
    # Serve has no time limit of its own; a thread bounds it, and ray.shutdown ends the rest.
    stopping = threading.Thread(target=_serve_shutdown, args=(serve,), daemon=True)
    stopping.start()
    stopping.join(SERVE_SHUTDOWN_S)
    if stopping.is_alive():
        forced.append(f"Serve did not stop within {SERVE_SHUTDOWN_S:g} s")
    ray.shutdown()
    # Workers notice their raylet is gone on their own, but slowly on a busy machine.
    left = stop(ours + vodray_haproxies(settings), timeout_s=RAY_EXIT_S)
    if left:
        forced.append(f"could not stop: {'; '.join(p.describe() for p in left)}")
    else:
        # Config, sockets and logs of this run only; the next start writes them afresh.
        shutil.rmtree(haproxy_dir(settings), ignore_errors=True)
    return forced


def _serve_shutdown(serve: Any) -> None:
    try:
        serve.shutdown()
    except Exception:  # noqa: BLE001 - Ray is stopped next either way
        logging.getLogger(__name__).warning("serve.shutdown failed", exc_info=True)
