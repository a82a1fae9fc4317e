"""The outbox on a real DuckDB file: events exist exactly when their change does, go to the
owner's recipients only, and their deliveries keep the state of every retry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from catalog.store import CatalogStore
from cluster.errors import BadRequest, Conflict, NotFound
from tests.unit.test_catalog_store import RENDITIONS, Clock, add_video

ALL = ["video.created", "video.ready", "video.failed", "video.deleted", "video.subtitles.ready"]


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[CatalogStore]:
    opened = CatalogStore(tmp_path / "catalog.duckdb", clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ready(store: CatalogStore, video_id: str) -> None:
    store.mark_ready(
        video_id, duration_s=3.0, width=640, height=360, renditions=RENDITIONS, has_audio=True, media_bytes=99
    )


def due(store: CatalogStore, per_recipient: int = 10) -> list[dict[str, Any]]:
    return list(store.due_deliveries([], per_recipient, 100)["due"])


def test_a_video_life_records_each_event_once_for_its_owners_endpoint(
    store: CatalogStore, clock: Clock
) -> None:
    ana = store.create_user("ana", "h")["id"]
    bob = store.create_user("bob", "h")["id"]
    mine = store.create_endpoint(ana, "http://127.0.0.1:1/a", ALL, "whsec_a", 10)
    theirs = store.create_endpoint(bob, "http://127.0.0.1:1/b", ALL, "whsec_b", 10)
    vid = "a" * 32
    add_video(store, vid, ana, "public")  # public: still only its owner's endpoints hear of it
    clock.advance(1)
    ready(store, vid)
    ready(store, vid)  # made again (a retried catalog call): no second event
    clock.advance(1)
    store.put_subtitles(
        vid, {"tracks": []}, [(vid, "fr", "fr", [{"start_s": 0, "end_s": 1, "text": "salut"}])]
    )
    clock.advance(1)
    # The same call again (a retry after a catalog restart): no second event.
    store.put_subtitles(
        vid, {"tracks": []}, [(vid, "fr", "fr", [{"start_s": 0, "end_s": 1, "text": "salut"}])]
    )
    clock.advance(1)
    store.delete_video(vid)

    rows = due(store)
    assert [(row["type"], row["endpoint_id"]) for row in rows] == [
        ("video.created", mine["id"]),
        ("video.ready", mine["id"]),
        ("video.subtitles.ready", mine["id"]),
        ("video.deleted", mine["id"]),
    ]
    assert all(row["endpoint_id"] != theirs["id"] for row in rows)
    ready_row, subtitles_row, deleted_row = rows[1], rows[2], rows[3]
    assert ready_row["video"]["status"] == "ready" and ready_row["video"]["renditions"] == RENDITIONS
    assert subtitles_row["detail"] == {"lang": "fr", "source_lang": "fr"}
    # The deleted video's event still shows its last fields.
    assert deleted_row["video"]["title"] == f"title {vid}" and deleted_row["video"]["status"] == "ready"
    assert store.get_video(vid) is None


def test_subtitles_put_by_the_job_before_ready_are_no_event(store: CatalogStore) -> None:
    ana = store.create_user("ana", "h")["id"]
    store.create_endpoint(ana, "http://127.0.0.1:1/a", ["video.subtitles.ready"], "whsec_a", 10)
    vid = "b" * 32
    add_video(store, vid, ana)
    store.put_subtitles(vid, {"tracks": []}, [(vid, "en", "en", [{"start_s": 0, "end_s": 1, "text": "hi"}])])
    assert due(store) == []


def test_a_change_that_is_refused_records_no_event(store: CatalogStore) -> None:
    ana = store.create_user("ana", "h")["id"]
    store.create_endpoint(ana, "http://127.0.0.1:1/a", ALL, "whsec_a", 10)
    vid = "c" * 32
    add_video(store, vid, ana)
    ready(store, vid)
    before = len(due(store))
    with pytest.raises(BadRequest):  # a cue the catalog refuses: the whole put, event included
        store.put_subtitles(
            vid, {"tracks": []}, [(vid, "fr", "fr", [{"start_s": 2, "end_s": 1, "text": "x"}])]
        )
    assert len(due(store)) == before


def test_failed_is_an_event_once_and_email_goes_only_to_a_confirmed_chosen_address(
    store: CatalogStore,
) -> None:
    ana = store.create_user("ana", "h")["id"]
    store.set_email(ana, "ana@example.org")
    [confirm] = due(store)
    assert (confirm["type"], confirm["channel"], confirm["address"]) == (
        "email.confirm",
        "email",
        "ana@example.org",
    )
    store.record_attempt(
        confirm["id"], 1, status_code=250, error=None, duration_ms=1, next_attempt_at=None, delivered=True
    )
    vid = "d" * 32
    add_video(store, vid, ana)
    store.mark_failed(vid, "not a video")
    assert due(store) == []  # not confirmed yet: no mail
    assert store.confirm_email(ana, "ana@example.org")
    vid2 = "e" * 32
    add_video(store, vid2, ana)
    store.mark_failed(vid2, "not a video")
    store.mark_failed(vid2, "not a video")
    [mail] = due(store)
    assert (mail["type"], mail["channel"], mail["video"]["error"]) == ("video.failed", "email", "not a video")
    store.set_email_events(ana, ["video.ready"])
    vid3 = "f" * 32
    add_video(store, vid3, ana)
    store.mark_failed(vid3, "again")
    assert len(due(store)) == 1  # failed mails no longer chosen
    assert not store.confirm_email(ana, "someone@else.org")


def test_attempts_are_recorded_once_and_a_disabled_endpoint_fails_what_waits(
    store: CatalogStore, clock: Clock
) -> None:
    ana = store.create_user("ana", "h")["id"]
    endpoint = store.create_endpoint(ana, "http://127.0.0.1:1/a", ALL, "whsec_a", 10)
    for vid in ("1" * 32, "2" * 32):
        add_video(store, vid, ana)
    first, second = due(store)
    later = clock.now + timedelta(seconds=5)
    for _ in range(2):  # the same attempt recorded twice counts once
        store.record_attempt(
            first["id"],
            1,
            status_code=500,
            error="the receiver answered 500",
            duration_ms=3,
            next_attempt_at=later,
        )
    assert [row["id"] for row in due(store)] == [second["id"]]
    clock.advance(6)
    assert {row["id"] for row in due(store)} == {first["id"], second["id"]}
    store.record_attempt(
        second["id"],
        1,
        status_code=410,
        error="the receiver answered 410",
        duration_ms=3,
        next_attempt_at=None,
        disable_reason="the receiver answered 410 Gone",
    )
    shown = store.get_endpoint(ana, endpoint["id"])
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "the receiver answered 410 Gone")
    assert due(store) == []
    log = store.list_deliveries(ana, endpoint["id"], 10, 0)
    assert log["total"] == 2
    by_id = {item["id"]: item for item in log["items"]}
    assert by_id[first["id"]]["state"] == "failed" and "disabled" in by_id[first["id"]]["last_error"]
    assert [a["status_code"] for a in by_id[first["id"]]["attempts"]] == [500]
    add_video(store, "3" * 32, ana)
    assert due(store) == []  # a disabled endpoint gets no new deliveries
    with pytest.raises(Conflict):
        store.ping_endpoint(ana, endpoint["id"])
    store.update_endpoint(ana, endpoint["id"], enabled=True)
    ping = store.ping_endpoint(ana, endpoint["id"])
    assert ping["event_type"] == "webhook.ping" and ping["state"] == "pending"
    retried = store.retry_delivery(ana, endpoint["id"], first["id"])
    assert retried["state"] == "pending"
    assert {row["id"] for row in due(store)} == {ping["id"], first["id"]}


def test_due_deliveries_are_bounded_per_endpoint(store: CatalogStore) -> None:
    """A flood for one endpoint never fills the batch: another endpoint's event is read too."""
    ana = store.create_user("ana", "h")["id"]
    busy = store.create_endpoint(ana, "http://127.0.0.1:1/busy", ALL, "whsec_a", 10)
    for _ in range(20):
        store.ping_endpoint(ana, busy["id"])
    quiet = store.create_endpoint(ana, "http://127.0.0.1:1/quiet", ALL, "whsec_b", 10)
    store.ping_endpoint(ana, quiet["id"])
    found = store.due_deliveries([], 2, 3)
    assert sorted(row["endpoint_id"] for row in found["due"]) == sorted([busy["id"], busy["id"], quiet["id"]])


