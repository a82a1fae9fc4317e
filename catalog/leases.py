"""Short named leases, held by the catalog actor: one writer at a time for what lives outside
the database but must change as one read-modify-write (a video's published manifests and its
subtitle record), whichever API replica, dispatcher or CLI process wants to change it.

The catalog actor is the one process every writer already talks to, so the lease costs no new
actor. Leases live in its memory, not in DuckDB: a lease lasts seconds, and a catalog restart
(rare; it also drops every caller's in-flight call) frees them all. A holder that dies keeps
its lease only until ``ttl_s`` runs out.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class Leases:
    """A mixin for the catalog actor (threaded: every method takes the lock)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lease_lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}
        """Lease name -> (holder, monotonic time it expires)."""

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take (or renew) ``name`` for ``holder`` for ``ttl_s`` seconds; False if another holds it.

        Never waits: a caller retries, so waiting writers hold none of the actor's threads."""
        now = time.monotonic()
        with self._lease_lock:
            found = self._leases.get(name)
            if found is not None and found[0] != holder and found[1] > now:
                return False
            self._leases = {key: value for key, value in self._leases.items() if value[1] > now}
            self._leases[name] = (holder, now + ttl_s)
            return True

    def release_lease(self, name: str, holder: str) -> bool:
        """Give ``name`` back; False if ``holder`` no longer held it (it expired)."""
        with self._lease_lock:
            found = self._leases.get(name)
            if found is None or found[0] != holder:
                return False
            del self._leases[name]
            return True
