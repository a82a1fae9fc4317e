"""The Tantivy index beside the catalog: in step with every change the moment it returns, rebuilt
from the catalog when it is lost or damaged, and tokenizing as a query does."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from catalog.store import CatalogStore
from cluster.settings import StorageSettings
from cluster.storage import Storage

ALICE, BOB = "a" * 32, "b" * 32
QUERIES = ["harbour", '"grey harbour"', "har*", "lantern sea", "night", "zephyr"]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.duckdb"


@pytest.fixture
def store(path: Path) -> Iterator[CatalogStore]:
    opened = CatalogStore(path)
    yield opened
    opened.close()


def cues(*texts: str) -> list[dict[str, Any]]:
    return [{"start_s": 2.0 * i, "end_s": 2.0 * i + 1.5, "text": text} for i, text in enumerate(texts)]


def make_video(store: CatalogStore, video_id: str, owner: str = ALICE, visibility: str = "public",
               title: str = "", ready: bool = True) -> str:  # fmt: skip
    store.create_video(video_id, owner, title or f"video {video_id}", "a description", visibility, "k", 1)
    if ready:
        store.mark_ready(
            video_id, duration_s=9, width=2, height=2, renditions=[], has_audio=True, media_bytes=1
        )
    return video_id


def found(store: CatalogStore, q: str, viewer: str | None = ALICE, **kw: Any) -> set[tuple[Any, ...]]:
    return {
        (h["video_id"], h["field"], h["lang"], h["start_s"], h["text"])
        for h in store.search(q, viewer, **kw)["items"]
    }


def fill(store: CatalogStore) -> None:
    """A few videos of both owners, in two languages, one private and one never ready."""
    for n in range(4):
        vid = make_video(
            store, f"v{n}", owner=ALICE if n % 2 else BOB, visibility="private" if n == 3 else "public"
        )
        store.put_cues(
            vid, "en", "en", cues(f"the grey harbour at night {n}", "a lantern by the sea", "harbours")
        )
        store.put_cues(vid, "es", "en", cues("el puerto gris", "una linterna"))
    store.put_cues(make_video(store, "queued", ready=False), "en", "en", cues("harbour zephyr"))


def every_result(store: CatalogStore) -> list[tuple[int, set[tuple[Any, ...]]]]:
    results = []
    for q in QUERIES:
        for viewer in (ALICE, BOB, None):
            answer = store.search(q, viewer, limit=100)
            results.append((answer["total"], found(store, q, viewer, limit=100)))
    return results


def test_a_video_is_found_the_moment_mark_ready_returns(store: CatalogStore) -> None:
    vid = make_video(store, "v1", title="Zephyr over the bay", ready=False)
    store.put_cues(vid, "en", "en", cues("a zephyr blows"))  # cues come before mark_ready
    assert store.search("zephyr", ALICE)["total"] == 0  # not ready: not searchable

    store.mark_ready(vid, duration_s=9, width=2, height=2, renditions=[], has_audio=True, media_bytes=1)

    assert found(store, "zephyr") == {
        (vid, "title", None, None, "Zephyr over the bay"), (vid, "subtitles", "en", 0.0, "a zephyr blows"),
    }  # fmt: skip


def test_a_failed_video_leaves_search_at_once(store: CatalogStore) -> None:
    vid = make_video(store, "v1", title="Zephyr")
    store.mark_failed(vid, "re-encode failed")
    assert store.search("zephyr", ALICE)["total"] == 0


def test_new_cues_on_a_ready_video_are_found_at_once_and_replaced_ones_are_gone(store: CatalogStore) -> None:
    first, second = make_video(store, "v1"), make_video(store, "v2")
    store.put_cues(first, "en", "en", cues("old words"))
    added = store.put_many_cues(
        [
            (first, "en", "en", cues("new words")),
            (first, "fr", "en", cues("mots nouveaux")),
            (second, "fr", "en", cues("nouveaux encore")),
        ]
    )  # fmt: skip  (a backfill)
    assert added == 3
    assert found(store, "nouveaux") == {(first, "subtitles", "fr", 0.0, "mots nouveaux"),
                                        (second, "subtitles", "fr", 0.0, "nouveaux encore")}  # fmt: skip
    assert found(store, "old") == set() and len(found(store, "new")) == 1
    # The titles of videos that now have French subtitles count for lang=fr.
    assert {h["field"] for h in store.search("video", ALICE, lang="fr")["items"]} == {"title"}


def test_a_deleted_video_and_a_video_made_private_leave_search_at_once(
    store: CatalogStore, tmp_path: Path
) -> None:
    fill(store)
    assert {h[0] for h in found(store, "harbour", BOB)} == {"v0", "v1", "v2"}
    assert store.delete_video("v2")
    assert {h[0] for h in found(store, "harbour", BOB)} == {"v0", "v1"}

    # v1 made private (by restoring a snapshot where it is): gone for others, kept for its owner.
    storage = Storage(StorageSettings(url=f"file://{tmp_path}/root"))
    other = CatalogStore(tmp_path / "other.duckdb")
    try:
        make_video(other, "v1", owner=ALICE, visibility="private")
        other.put_cues("v1", "en", "en", cues("the grey harbour at night 1"))
        other.export_snapshot(storage, "20260101T000000Z")
    finally:
        other.close()
    store.import_snapshot(storage)
    assert {h[0] for h in found(store, "harbour", BOB)} == {"v0"}
    assert {h[0] for h in found(store, "harbour", None)} == {"v0"}
    assert {h[0] for h in found(store, "harbour", ALICE)} == {"v0", "v1", "v3"}


def test_a_crash_before_reindexing_is_caught_up_on_open(path: Path) -> None:
    store = CatalogStore(path)
    fill(store)
    store.close()
    # The change committed, the index never saw it (a crash right after the commit).
    with duckdb.connect(str(path)) as db:
        db.execute(
            "UPDATE cues SET text = 'a zephyr at night' WHERE video_id = 'v0' AND lang = 'en' AND idx = 0"
        )
        db.execute("INSERT INTO search_dirty VALUES ('v0')")

    reopened = CatalogStore(path)
    try:
        assert found(reopened, "zephyr") == {("v0", "subtitles", "en", 0.0, "a zephyr at night")}
        assert "v0" not in {h[0] for h in found(reopened, '"harbour at night"', BOB)}
        assert reopened._db.execute("SELECT count(*) FROM search_dirty").fetchone() == (0,)
        caught_up = every_result(reopened)
    finally:
        reopened.close()
    shutil.rmtree(path.with_name(path.name + ".search"))
    fresh = CatalogStore(path)  # a whole index built from the tables
    try:
        assert every_result(fresh) == caught_up
    finally:
        fresh.close()


@pytest.mark.parametrize("damage", ["remove", "corrupt", "unfinished"])
def test_a_lost_or_damaged_index_is_rebuilt_from_the_catalog(path: Path, damage: str) -> None:
    store = CatalogStore(path)
    fill(store)
    before = every_result(store)
    store.close()
    directory = path.with_name(path.name + ".search")
    if damage == "remove":
        shutil.rmtree(directory)
    elif damage == "corrupt":
        (directory / "meta.json").write_text("{not json")
    else:  # a rebuild cut short: the index exists but was never filled
        (directory / "vodray-complete").unlink()
        with duckdb.connect(str(path)) as db:
            db.execute("UPDATE cues SET text = 'a zephyr' WHERE video_id = 'v1' AND idx = 0 AND lang = 'en'")

    reopened = CatalogStore(path)
    try:
        if damage == "unfinished":
            assert found(reopened, "zephyr") == {("v1", "subtitles", "en", 0.0, "a zephyr")}
        else:
            assert every_result(reopened) == before
        assert sum(total for total, _ in before) > 0
    finally:
        reopened.close()


def test_export_then_import_round_trips_search_results(store: CatalogStore, tmp_path: Path) -> None:
    fill(store)
    storage = Storage(StorageSettings(url=f"file://{tmp_path}/root"))
    store.export_snapshot(storage, "20260101T000000Z")
    target = CatalogStore(tmp_path / "target.duckdb")
    try:
        target.import_snapshot(storage)
        assert every_result(target) == every_result(store)
    finally:
        target.close()


@pytest.mark.parametrize(
    ("text", "queries"),
    [
        ("Un café crème", ["CAFÉ", "café", "caf*", '"café crème"']),
        ("Die Straße", ["straße", "STRASSE", "stra*"]),  # casefold: ß is ss, in the index and the query
        ("Ὀδυσσεύς ΟΔΥΣΣΕΥΣ", ["ὀδυσσεύς", "οδυσσευσ"]),  # a final sigma folds as a query's does
        ("नमस्ते दुनिया", ["नमस्ते", '"नमस्ते दुनिया"']),  # combining marks: split alike on both sides
        ("東京 タワー", ["東京", "タワー"]),
    ],
)
def test_index_and_query_tokenize_alike(store: CatalogStore, text: str, queries: list[str]) -> None:
    vid = make_video(store, "v1")
    store.put_cues(vid, "xx", "xx", cues(text))
    for q in queries:
        assert found(store, q) == {(vid, "subtitles", "xx", 0.0, text)}, q
    assert found(store, "cafe") == set()  # accents are kept: no folding the query does not do


def test_a_catalog_searched_by_postings_is_migrated_and_its_cues_indexed(path: Path) -> None:
    from catalog.schema import MIGRATIONS

    with duckdb.connect(str(path)) as raw:  # a catalog at version 7: postings in DuckDB
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for ddl in MIGRATIONS[:7]:
            raw.execute(ddl)
        raw.execute("INSERT INTO schema_version VALUES (7)")
        raw.execute(
            "INSERT INTO videos (id, owner_id, title, visibility, status, source_key, source_bytes,"
            " created_at, updated_at)"
            " VALUES ('v0', ?, 'Old harbour', 'public', 'ready', 's', 1, now(), now())",
            [ALICE],
        )
        raw.execute("INSERT INTO cues VALUES (41, 'v0', 'en', 'en', 0, 1.0, 2.5, 'the lantern keeper')")

    store = CatalogStore(path)
    try:
        assert found(store, "lantern") == {("v0", "subtitles", "en", 1.0, "the lantern keeper")}
        assert found(store, "harbour", None) == {("v0", "title", None, None, "Old harbour")}
        cue = {"video_id": "v0", "lang": "en", "source_lang": "en", "idx": 0, "start_s": 1.0, "end_s": 2.5}
        assert store.get_cues("v0") == [cue | {"text": "the lantern keeper"}]
        tables = {row[0] for row in store._db.execute("SHOW TABLES").fetchall()}
        assert not {t for t in tables if t.startswith("search_")} - {"search_dirty"}
    finally:
        store.close()


def test_searches_while_tracks_are_replaced_never_see_half_a_track(store: CatalogStore) -> None:
    """The catalog actor searches from many threads while one writes: every search sees each
    track whole (its 50 lines) or not at all, and none fails."""
    import threading

    videos = [make_video(store, f"v{n}") for n in range(5)]
    stop, totals, errors = threading.Event(), [], []

    def write() -> None:
        for round_ in range(40):
            track = cues(*(f"harbour line {round_}" for _ in range(50)))
            store.put_cues(videos[round_ % 5], "en", "en", track)
        stop.set()

    def read() -> None:
        while not stop.is_set():
            try:
                totals.append(store.search("harbour", ALICE, limit=5)["total"])
            except Exception as exc:  # noqa: BLE001 - collected to fail the test with it
                errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(totals) > 20
    assert {total % 50 for total in totals} == {0}
    assert store.search("harbour", ALICE)["total"] == 250


def test_an_import_that_fails_changes_neither_the_catalog_nor_search(
    store: CatalogStore, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from cluster.errors import BadRequest

    fill(store)
    storage = Storage(StorageSettings(url=f"file://{tmp_path}/root"))
    source = CatalogStore(tmp_path / "source.duckdb")
    try:
        make_video(source, "v0", title="Replaced title")
        make_video(source, "v9", title="A new video")
        source.put_cues("v9", "en", "en", cues("a zephyr"))
        source.export_snapshot(storage, "20260101T000000Z")
    finally:
        source.close()
    # One cue of the snapshot ends before it starts: the import is refused at that cue.
    (part,) = (tmp_path / "root/catalog/snapshots/20260101T000000Z/cues/lang=en").glob("*.parquet")
    table = pq.read_table(part)
    pq.write_table(table.set_column(table.schema.get_field_index("end_s"), "end_s", [[-1.0]]), part)
    before = every_result(store)

    with pytest.raises(BadRequest, match="0 <= start_s <= end_s"):
        store.import_snapshot(storage)

    assert every_result(store) == before
    assert found(store, "replaced") == set() and found(store, "zephyr") == set()
    assert store.get_video("v9") is None and len(store.get_cues("v0")) == 5


def test_search_has_a_change_before_any_other_reader_sees_it(store: CatalogStore) -> None:
    """The index takes a change inside its transaction, before the commit: a reader that sees a
    video ready in the tables (another cursor: committed state only) finds it in search next."""
    seen_by_others: list[Any] = []
    replace = store._search.replace_videos  # type: ignore[union-attr]

    def spying(video_ids: Any, documents: Any) -> int:
        with store._reading() as other:  # what any other reader sees at that moment
            seen_by_others.append(other.execute("SELECT status FROM videos WHERE id = 'v1'").fetchone())
        return replace(video_ids, documents)

    store._search.replace_videos = spying  # type: ignore[union-attr,method-assign]
    make_video(store, "v1", title="lighthouse keeper")
    assert seen_by_others[-1] != ("ready",)  # search had it before anyone else saw it ready
    assert store.get_video("v1")["status"] == "ready"  # type: ignore[index]
    assert {h[0] for h in found(store, "lighthouse")} == {"v1"}


def test_a_commit_that_fails_after_the_index_took_it_gives_the_index_back(store: CatalogStore) -> None:
    make_video(store, "v1", title="lighthouse keeper")

    def failing(cursor: Any) -> None:
        cursor.rollback()
        raise duckdb.IOException("disk full")

    store._commit = failing  # type: ignore[method-assign]
    with pytest.raises(duckdb.IOException, match="disk full"):
        store.mark_failed("v1", "renamed harbour")  # a change search sees (the video leaves it)
    del store._commit
    assert store.get_video("v1")["status"] == "ready"  # type: ignore[index]
    assert {h[0] for h in found(store, "lighthouse")} == {"v1"}  # back, not left out