def test_endpoints_are_their_owners_and_limited(store: CatalogStore) -> None:
    ana = store.create_user("ana", "h")["id"]
    bob = store.create_user("bob", "h")["id"]
    made = [store.create_endpoint(ana, f"http://127.0.0.1:1/{n}", ALL, "whsec_a", 2) for n in range(2)]
    with pytest.raises(Conflict, match="the most allowed"):
        store.create_endpoint(ana, "http://127.0.0.1:1/3", ALL, "whsec_a", 2)
    with pytest.raises(NotFound):
        store.get_endpoint(bob, made[0]["id"])
    with pytest.raises(NotFound):
        store.delete_endpoint(bob, made[0]["id"])
    assert "secret" not in made[0] and all("secret" not in e for e in store.list_endpoints(ana))
    store.delete_endpoint(ana, made[0]["id"])
    assert [e["id"] for e in store.list_endpoints(ana)] == [made[1]["id"]]


def test_finished_deliveries_are_purged_after_their_time(store: CatalogStore, clock: Clock) -> None:
    ana = store.create_user("ana", "h")["id"]
    endpoint = store.create_endpoint(ana, "http://127.0.0.1:1/a", ALL, "whsec_a", 10)
    done = store.ping_endpoint(ana, endpoint["id"])
    store.record_attempt(
        done["id"], 1, status_code=200, error=None, duration_ms=1, next_attempt_at=None, delivered=True
    )
    waiting = store.ping_endpoint(ana, endpoint["id"])
    clock.advance(100)
    assert store.purge_deliveries(50) == 1
    assert [d["id"] for d in store.list_deliveries(ana, endpoint["id"], 10, 0)["items"]] == [waiting["id"]]
