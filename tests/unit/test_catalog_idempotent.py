"""Every write of the catalog, made twice with the same arguments, as ``catalog.client`` does when
a catalog restart interrupted the first: the second answers as the first did and changes nothing.

Real DuckDB file and search index; the clock stands still between the two calls, so "nothing
changed" is every row of every table, and the search answers, exactly as after the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from catalog.snapshots import list_snapshots
from catalog.store import CatalogStore
from cluster.errors import Conflict
from cluster.settings import StorageSettings
from cluster.storage import Storage

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CUES = [{"start_s": 0.0, "end_s": 1.5, "text": "the harbour keeper waves"}]
RENDITION = {"name": "360p", "width": 640, "height": 360, "bandwidth": 800_000}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    opened = CatalogStore(tmp_path / "catalog.duckdb", clock=lambda: T0)
    yield opened
    opened.close()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(StorageSettings(url=f"file://{tmp_path}/root"))


def everything(store: CatalogStore) -> dict[str, Any]:
    """Every row of every table, and what search finds, in a comparable form."""
    with store._reading() as cur:
        tables = [
            row[0] for row in cur.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        ]
        rows = {name: sorted(map(repr, cur.execute(f'SELECT * FROM "{name}"').fetchall())) for name in tables}
    return rows | {"search": store.search("harbour", "alice")}


def a_ready_video(store: CatalogStore, video_id: str = "v1") -> None:
    store.create_video(video_id, "alice", "harbour", "", "private", f"sources/{video_id}/source", 10)
    store.mark_ready(video_id, duration_s=3.0, width=640, height=360, renditions=[RENDITION],
                     has_audio=True, media_bytes=99)  # fmt: skip


def ignoring_count(call: Callable[[CatalogStore], Any]) -> Callable[[CatalogStore], None]:
    """Writes that answer how much *they* ended (logins, a video): the repeat ends nothing."""
    return lambda store: [call(store), None][1]


def a_login(store: CatalogStore) -> None:
    store.start_session("fam", "alice", T0 + 90 * DAY, "jti-1", T0 + 30 * DAY)


WRITES: dict[str, tuple[Callable[[CatalogStore], Any], Callable[[CatalogStore], Any]]] = {
    # name: (what exists before, the write made twice)
    "create_user": (lambda s: None, lambda s: s.create_user("alice", "$argon2id$salted")),
    "start_session": (lambda s: None, a_login),
    "rotate_refresh_token": (
        a_login,
        lambda s: s.rotate_refresh_token("jti-1", "fam", "alice", "jti-2", T0 + 30 * DAY),
    ),
    "revoke_family": (a_login, ignoring_count(lambda s: s.revoke_family("fam", "alice"))),
    "change_password": (a_login, ignoring_count(lambda s: s.change_password("alice", "new-hash"))),
    "take_auth_attempts": (
        lambda s: None,
        lambda s: s.take_auth_attempts(
            [("login:username", "alice", 1), ("address", "10.0.0.1", 1)], 300, ["a1", "a2"]
        ),  # fmt: skip
    ),
    "release_auth_attempts": (
        lambda s: s.take_auth_attempts([("address", "10.0.0.1", 5)], 300, ["a1"]),
        lambda s: s.release_auth_attempts(["a1"]),
    ),
    "reserve_upload": (lambda s: None, lambda s: s.reserve_upload("v9", "alice", 30, 1)),
    "abandon_upload": (
        lambda s: s.reserve_upload("v9", "alice", 30, 3),
        lambda s: s.abandon_upload("v9"),
    ),
    "create_video": (
        lambda s: s.reserve_upload("v1", "alice", 30, 3),
        lambda s: s.create_video("v1", "alice", "harbour", "", "private", "sources/v1/source", 10, ["es"]),
    ),
    "update_job": (
        lambda s: s.create_video("v1", "alice", "t", "", "private", "sources/v1/source", 10),
        lambda s: s.update_job("v1", state="running", step="encode", progress=0.5, attempts=1, chunks_done=2),
    ),
    "mark_ready": (
        lambda s: s.create_video("v1", "alice", "harbour", "", "private", "sources/v1/source", 10),
        lambda s: s.mark_ready(
            "v1",
            duration_s=3.0,
            width=640,
            height=360,
            renditions=[RENDITION],
            has_audio=True,
            media_bytes=99,
        ),  # fmt: skip
    ),
    "mark_failed": (
        lambda s: s.create_video("v1", "alice", "harbour", "", "private", "sources/v1/source", 10),
        lambda s: s.mark_failed("v1", "the upload is not a video"),
    ),
    "put_cues": (a_ready_video, lambda s: s.put_cues("v1", "en", "en", CUES)),
    "put_many_cues": (
        a_ready_video,
        lambda s: s.put_many_cues([("v1", "es", "en", CUES), ("v1", "en", "en", CUES)]),
    ),
    "put_subtitles": (
        a_ready_video,
        lambda s: s.put_subtitles(
            "v1", {"tracks": [], "unavailable": [], "skipped": [], "warnings": []}, [("v1", "en", "en", CUES)]
        ),
    ),
    "set_subtitles": (
        a_ready_video,
        lambda s: s.set_subtitles("v1", {"tracks": [], "unavailable": ["fr"], "skipped": [], "warnings": []}),
    ),
    "create_upload": (
        lambda s: None,
        lambda s: s.create_upload(
            "u1", "alice", 1000, {"title": "t"}, "", T0 + DAY, per_hour=30, in_flight=1
        ),
    ),
    "record_upload_progress": (
        lambda s: s.create_upload(
            "u1", "alice", 1000, {"title": "t"}, "", T0 + DAY, per_hour=30, in_flight=3
        ),
        lambda s: s.record_upload_progress("u1", 0, 400, {"parts": [1]}, T0 + 2 * DAY),
    ),
    "finish_upload": (
        lambda s: [
            s.create_upload(
                "u1",
                "alice",
                10,
                {"title": "t", "description": "", "visibility": "private"},
                "",
                T0 + DAY,
                per_hour=30,
                in_flight=3,
            ),
            s.record_upload_progress("u1", 0, 10, {}, T0 + DAY),
        ],
        lambda s: s.finish_upload("u1", "sources/u1/source", T0 + DAY),
    ),
    "drop_upload": (
        lambda s: s.create_upload("u1", "alice", 10, {"title": "t"}, "", T0 + DAY, per_hour=30, in_flight=3),
        ignoring_count(lambda s: s.drop_upload("u1")),
    ),
    "create_endpoint": (
        lambda s: None,
        lambda s: s.create_endpoint("alice", "https://hooks.example/in", ["video.ready"], "whsec_one", 1),
    ),
    "rotate_secret": (
        lambda s: s.create_endpoint("alice", "https://hooks.example/in", ["video.ready"], "whsec_old", 5),
        lambda s: s.rotate_secret("alice", s.list_endpoints("alice")[0]["id"], "whsec_new", T0 + DAY),
    ),
    "delete_video": (a_ready_video, ignoring_count(lambda s: s.delete_video("v1"))),
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_write_made_twice_answers_alike_and_changes_nothing_more(store: CatalogStore, name: str) -> None:
    before, write = WRITES[name]
    before(store)
    first = write(store)
    after_first = everything(store)

    second = write(store)

    assert second == first
    assert everything(store) == after_first


def test_a_repeated_rotation_keeps_the_login_alive(store: CatalogStore) -> None:
    """Without the repeat check the second call would look like a stolen token's reuse and end the login."""
    a_login(store)
    first = store.rotate_refresh_token("jti-1", "fam", "alice", "jti-2", T0 + 30 * DAY)
    assert (
        store.rotate_refresh_token("jti-1", "fam", "alice", "jti-2", T0 + 30 * DAY)
        == first
        == ("ok", T0 + 30 * DAY)
    )
    assert store.rotate_refresh_token("jti-2", "fam", "alice", "jti-3", T0 + 30 * DAY)[0] == "ok"
    # A real reuse (a fresh successor id) still ends the login.
    assert store.rotate_refresh_token("jti-1", "fam", "alice", "jti-4", T0 + 30 * DAY) == ("reused", None)
    assert store.rotate_refresh_token("jti-3", "fam", "alice", "jti-5", T0 + 30 * DAY) == ("revoked", None)


