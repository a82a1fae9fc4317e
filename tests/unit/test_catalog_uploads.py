"""Resumable uploads in the catalog (``catalog.uploads``), on a real DuckDB file with a clock
moved by hand: the slot is reserved with the row, progress moves only from where it was, the last
byte makes exactly one video, and an upload that goes gives its slot back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from catalog.store import CatalogStore
from cluster.errors import Conflict
from tests.unit.test_catalog_store import T0, Clock

FIELDS = {"title": "Holiday", "description": "sea", "visibility": "public", "translate_to": ["es"]}
DAY = timedelta(days=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[CatalogStore]:
    opened = CatalogStore(tmp_path / "catalog.duckdb", clock=clock)
    yield opened
    opened.close()


def create(store: CatalogStore, upload_id: str, owner: str = "alice", length: int = 100, in_flight: int = 3):
    return store.create_upload(
        upload_id, owner, length, FIELDS, "title SG9saWRheQ==", T0 + DAY, per_hour=30, in_flight=in_flight
    )


def test_creation_reserves_the_slot_with_the_row(store: CatalogStore) -> None:
    row = create(store, "u1")
    assert isinstance(row, dict)
    assert (row["owner_id"], row["length"], row["received"], row["storage"]) == ("alice", 100, 0, {})
    assert row["fields"] == FIELDS and row["metadata"] == "title SG9saWRheQ==" and row["finished_at"] is None
    assert isinstance(create(store, "u2", in_flight=2), dict)
    refused = create(store, "u3", in_flight=2)
    assert refused == (
        "2 of your uploads are still uploading or processing (the limit is 2);"
        " try again when one has finished",
        30,
    )
    assert store.get_upload("u3") is None  # refused: nothing recorded


def test_a_live_upload_holds_its_slot_past_the_hour(store: CatalogStore, clock: Clock) -> None:
    create(store, "slow", in_flight=1)
    clock.advance(3 * 3600)  # a multipart POST's reservation would have stopped counting by now
    assert store.reserve_upload("other", "alice", 30, 1) is not None
    assert store.drop_upload("slow")
    assert store.reserve_upload("other", "alice", 30, 1) is None


def test_progress_moves_only_from_where_it_was(store: CatalogStore) -> None:
    create(store, "u1")
    assert store.record_upload_progress("u1", 0, 40, {"upload_id": "s3-1", "parts": []}, T0 + DAY)
    assert not store.record_upload_progress("u1", 0, 60, {}, T0 + DAY)  # a stale writer
    assert not store.record_upload_progress("u1", 40, 101, {}, T0 + DAY)  # past the length
    assert not store.record_upload_progress("u1", 40, 39, {}, T0 + DAY)  # backwards
    assert not store.record_upload_progress("nope", 0, 1, {}, T0 + DAY)
    row = store.get_upload("u1")
    assert row is not None and (row["received"], row["storage"]) == (40, {"upload_id": "s3-1", "parts": []})


def test_the_last_byte_makes_one_queued_video(store: CatalogStore, clock: Clock) -> None:
    create(store, "a" * 32)
    with pytest.raises(Conflict, match="has 0 of 100 bytes"):
        store.finish_upload("a" * 32, "sources/x/source", T0 + DAY)
    assert store.record_upload_progress("a" * 32, 0, 100, {}, T0 + DAY)
    video = store.finish_upload("a" * 32, f"sources/{'a' * 32}/source", clock.now + DAY)
    assert (video["id"], video["owner_id"], video["title"], video["visibility"]) == (
        "a" * 32,
        "alice",
        "Holiday",
        "public",
    )
    assert (video["status"], video["source_bytes"], video["translate_to"]) == ("queued", 100, ["es"])
    assert video["job"]["state"] == "queued"
    assert store.finish_upload("a" * 32, "ignored", T0 + DAY)["id"] == "a" * 32  # again: the same video
    assert store.get_upload("a" * 32)["finished_at"] is not None  # type: ignore[index]
    assert not store.record_upload_progress("a" * 32, 100, 100, {"x": 1}, T0 + DAY)  # finished: frozen
    # Its reservation is settled: it counts in flight as a queued video, not as an upload.
    assert store.unfinished_jobs() == ["a" * 32]


def test_expired_uploads_and_dropping(store: CatalogStore, clock: Clock) -> None:
    create(store, "old")
    store.create_upload("new", "bob", 10, FIELDS, "", T0 + 3 * DAY, per_hour=30, in_flight=3)
    clock.advance(2 * 86400)
    assert [row["id"] for row in store.expired_uploads(clock.now)] == ["old"]
    assert not store.drop_upload("new", expired_before=clock.now)  # not expired: kept
    assert store.drop_upload("old", expired_before=clock.now)
    assert store.get_upload("old") is None and store.expired_uploads(clock.now) == []
    assert not store.drop_upload("old")
