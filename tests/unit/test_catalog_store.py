"""CatalogStore on a real DuckDB file in tmp_path, with a clock the tests move by hand."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from catalog import SCHEMA_VERSION, CatalogStore
from cluster.errors import BadRequest, Conflict, ServerError

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
RENDITIONS = [
    {"name": "360p", "width": 640, "height": 360, "bandwidth": 812_000, "bytes": 401_234},
    {"name": "720p", "width": 1280, "height": 720, "bandwidth": 2_431_000, "bytes": 1_210_987},
]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.duckdb"


@pytest.fixture
def store(db_path: Path, clock: Clock) -> Iterator[CatalogStore]:
    opened = CatalogStore(db_path, clock=clock)
    yield opened
    opened.close()


def add_video(store: CatalogStore, video_id: str, owner: str, visibility: str = "private") -> dict:
    return store.create_video(
        video_id, owner, f"title {video_id}", "about it", visibility, f"sources/{video_id}/source", 1234
    )


# -- users ---------------------------------------------------------------------------------


def test_created_user_is_found_by_id_and_by_name(store: CatalogStore) -> None:
    user = store.create_user("alice", "$argon2id$hash")

    assert len(user["id"]) == 32 and int(user["id"], 16) >= 0
    assert user == {
        "id": user["id"],
        "username": "alice",
        "password_hash": "$argon2id$hash",
        "created_at": T0,
    }
    assert user["created_at"].tzinfo is UTC
    assert store.get_user(user["id"]) == user
    assert store.get_user_by_name("alice") == user
    assert store.get_user("0" * 32) is None
    assert store.get_user_by_name("bob") is None


def test_taken_username_is_a_conflict_and_keeps_the_first_user(store: CatalogStore) -> None:
    first = store.create_user("alice", "h1")

    with pytest.raises(Conflict) as raised:
        store.create_user("alice", "h2")

    assert raised.value.detail == "username 'alice' is taken"
    assert raised.value.status_code == 409
    assert store.get_user_by_name("alice") == first


# -- refresh tokens ------------------------------------------------------------------------


def test_refresh_token_is_consumed_once(store: CatalogStore, clock: Clock) -> None:
    store.add_refresh_token("jti-1", "user-1", "fam-1", T0 + timedelta(days=30))
    clock.advance(60)

    status, row = store.consume_refresh_token("jti-1")

    assert status == "ok"
    assert row == {
        "jti": "jti-1",
        "user_id": "user-1",
        "family_id": "fam-1",
        "expires_at": T0 + timedelta(days=30),
        "used_at": T0 + timedelta(seconds=60),
        "revoked_at": None,
    }


def test_reused_refresh_token_revokes_its_whole_family(store: CatalogStore, clock: Clock) -> None:
    expiry = T0 + timedelta(days=1)
    store.add_refresh_token("first", "user-1", "fam-1", expiry)
    store.add_refresh_token("other-login", "user-1", "fam-2", expiry)
    assert store.consume_refresh_token("first")[0] == "ok"
    store.add_refresh_token("rotated", "user-1", "fam-1", expiry)  # what the client got back
    clock.advance(5)

    status, row = store.consume_refresh_token("first")  # a thief replays the old token

    assert status == "reused"
    assert row is not None and row["revoked_at"] == T0 + timedelta(seconds=5)
    # The legitimate client's newer token dies with the family; another login does not.
    assert store.consume_refresh_token("rotated")[0] == "reused"
    assert store.consume_refresh_token("other-login")[0] == "ok"


def test_expired_refresh_token_is_refused_and_not_marked_used(store: CatalogStore, clock: Clock) -> None:
    store.add_refresh_token("jti-1", "user-1", "fam-1", T0 + timedelta(seconds=10))
    clock.advance(10)

    status, row = store.consume_refresh_token("jti-1")

    assert status == "expired"
    assert row is not None and row["used_at"] is None and row["revoked_at"] is None


def test_unknown_refresh_token(store: CatalogStore) -> None:
    assert store.consume_refresh_token("never-issued") == ("unknown", None)


def test_revoked_family_refuses_its_tokens(store: CatalogStore) -> None:
    store.add_refresh_token("jti-1", "user-1", "fam-1", T0 + timedelta(days=1))

    store.revoke_family("fam-1")

    status, row = store.consume_refresh_token("jti-1")
    assert status == "reused"
    assert row is not None and row["revoked_at"] == T0 and row["used_at"] is None


def test_refresh_expiry_in_another_timezone_is_kept_as_the_same_instant(store: CatalogStore) -> None:
    paris = timezone(timedelta(hours=2))
    store.add_refresh_token("jti-1", "user-1", "fam-1", datetime(2026, 3, 2, 14, 0, tzinfo=paris))

    _, row = store.consume_refresh_token("jti-1")

    assert row is not None and row["expires_at"] == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert row["expires_at"].tzinfo is UTC


def test_racing_refreshes_of_one_token_let_exactly_one_through(store: CatalogStore) -> None:
    store.add_refresh_token("jti-1", "user-1", "fam-1", T0 + timedelta(days=1))
    statuses: list[str] = []
    start = threading.Barrier(12)

    def refresh() -> None:
        start.wait()
        statuses.append(store.consume_refresh_token("jti-1")[0])

    threads = [threading.Thread(target=refresh) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == ["ok"] + ["reused"] * 11


# -- videos --------------------------------------------------------------------------------


def test_created_video_is_queued_with_its_queued_job(store: CatalogStore) -> None:
    video = add_video(store, "v1", "alice", "public")

    assert video == {
        "id": "v1",
        "owner_id": "alice",
        "title": "title v1",
        "description": "about it",
        "visibility": "public",
        "status": "queued",
        "source_key": "sources/v1/source",
        "source_bytes": 1234,
        "duration_s": None,
        "width": None,
        "height": None,
        "renditions": [],
        "has_audio": None,
        "media_bytes": None,
        "error": None,
        "created_at": T0,
        "updated_at": T0,
        "ready_at": None,
        "job": {
            "state": "queued",
            "step": "queued",
            "progress": 0.0,
            "error": None,
            "plan_id": None,
            "attempts": 0,
            "chunks_done": 0,
            "chunks_total": 0,
            "updated_at": T0,
        },
    }
    assert store.get_video("v1") == video
    assert store.get_video("nope") is None


def test_duplicate_video_id_and_bad_visibility_are_refused(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")

    with pytest.raises(Conflict, match="video 'v1' already exists"):
        add_video(store, "v1", "bob")
    with pytest.raises(BadRequest, match="visibility must be one of public, private, not 'friends'"):
        add_video(store, "v2", "alice", "friends")

    assert store.get_video("v1")["owner_id"] == "alice"  # type: ignore[index]
    assert store.get_video("v2") is None
    assert store.unfinished_jobs() == ["v1"]


def test_list_shows_own_and_public_videos_newest_first(store: CatalogStore, clock: Clock) -> None:
    for video_id, owner, visibility in [
        ("alice-private", "alice", "private"),
        ("alice-public", "alice", "public"),
        ("bob-private", "bob", "private"),
        ("bob-public", "bob", "public"),
    ]:
        add_video(store, video_id, owner, visibility)
        clock.advance(1)

    def ids(viewer: str | None) -> tuple[list[str], int]:
        page = store.list_videos(viewer, 50, 0)
        return [video["id"] for video in page["items"]], page["total"]

    assert ids("alice") == (["bob-public", "alice-public", "alice-private"], 3)
    assert ids("bob") == (["bob-public", "bob-private", "alice-public"], 3)
    assert ids("carol") == (["bob-public", "alice-public"], 2)
    assert ids(None) == (["bob-public", "alice-public"], 2)
    assert store.list_videos("alice", 1, 0)["items"][0]["job"]["state"] == "queued"


def test_list_pages_through_with_a_stable_total(store: CatalogStore, clock: Clock) -> None:
    for n in range(1, 6):
        add_video(store, f"v{n}", "alice", "public")
        clock.advance(1)

    pages = [store.list_videos("bob", 2, offset) for offset in (0, 2, 4, 10)]

    assert [[video["id"] for video in page["items"]] for page in pages] == [
        ["v5", "v4"],
        ["v3", "v2"],
        ["v1"],
        [],
    ]
    assert [page["total"] for page in pages] == [5, 5, 5, 5]
    with pytest.raises(BadRequest):
        store.list_videos("bob", -1, 0)


def test_count_uploads_since_counts_one_owner_in_the_window(store: CatalogStore, clock: Clock) -> None:
    add_video(store, "old", "alice")
    clock.advance(30 * 60)
    add_video(store, "recent", "alice")
    add_video(store, "bobs", "bob")
    clock.advance(31 * 60)
    add_video(store, "newest", "alice")

    hour_ago = clock.now - timedelta(hours=1)

    assert store.count_uploads_since("alice", hour_ago) == 2
    assert store.count_uploads_since("alice", T0) == 3
    assert store.count_uploads_since("bob", hour_ago) == 1
    assert store.count_uploads_since("carol", T0) == 0


# -- jobs ----------------------------------------------------------------------------------


def test_update_job_changes_only_the_given_fields(store: CatalogStore, clock: Clock) -> None:
    add_video(store, "v1", "alice")
    started = clock.advance(2)

    store.update_job("v1", state="running", step="probe", progress=0.0, attempts=1)
    running = store.get_video("v1")
    clock.advance(3)
    store.update_job("v1", progress=0.4, plan_id="plan-abc")
    later = store.get_video("v1")
    store.update_job("v1", step="encode", progress=1.7)
    clamped = store.get_video("v1")

    assert running is not None and later is not None and clamped is not None
    assert running["status"] == "processing" and running["updated_at"] == started
    assert running["job"] == {
        "state": "running",
        "step": "probe",
        "progress": 0.0,
        "error": None,
        "plan_id": None,
        "attempts": 1,
        "chunks_done": 0,
        "chunks_total": 0,
        "updated_at": started,
    }
    assert later["job"] == {**running["job"], "progress": 0.4, "plan_id": "plan-abc", "updated_at": clock.now}
    assert later["updated_at"] == started  # no state change: the video row is left alone
    assert clamped["job"]["step"] == "encode" and clamped["job"]["progress"] == 1.0
    with pytest.raises(ValueError, match="job state"):
        store.update_job("v1", state="paused")


def test_mark_ready_records_the_media_and_finishes_the_job(store: CatalogStore, clock: Clock) -> None:
    add_video(store, "v1", "alice")
    store.update_job("v1", state="running", step="package", progress=0.9)
    done_at = clock.advance(40)

    store.mark_ready(
        "v1",
        duration_s=6.0,
        width=1280,
        height=720,
        renditions=RENDITIONS,
        has_audio=True,
        media_bytes=1_700_000,
    )

    video = store.get_video("v1")
    assert video is not None
    assert {k: video[k] for k in ("status", "duration_s", "width", "height", "has_audio", "media_bytes")} == {
        "status": "ready",
        "duration_s": 6.0,
        "width": 1280,
        "height": 720,
        "has_audio": True,
        "media_bytes": 1_700_000,
    }
    assert video["renditions"] == RENDITIONS
    assert video["ready_at"] == done_at and video["updated_at"] == done_at and video["error"] is None
    assert video["job"]["state"] == "done" and video["job"]["step"] == "done"
    assert video["job"]["progress"] == 1.0


def test_mark_failed_keeps_the_reason_on_video_and_job(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")
    store.update_job("v1", state="running", step="encode", progress=0.3)

    store.mark_failed("v1", "ffmpeg exited with code 1: invalid data found")

    video = store.get_video("v1")
    assert video is not None
    assert video["status"] == "failed" and video["error"] == "ffmpeg exited with code 1: invalid data found"
    assert video["job"]["state"] == "failed" and video["job"]["error"] == video["error"]
    assert video["job"]["step"] == "encode"  # where it failed
    assert video["ready_at"] is None


def test_requeued_job_drops_the_old_error(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")
    store.mark_failed("v1", "worker died")

    store.update_job("v1", state="queued", step="queued", progress=0.0)

    video = store.get_video("v1")
    assert video is not None
    assert (video["status"], video["error"], video["job"]["state"], video["job"]["error"]) == (
        "queued",
        None,
        "queued",
        None,
    )


def test_unfinished_jobs_are_queued_or_running_oldest_first(store: CatalogStore, clock: Clock) -> None:
    for video_id in ("first", "ready", "running", "failed", "last"):
        add_video(store, video_id, "alice")
        clock.advance(1)
    store.update_job("running", state="running")
    store.mark_ready("ready", duration_s=1, width=2, height=2, renditions=[], has_audio=False, media_bytes=1)
    store.mark_failed("failed", "not a video")

    assert store.unfinished_jobs() == ["first", "running", "last"]


def test_delete_removes_the_video_and_its_job(store: CatalogStore) -> None:
    add_video(store, "gone", "alice", "public")
    add_video(store, "kept", "alice", "public")

    assert store.delete_video("gone") is True

    assert store.get_video("gone") is None
    assert [video["id"] for video in store.list_videos("alice", 10, 0)["items"]] == ["kept"]
    assert store.unfinished_jobs() == ["kept"]
    assert store.delete_video("gone") is False
    store.update_job("gone", state="running")  # a job still running when its video went: no row comes back
    assert store.get_video("gone") is None and store.unfinished_jobs() == ["kept"]


# -- the file ------------------------------------------------------------------------------


def test_everything_survives_reopening_the_file(db_path: Path, clock: Clock) -> None:
    first = CatalogStore(db_path, clock=clock)
    user = first.create_user("alice", "h")
    add_video(first, "v1", user["id"], "public")
    first.mark_ready(
        "v1", duration_s=6.0, width=1280, height=720, renditions=RENDITIONS, has_audio=True, media_bytes=9
    )
    first.add_refresh_token("jti-1", user["id"], "fam-1", T0 + timedelta(days=1))
    video = first.get_video("v1")
    first.close()

    reopened = CatalogStore(db_path, clock=clock)
    try:
        assert reopened.get_user_by_name("alice") == user
        assert reopened.get_video("v1") == video
        assert reopened.consume_refresh_token("jti-1")[0] == "ok"
    finally:
        reopened.close()
    with duckdb.connect(str(db_path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_catalog_from_newer_code_is_refused(db_path: Path) -> None:
    CatalogStore(db_path).close()
    with duckdb.connect(str(db_path)) as raw:
        raw.execute("UPDATE schema_version SET version = 99")

    with pytest.raises(ServerError, match="schema version 99, newer than this code's"):
        CatalogStore(db_path)


def test_update_job_records_chunks_done_of_total(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")
    store.update_job("v1", state="running", step="encode", chunks_done=0, chunks_total=7)
    store.update_job("v1", chunks_done=3)
    video = store.get_video("v1")
    assert video is not None
    assert (video["job"]["chunks_done"], video["job"]["chunks_total"]) == (3, 7)
