"""The catalog actor: the one process that opens the DuckDB file (DuckDB allows one writer).

Detached and named, so the API replicas and the dispatcher find it by name and it outlives
the driver that started it. Threaded (``max_concurrency``): the store gives every call its
own cursor, so a slow list does not hold up a progress update. It asks for no CPU because
it waits on disk, not compute, and must never queue behind encodes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import duckdb
import ray
from ray.actor import ActorHandle
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from catalog.client import CatalogClient
from catalog.events import NOTIFIER_ACTOR
from catalog.leases import Leases
from catalog.outbox import take_added
from catalog.store import CatalogStore
from cluster.errors import Unavailable
from cluster.settings import Settings

CATALOG_ACTOR = "vodray-catalog"
CATALOG_CONCURRENCY = 16


@ray.remote(num_cpus=0, max_concurrency=CATALOG_CONCURRENCY)  # type: ignore[call-overload]
class CatalogActor(Leases, CatalogStore):
    """Every ``CatalogStore`` method (and the ``Leases``), called as ``await handle.method.remote(...)``."""

    def __init__(self, settings: Settings) -> None:
        # This worker process serves only the catalog: every file it makes (the database, each
        # new .wal after a checkpoint) holds password hashes or tokens, so owner-only.
        os.umask(0o077)
        self._namespace = settings.ray.namespace
        self._notifier: Any = None
        super().__init__(settings.catalog.path)

    def _after_write(self, cursor: duckdb.DuckDBPyConnection) -> None:
        super()._after_write(cursor)
        if take_added():
            self._nudge_notifier()

    def _nudge_notifier(self) -> None:
        """Wake the notifier for a delivery just committed; it polls anyway, so a notifier that
        is not running (yet) costs nothing but a little latency."""
        try:
            if self._notifier is None:
                self._notifier = ray.get_actor(NOTIFIER_ACTOR, namespace=self._namespace)
            self._notifier.nudge.remote()
        except Exception:  # noqa: BLE001 - never fail a committed write for a wake-up call
            self._notifier = None
            logging.getLogger(__name__).debug("the notifier was not nudged", exc_info=True)


def start_catalog(settings: Settings) -> ActorHandle:
    """Start the catalog actor, or find the running one; returns once it answers.

    The actor is pinned to the node that starts it (the head, in a cluster): its database is
    a local file, and a restart elsewhere would open an empty catalog.
    """
    here = ray.get_runtime_context().get_node_id()
    handle = CatalogActor.options(  # type: ignore[attr-defined]
        name=CATALOG_ACTOR,
        namespace=settings.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    ).remote(settings)
    ray.get(handle.ping.remote())  # surfaces a database that cannot be opened here, not later
    return handle


def get_catalog(settings: Settings, *, retry_s: float | None = None) -> CatalogClient:
    """The running catalog actor, its calls retried across a restart for ``retry_s`` (default
    ``VODRAY_CATALOG_RETRY_S``); ``Unavailable`` if nobody started it."""
    try:
        handle = ray.get_actor(CATALOG_ACTOR, namespace=settings.ray.namespace)
    except ValueError as exc:
        raise Unavailable(
            f"the catalog actor {CATALOG_ACTOR!r} is not running in namespace {settings.ray.namespace!r}"
        ) from exc
    return CatalogClient(handle, settings.catalog.retry_s if retry_s is None else retry_s)
