"""CatalogStore on a real DuckDB file in tmp_path, with a clock the tests move by hand."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from catalog.schema import SCHEMA_VERSION
from catalog.store import CatalogStore
from cluster.errors import BadRequest, Conflict, NotFound, ServerError

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
        "email": None,
        "email_confirmed_at": None,
        "email_events": '["video.ready", "video.failed"]',
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


# -- logins and refresh tokens -------------------------------------------------------------

DAY = timedelta(days=1)


def login(
    store: CatalogStore, family: str = "fam-1", jti: str = "jti-1", *, ends: timedelta = 90 * DAY
) -> None:
    store.start_session(family, "user-1", T0 + ends, jti, T0 + 30 * DAY)


def rotate(store: CatalogStore, jti: str, new_jti: str, family: str = "fam-1") -> str:
    return store.rotate_refresh_token(jti, family, "user-1", new_jti, T0 + 60 * DAY)[0]


def test_rotation_uses_the_token_once_and_records_its_successor(store: CatalogStore, clock: Clock) -> None:
    login(store)
    clock.advance(60)

    status, expires_at = store.rotate_refresh_token("jti-1", "fam-1", "user-1", "jti-2", T0 + 31 * DAY)

    assert (status, expires_at) == ("ok", T0 + 31 * DAY)
    assert [(t["jti"], t["used_at"], t["revoked_at"]) for t in store.refresh_tokens_of("fam-1")] == [
        ("jti-1", T0 + timedelta(seconds=60), None),
        ("jti-2", None, None),
    ]
    assert rotate(store, "jti-2", "jti-3") == "ok"


def test_a_checked_token_stays_usable_and_a_used_one_checked_is_a_reuse(
    store: CatalogStore, clock: Clock
) -> None:
    login(store)
    login(store, "fam-2", "other-login")
    assert store.check_refresh_token("jti-1", "fam-1", "user-1") == "ok"
    assert store.check_refresh_token("jti-1", "fam-1", "user-1") == "ok"  # checking uses nothing up
    assert [t["used_at"] for t in store.refresh_tokens_of("fam-1")] == [None]
    assert store.check_refresh_token("jti-1", "fam-2", "user-1") == "unknown"
    assert store.check_refresh_token("jti-1", "fam-1", "user-2") == "unknown"
    assert rotate(store, "jti-1", "jti-2") == "ok"
    clock.advance(5)

    assert store.check_refresh_token("jti-1", "fam-1", "user-1") == "reused"  # the replaced one
    assert store.check_refresh_token("jti-2", "fam-1", "user-1") == "revoked"  # the login ended
    assert store.check_refresh_token("other-login", "fam-2", "user-1") == "ok"
    clock.advance(31 * 24 * 3600)
    assert store.check_refresh_token("other-login", "fam-2", "user-1") == "expired"


def test_reused_refresh_token_revokes_its_whole_family(store: CatalogStore, clock: Clock) -> None:
    login(store)
    login(store, "fam-2", "other-login")
    assert rotate(store, "jti-1", "rotated") == "ok"  # what the client got back
    clock.advance(5)

    assert rotate(store, "jti-1", "thief") == "reused"  # a thief replays the old token

    # The legitimate client's newer token dies with the family; another login does not.
    assert rotate(store, "rotated", "next") == "revoked"
    tokens = store.refresh_tokens_of("fam-1")
    assert [t["jti"] for t in tokens] == ["jti-1", "rotated"]  # the thief got no successor
    assert all(t["revoked_at"] == T0 + timedelta(seconds=5) for t in tokens)
    assert rotate(store, "other-login", "fine", family="fam-2") == "ok"


def test_expired_refresh_token_is_refused_and_not_marked_used(store: CatalogStore, clock: Clock) -> None:
    store.start_session("fam-1", "user-1", T0 + DAY, "jti-1", T0 + timedelta(seconds=10))
    clock.advance(10)

    assert rotate(store, "jti-1", "jti-2") == "expired"
    assert [(t["used_at"], t["revoked_at"]) for t in store.refresh_tokens_of("fam-1")] == [(None, None)]


def test_a_login_ends_at_its_absolute_lifetime_however_often_it_is_refreshed(
    store: CatalogStore, clock: Clock
) -> None:
    login(store, ends=2 * DAY)
    jti = "jti-1"
    for step in range(1, 4):  # refreshed every 12 hours: each token alone would live 30 days
        clock.advance(12 * 3600)
        status, expires_at = store.rotate_refresh_token(
            jti, "fam-1", "user-1", f"jti-{step + 1}", T0 + 30 * DAY
        )
        assert (status, expires_at) == ("ok", T0 + 2 * DAY)  # capped at the end of the login
        jti = f"jti-{step + 1}"
    clock.advance(12 * 3600)

    assert rotate(store, jti, "too-late") == "ended"
    assert [t["jti"] for t in store.refresh_tokens_of("fam-1")][-1] == jti


def test_first_refresh_token_never_outlives_its_login(store: CatalogStore) -> None:
    store.start_session("fam-1", "user-1", T0 + DAY, "jti-1", T0 + 30 * DAY)
    assert store.refresh_tokens_of("fam-1")[0]["expires_at"] == T0 + DAY


def test_unknown_or_mismatched_refresh_token(store: CatalogStore) -> None:
    login(store)
    assert store.rotate_refresh_token("never-issued", "fam-1", "user-1", "x", T0 + DAY) == ("unknown", None)
    assert store.rotate_refresh_token("jti-1", "fam-2", "user-1", "x", T0 + DAY) == ("unknown", None)
    assert store.rotate_refresh_token("jti-1", "fam-1", "user-2", "x", T0 + DAY) == ("unknown", None)
    assert rotate(store, "jti-1", "jti-2") == "ok"  # none of those used it up


def test_logout_revokes_the_family_and_it_stays_revoked(store: CatalogStore) -> None:
    login(store)
    assert rotate(store, "jti-1", "jti-2") == "ok"

    assert store.revoke_family("fam-1", "someone-else") is False  # not theirs to end
    assert rotate(store, "jti-2", "jti-3") == "ok"
    assert store.revoke_family("fam-1", "user-1") is True

    assert rotate(store, "jti-3", "jti-4") == "revoked"
    assert store.revoke_family("fam-1", "user-1") is False
    assert all(t["revoked_at"] == T0 for t in store.refresh_tokens_of("fam-1"))


def test_password_change_ends_every_login_of_the_user(store: CatalogStore) -> None:
    user = store.create_user("alice", "old-hash")
    for family in ("fam-1", "fam-2"):
        store.start_session(family, user["id"], T0 + DAY, f"{family}-jti", T0 + DAY)
    store.start_session("fam-bob", "bob", T0 + DAY, "bob-jti", T0 + DAY)

    assert store.change_password(user["id"], "new-hash") == 2

    assert store.get_user(user["id"])["password_hash"] == "new-hash"
    for family in ("fam-1", "fam-2"):
        assert store.rotate_refresh_token(f"{family}-jti", family, user["id"], "x", T0 + DAY)[0] == "revoked"
    assert store.rotate_refresh_token("bob-jti", "fam-bob", "bob", "y", T0 + DAY)[0] == "ok"


def test_refresh_expiry_in_another_timezone_is_kept_as_the_same_instant(store: CatalogStore) -> None:
    paris = timezone(timedelta(hours=2))
    store.start_session("fam-1", "user-1", T0 + DAY, "jti-1", datetime(2026, 3, 2, 10, 0, tzinfo=paris))

    expires_at = store.refresh_tokens_of("fam-1")[0]["expires_at"]

    assert expires_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC) and expires_at.tzinfo is UTC


def test_racing_refreshes_of_one_token_leave_no_live_token(store: CatalogStore) -> None:
    login(store)
    statuses: list[str] = []
    start = threading.Barrier(12)

    def refresh(i: int) -> None:
        start.wait()
        statuses.append(rotate(store, "jti-1", f"next-{i}"))

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One winner; the first loser sees a used token and revokes; the rest find it revoked.
    assert sorted(statuses) == ["ok", "reused"] + ["revoked"] * 10
    # The one successor was revoked with its family by the first loser: nothing works now.
    successor = next(t["jti"] for t in store.refresh_tokens_of("fam-1") if t["jti"] != "jti-1")
    assert rotate(store, successor, "after") == "revoked"
    assert all(t["revoked_at"] is not None for t in store.refresh_tokens_of("fam-1"))


# -- limits --------------------------------------------------------------------------------


def test_concurrent_reservations_never_pass_the_hourly_limit(store: CatalogStore, clock: Clock) -> None:
    results: list[tuple[str, int] | None] = []
    start = threading.Barrier(40)

    def reserve(i: int) -> None:
        start.wait()
        results.append(store.reserve_upload(f"up-{i}", "alice", 30, 1000))

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(None) == 30
    assert [r for r in results if r] == [("upload limit reached: 30 uploads per hour", 3600)] * 10
    assert store.reserve_upload("bob-1", "bob", 30, 1000) is None  # one user's limit only


def test_retry_after_is_when_the_oldest_reservation_leaves_the_hour(
    store: CatalogStore, clock: Clock
) -> None:
    for i in range(3):
        assert store.reserve_upload(f"up-{i}", "alice", 3, 10) is None
        clock.advance(600)  # reservations at 0, 10 and 20 minutes
    clock.advance(-600 + 1.5)  # now 20 min 1.5 s

    assert store.reserve_upload("up-x", "alice", 3, 10) == ("upload limit reached: 3 uploads per hour", 2399)
    clock.now = T0 + timedelta(hours=1)  # the first leaves the window exactly now
    assert store.reserve_upload("up-3", "alice", 3, 10) is None


def test_deleted_failed_and_abandoned_uploads_still_count(store: CatalogStore, clock: Clock) -> None:
    assert store.reserve_upload("v1", "alice", 3, 10) is None
    add_video(store, "v1", "alice")
    store.delete_video("v1")
    assert store.reserve_upload("v2", "alice", 3, 10) is None
    add_video(store, "v2", "alice")
    store.mark_failed("v2", "not a video")
    assert store.reserve_upload("v3", "alice", 3, 10) is None
    store.abandon_upload("v3")  # the client went away half-way

    assert store.reserve_upload("v4", "alice", 3, 10) == ("upload limit reached: 3 uploads per hour", 3600)


def test_uploads_in_flight_are_capped_until_one_finishes(store: CatalogStore, clock: Clock) -> None:
    assert store.reserve_upload("v1", "alice", 100, 2) is None  # still streaming
    assert store.reserve_upload("v2", "alice", 100, 2) is None
    add_video(store, "v2", "alice")  # queued
    refused = store.reserve_upload("v3", "alice", 100, 2)
    assert refused is not None and refused[1] == 30
    assert refused[0] == (
        "2 of your uploads are still uploading or processing (the limit is 2);"
        " try again when one has finished"
    )
    store.abandon_upload("v1")
    assert store.reserve_upload("v3", "alice", 100, 2) is None
    add_video(store, "v3", "alice")
    assert store.reserve_upload("v4", "alice", 100, 2) is not None
    store.mark_ready("v2", duration_s=1, width=2, height=2, renditions=[], has_audio=False, media_bytes=1)
    assert store.reserve_upload("v4", "alice", 100, 2) is None


def test_auth_attempts_are_limited_per_key_with_a_truthful_wait(store: CatalogStore, clock: Clock) -> None:
    keys = [("login:username", "alice", 2), ("address", "10.0.0.1", 5)]
    first = store.take_auth_attempts(keys, 300)
    clock.advance(100)
    assert isinstance(store.take_auth_attempts(keys, 300), list)
    clock.advance(50)

    assert store.take_auth_attempts(keys, 300) == (
        "too many attempts for this username; try again in 150 s",
        150,
    )
    # A refused attempt records nothing: the address has 2 of its 5, and another username passes.
    assert isinstance(
        store.take_auth_attempts([("login:username", "bob", 2), ("address", "10.0.0.1", 5)], 300), list
    )
    assert isinstance(first, list)
    store.release_auth_attempts(first[:1])  # alice's first login succeeded: it stops counting
    assert isinstance(store.take_auth_attempts(keys, 300), list)
    clock.advance(300)
    assert isinstance(store.take_auth_attempts(keys, 300), list)


def test_racing_auth_attempts_never_pass_the_limit(store: CatalogStore) -> None:
    results: list[object] = []
    start = threading.Barrier(20)

    def attempt() -> None:
        start.wait()
        results.append(store.take_auth_attempts([("address", "10.0.0.9", 7)], 60))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(isinstance(r, list) for r in results) == 7
    assert results.count(("too many attempts for this address; try again in 60 s", 60)) == 13


# -- videos --------------------------------------------------------------------------------


def test_cue_languages_lists_ready_videos_with_each_languages_source(store: CatalogStore) -> None:
    cue = [{"start_s": 0.0, "end_s": 1.0, "text": "hello"}]
    for vid in ("ready", "queued"):
        add_video(store, vid, "alice")
        store.put_cues(vid, "en", "en", cue)
    store.put_cues("ready", "de", "en", cue)
    add_video(store, "silent", "alice")
    for vid in ("ready", "silent"):
        store.mark_ready(vid, duration_s=1, width=2, height=2, renditions=[], has_audio=False, media_bytes=1)
    assert store.cue_languages() == {"ready": {"de": "en", "en": "en"}}


def test_a_video_keeps_the_languages_its_upload_asked_for(store: CatalogStore) -> None:
    store.create_video("v1", "alice", "t", "", "private", "sources/v1/source", 1, ["es", "fr"])
    video = store.get_video("v1")
    assert video is not None and video["translate_to"] == ["es", "fr"]
    assert store.list_videos("alice", 10, 0)["items"][0]["translate_to"] == ["es", "fr"]


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
        "translate_to": [],
        "subtitles": {},
        "storyboard": None,
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


def test_a_video_keeps_its_subtitle_record(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")
    record = {"tracks": [{"lang": "en", "label": "English", "source": "embedded"}], "unavailable": ["fr"]}
    store.set_subtitles("v1", record)
    assert store.get_video("v1")["subtitles"] == record  # type: ignore[index]  # parsed, not JSON text
    with pytest.raises(NotFound, match="no video with id 'nope'"):
        store.set_subtitles("nope", record)


def test_a_record_and_its_cues_land_together_or_not_at_all(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")
    first = {"tracks": [{"lang": "en", "label": "English", "source": "embedded"}]}
    store.put_subtitles("v1", first, [("v1", "en", "en", [{"start_s": 1, "end_s": 2, "text": "hello"}])])
    assert store.get_video("v1")["subtitles"] == first  # type: ignore[index]
    assert [c["text"] for c in store.get_cues("v1")] == ["hello"]
    refused = {"tracks": [*first["tracks"], {"lang": "de", "label": "Deutsch", "source": "sidecar"}]}
    too_long = [{"start_s": 1, "end_s": 2, "text": "x" * 2001}]
    with pytest.raises(BadRequest, match="cue 0 has more than 2000 characters"):
        store.put_subtitles("v1", refused, [("v1", "de", "de", too_long)])
    assert store.get_video("v1")["subtitles"] == first  # type: ignore[index]
    assert [(c["lang"], c["text"]) for c in store.get_cues("v1")] == [("en", "hello")]


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
    first.start_session("fam-1", user["id"], T0 + DAY, "jti-1", T0 + DAY)
    video = first.get_video("v1")
    first.close()

    reopened = CatalogStore(db_path, clock=clock)
    try:
        assert reopened.get_user_by_name("alice") == user
        assert reopened.get_video("v1") == video
        assert reopened.rotate_refresh_token("jti-1", "fam-1", user["id"], "jti-2", T0 + DAY)[0] == "ok"
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


def test_a_version_1_catalog_is_migrated_with_its_logins_and_uploads(db_path: Path) -> None:
    from catalog.schema import MIGRATIONS

    with duckdb.connect(str(db_path)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        raw.execute(MIGRATIONS[0])
        raw.execute("INSERT INTO schema_version VALUES (1)")
        raw.execute(
            "INSERT INTO refresh_tokens VALUES ('old', 'alice', 'fam-old', '2026-03-09 12:00:00', NULL, NULL)"
        )
        raw.execute(
            "INSERT INTO videos (id, owner_id, title, visibility, status, source_key, source_bytes,"
            " created_at, updated_at) VALUES ('v0', 'alice', 't', 'private', 'ready', 's', 1,"
            " '2026-03-01 11:30:00', '2026-03-01 11:30:00')"
        )

    migrated = CatalogStore(db_path, clock=lambda: T0)
    try:
        assert migrated.rotate_refresh_token("old", "fam-old", "alice", "new", T0 + 30 * DAY) == (
            "ok",
            datetime(2026, 3, 9, 12, 0, tzinfo=UTC),  # the old token's end is the login's end
        )
        # The upload made before the migration counts: 1 of 1 this hour, free at 12:30.
        assert migrated.reserve_upload("v1", "alice", 1, 10) == (
            "upload limit reached: 1 uploads per hour",
            1800,
        )
    finally:
        migrated.close()


def test_the_catalog_file_and_a_folder_it_makes_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        store = CatalogStore(tmp_path / "private" / "catalog.duckdb")
        store.create_user("alice", "$argon2id$...")
        store.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "private" / "catalog.duckdb").stat().st_mode) == 0o600


def test_update_job_records_chunks_done_of_total(store: CatalogStore) -> None:
    add_video(store, "v1", "alice")
    store.update_job("v1", state="running", step="encode", chunks_done=0, chunks_total=7)
    store.update_job("v1", chunks_done=3)
    video = store.get_video("v1")
    assert video is not None
    assert (video["job"]["chunks_done"], video["job"]["chunks_total"]) == (3, 7)
