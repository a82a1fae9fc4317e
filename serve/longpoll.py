"""Bounds on the status long polls one API replica holds: per user and in total.

A long poll holds one of the replica's request slots for up to ``wait`` seconds, so without a
bound one client could take them all. Slots are taken and given back on the replica's event
loop with no ``await`` between the check and the take, so two requests can never both see the
last free slot. Over a bound the caller gets a 429 whose ``Retry-After`` is the time until the
earliest long poll that blocks it ends: a poll ends by then at the latest, so retrying after
it finds a free slot unless someone else took it first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cluster.errors import TooManyRequests


class LongPollSlots:
    """Who holds a long poll now, and until when (monotonic deadlines)."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._deadlines: dict[int, tuple[str, float]] = {}
        self._next_ticket = 0

    def held_by(self, user_id: str) -> int:
        return sum(1 for owner, _ in self._deadlines.values() if owner == user_id)

    @contextmanager
    def hold(self, user_id: str, wait_s: float) -> Iterator[None]:
        """Hold a slot for a poll of up to ``wait_s`` seconds, or raise ``TooManyRequests``."""
        now = time.monotonic()
        mine = [deadline for owner, deadline in self._deadlines.values() if owner == user_id]
        if len(mine) >= self.per_user:
            raise TooManyRequests(
                f"long-poll limit reached: {self.per_user} at once per user; "
                "wait for one to answer, or ask without wait",
                _seconds_until(min(mine), now),
            )
        if len(self._deadlines) >= self.total:
            earliest = min(deadline for _, deadline in self._deadlines.values())
            raise TooManyRequests(
                "the server holds as many long polls as it allows; ask without wait, or retry later",
                _seconds_until(earliest, now),
            )
        ticket = self._next_ticket
        self._next_ticket += 1
        self._deadlines[ticket] = (user_id, now + wait_s)
        try:
            yield
        finally:
            del self._deadlines[ticket]


def _seconds_until(deadline: float, now: float) -> int:
    # Whole seconds, rounded up: Retry-After must not send the client back before the slot is free.
    return max(1, math.ceil(deadline - now))
