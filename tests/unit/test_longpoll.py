"""Long-poll slots: bounded per user and in total, given back on exit, and a truthful Retry-After."""

from __future__ import annotations

import pytest

from cluster.errors import TooManyRequests
from serve.longpoll import LongPollSlots


def test_a_user_over_their_bound_is_told_when_their_earliest_poll_ends() -> None:
    slots = LongPollSlots(per_user=2, total=10)
    with slots.hold("ana", 30), slots.hold("ana", 5):
        with pytest.raises(TooManyRequests) as refused, slots.hold("ana", 30):
            pass
        assert refused.value.status_code == 429
        assert refused.value.retry_after_s == 5  # the 5 s poll ends first
        assert refused.value.detail == (
            "long-poll limit reached: 2 at once per user; wait for one to answer, or ask without wait"
        )
        with slots.hold("bob", 30):  # another user is not held back by ana
            assert slots.held_by("bob") == 1
    assert slots.held_by("ana") == 0


def test_the_total_bound_holds_across_users_and_frees_on_error() -> None:
    slots = LongPollSlots(per_user=5, total=2)
    with slots.hold("ana", 12), slots.hold("bob", 20):
        with pytest.raises(TooManyRequests) as refused, slots.hold("cy", 1):
            pass
        assert refused.value.retry_after_s == 12
        assert "the server holds as many long polls as it allows" in refused.value.detail
    with pytest.raises(RuntimeError), slots.hold("cy", 1):
        raise RuntimeError("the poll failed")  # a failed poll gives its slot back too
    with slots.hold("cy", 1), slots.hold("dee", 1):
        assert slots.held_by("cy") == slots.held_by("dee") == 1


def test_retry_after_is_at_least_one_second() -> None:
    slots = LongPollSlots(per_user=1, total=1)
    with slots.hold("ana", 0.01), pytest.raises(TooManyRequests) as refused, slots.hold("ana", 1):
        pass
    assert refused.value.retry_after_s == 1