def test_repeats_are_told_from_new_calls(store: CatalogStore) -> None:
    """Only the same call is answered as done: another registration of the name, another video
    with the id, another upload over the limit are still refused."""
    store.create_user("alice", "$argon2id$salt-one")
    with pytest.raises(Conflict, match="username 'alice' is taken"):
        store.create_user("alice", "$argon2id$salt-two")
    store.create_video("v1", "alice", "harbour", "", "private", "sources/v1/source", 10)
    with pytest.raises(Conflict, match="video 'v1' already exists"):
        store.create_video("v1", "bob", "harbour", "", "private", "sources/v1/source", 10)
    assert store.reserve_upload("v2", "alice", 30, 2) is None
    assert store.reserve_upload("v2", "alice", 30, 2) is None  # the same reservation
    assert store.reserve_upload("v3", "alice", 30, 2) is not None  # v1 queued and v2 streaming: full
    assert store.take_auth_attempts([("address", "x", 1)], 300, ["t1"]) == ["t1"]
    assert store.take_auth_attempts([("address", "x", 1)], 300, ["t1"]) == ["t1"]
    assert isinstance(store.take_auth_attempts([("address", "x", 1)], 300, ["t2"]), tuple)


def test_an_export_made_twice_writes_one_snapshot(store: CatalogStore, storage: Storage) -> None:
    a_ready_video(store)
    store.put_cues("v1", "en", "en", CUES)
    first = store.export_snapshot(storage, "20260301T120000Z", exist_ok=True)
    files = storage.list("catalog/snapshots")

    assert store.export_snapshot(storage, "20260301T120000Z", exist_ok=True) == first
    assert storage.list("catalog/snapshots") == files
    assert list_snapshots(storage) == ["20260301T120000Z"]
    assert first == {"snapshot": "20260301T120000Z", "path": "catalog/snapshots/20260301T120000Z",
                     "videos": 1, "cues": 1, "languages": ["en"]}  # fmt: skip


