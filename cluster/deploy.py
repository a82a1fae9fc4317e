"""Start everything vodray runs, idempotently: the catalog and dispatcher actors and the API.

Safe to call again on a running cluster: named actors are found, not duplicated, and Serve
updates the app in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.runtime import Connection, advertise, connect
from cluster.settings import Settings


@dataclass(frozen=True)
class Backend:
    catalog: Any
    dispatcher: Any


@dataclass(frozen=True)
class Deployment:
    connection: Connection
    backend: Backend
    api_url: str


def start_backend(settings: Settings) -> Backend:
    """The catalog actor first (the dispatcher reads unfinished jobs from it), then the dispatcher."""
    import ray

    from catalog.actor import start_catalog
    from pipelines.dispatcher import start_dispatcher

    catalog = start_catalog(settings)
    ray.get(catalog.ping.remote())
    return Backend(catalog=catalog, dispatcher=start_dispatcher(settings))


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
