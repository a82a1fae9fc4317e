"""Calls to the catalog actor that outlive its restarts.

Ray restarts the catalog actor when its process dies (``max_restarts=-1``); reopening the DuckDB
file and checking the search index takes a few seconds. A call in flight when the process died,
or made while it restarts, fails with ``RayActorError`` (``ActorUnavailableError``: "The actor
is restarting"), and Ray cannot say whether it ran. ``CatalogClient`` makes such a call again,
with a growing pause, until the actor answers or ``retry_s`` has passed; then it raises
``CatalogUnavailable`` (the API answers 503 with ``Retry-After``). Making a call twice is safe
because every write of the store is idempotent: the same call again changes nothing the second
time (see each write in ``catalog.users``, ``catalog.videos``, ``catalog.cues``...).

Call sites keep Ray's shape, ``await catalog.get_video.remote(vid)``, and blocking code (the
CLI, drivers, worker threads) asks for ``catalog.get_video.remote(vid).result()`` where it had
``ray.get``. Errors the actor raises on purpose (``NotFound``, ``Conflict``...) are not retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator
from typing import Any

import ray
from ray.exceptions import RayActorError

from cluster.errors import CatalogUnavailable

log = logging.getLogger(__name__)

FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 1.0


class CatalogCall:
    """One call to the catalog, sent at once: ``await`` it, or ``.result()`` to block for it."""

    def __init__(self, client: CatalogClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self._client, self._method, self._args, self._kwargs = client, method, args, kwargs
        self._ref = self._send()

    def _send(self) -> ray.ObjectRef:
        return getattr(self._client.handle, self._method).remote(*self._args, **self._kwargs)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._await().__await__()

    async def _await(self) -> Any:
        deadline, pause = time.monotonic() + self._client.retry_s, FIRST_PAUSE_S
        while True:
            try:
                return await self._ref
            except RayActorError as exc:
                pause = self._again(exc, deadline, pause)
                await asyncio.sleep(pause)
                self._ref = self._send()

    def result(self) -> Any:
        """Block this thread for the answer (``ray.get`` warns inside async actors even from a
        worker thread, where blocking is fine: this waits on the ref's future instead)."""
        deadline, pause = time.monotonic() + self._client.retry_s, FIRST_PAUSE_S
        while True:
            try:
                return self._ref.future().result()
            except RayActorError as exc:
                pause = self._again(exc, deadline, pause)
                time.sleep(pause)
                self._ref = self._send()

    def _again(self, exc: RayActorError, deadline: float, pause: float) -> float:
        """The pause before the next try, or ``CatalogUnavailable`` once past ``deadline``."""
        if time.monotonic() + pause > deadline:
            raise CatalogUnavailable(
                f"the catalog did not answer for {self._client.retry_s:g} s (it is restarting or down);"
                " try again shortly"
            ) from exc
        if pause == FIRST_PAUSE_S:
            log.warning("catalog call %s failed (%s); trying again", self._method, type(exc).__name__)
        return min(pause * 2, MAX_PAUSE_S)


class _Method:
    def __init__(self, client: CatalogClient, name: str) -> None:
        self._client, self._name = client, name

    def remote(self, *args: Any, **kwargs: Any) -> CatalogCall:
        return CatalogCall(self._client, self._name, args, kwargs)


class CatalogClient:
    """The catalog actor's handle, with every method retried across a restart for ``retry_s``."""

    def __init__(self, handle: Any, retry_s: float) -> None:
        self.handle = handle
        self.retry_s = retry_s

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    def with_retry(self, retry_s: float) -> CatalogClient:
        """The same actor, with calls retried for ``retry_s`` instead."""
        return CatalogClient(self.handle, retry_s)

    def __reduce__(self) -> tuple[Any, ...]:
        return (CatalogClient, (self.handle, self.retry_s))

    @classmethod
    def wrap(cls, catalog: Any, retry_s: float) -> CatalogClient:
        """``catalog`` as a client: a raw actor handle is wrapped, a client is kept as it is."""
        return catalog if isinstance(catalog, CatalogClient) else cls(catalog, retry_s)