def test_an_export_that_stopped_half_way_is_written_again_whole(
    store: CatalogStore, storage: Storage
) -> None:
    """What a catalog killed while exporting leaves: cues but no videos.parquet (written last)."""
    a_ready_video(store)
    store.put_cues("v1", "en", "en", CUES)
    storage.write_bytes("catalog/snapshots/20260301T120000Z/cues/lang=en/part-0.parquet", b"half")
    assert list_snapshots(storage) == []

    done = store.export_snapshot(storage, "20260301T120000Z", exist_ok=True)

    assert (done["videos"], done["cues"]) == (1, 1)
    assert list_snapshots(storage) == ["20260301T120000Z"]


def test_an_import_made_twice_changes_nothing_more(store: CatalogStore, storage: Storage) -> None:
    a_ready_video(store)
    store.put_cues("v1", "en", "en", CUES)
    store.export_snapshot(storage, "20260301T120000Z")
    store.import_snapshot(storage, "20260301T120000Z")
    after_first = everything(store)
    store.import_snapshot(storage, "20260301T120000Z")
    assert everything(store) == after_first


def test_a_lease_taken_twice_by_its_holder_is_held_once() -> None:
    from catalog.leases import Leases

    leases = Leases()
    assert leases.acquire_lease("subtitles:v1", "h1", 60) and leases.acquire_lease("subtitles:v1", "h1", 60)
    assert not leases.acquire_lease("subtitles:v1", "h2", 60)
    assert leases.release_lease("subtitles:v1", "h1") and not leases.release_lease("subtitles:v1", "h1")
    assert leases.acquire_lease("subtitles:v1", "h2", 60)
