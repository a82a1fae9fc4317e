"""The catalog actor's leases, without Ray: one holder at a time, expiry, many threads."""

from __future__ import annotations

import threading
import time

from catalog.leases import Leases


class LeaseTable(Leases):
    """The mixin alone (in the actor it sits before ``CatalogStore``)."""


def test_one_holder_at_a_time_until_it_releases() -> None:
    table = LeaseTable()
    assert table.acquire_lease("subtitles:v1", "a", 30)
    assert not table.acquire_lease("subtitles:v1", "b", 30)
    assert table.acquire_lease("subtitles:v2", "b", 30)  # another video: its own lease
    assert table.acquire_lease("subtitles:v1", "a", 30)  # renewed by its holder
    assert not table.release_lease("subtitles:v1", "b")  # not b's to give back
    assert not table.acquire_lease("subtitles:v1", "b", 30)
    assert table.release_lease("subtitles:v1", "a")
    assert table.acquire_lease("subtitles:v1", "b", 30)


def test_a_lease_its_holder_never_releases_expires() -> None:
    table = LeaseTable()
    assert table.acquire_lease("subtitles:v1", "crashed", 0.05)
    assert not table.acquire_lease("subtitles:v1", "b", 30)
    time.sleep(0.1)
    assert table.acquire_lease("subtitles:v1", "b", 30)
    assert not table.release_lease("subtitles:v1", "crashed")  # too late: b holds it now
    assert not table.acquire_lease("subtitles:v1", "c", 30)


def test_threads_taking_turns_never_overlap() -> None:
    table = LeaseTable()
    inside: list[str] = []
    overlaps: list[list[str]] = []
    done: list[str] = []

    def writer(name: str) -> None:
        for turn in range(20):
            holder = f"{name}-{turn}"
            while not table.acquire_lease("subtitles:v1", holder, 30):
                time.sleep(0.0005)
            inside.append(holder)
            if len(inside) > 1:
                overlaps.append(list(inside))
            time.sleep(0.0005)
            inside.remove(holder)
            assert table.release_lease("subtitles:v1", holder)
            done.append(holder)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [] and len(done) == 6 * 20
