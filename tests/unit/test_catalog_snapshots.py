"""Parquet snapshots on a real DuckDB file and a file:// storage root: exact round trips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from catalog.snapshots import list_snapshots
from catalog.store import CatalogStore
from cluster.errors import BadRequest, NotFound
from cluster.settings import StorageSettings
from cluster.storage import Storage


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(StorageSettings(url=f"file://{tmp_path}/root"))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[CatalogStore, CatalogStore]]:
    source, target = CatalogStore(tmp_path / "a.duckdb"), CatalogStore(tmp_path / "b.duckdb")
    yield source, target
    source.close()
    target.close()


def fill(store: CatalogStore) -> None:
    store.create_video(
        "v1", "alice", "Ünïcode title", "with a description", "public", "sources/v1/source", 10
    )
    rendition = {"name": "360p", "width": 640, "height": 360, "bandwidth": 800_000}
    store.mark_ready("v1", duration_s=12.5, width=640, height=360, has_audio=True, media_bytes=999,
                     renditions=[rendition])  # fmt: skip
    store.put_cues("v1", "en", "en", [{"start_s": 0.0, "end_s": 1.25, "text": "Hello <i>there</i>"},
                                      {"start_s": 1.25, "end_s": 3.0, "text": "second line"}])  # fmt: skip
    store.put_cues("v1", "pt-BR", "en", [{"start_s": 0.0, "end_s": 1.25, "text": "Olá"}])
    store.create_video("v2", "bob", "queued one", "", "private", "sources/v2/source", 5)
    store.update_job("v2", state="running", step="encode", progress=0.4, plan_id="p1", attempts=2)


def rows(store: CatalogStore, sql: str) -> list[tuple[Any, ...]]:
    return store._db.execute(sql).fetchall()


def test_export_then_import_round_trips_every_row(
    stores: tuple[CatalogStore, CatalogStore], storage: Storage
) -> None:
    source, target = stores
    fill(source)

    exported = source.export_snapshot(storage, "20260101T000000Z")
    imported = target.import_snapshot(storage)

    assert exported == {"snapshot": "20260101T000000Z", "path": "catalog/snapshots/20260101T000000Z",
                        "videos": 2, "cues": 3, "languages": ["en", "pt-BR"]}  # fmt: skip
    assert imported == {"snapshot": "20260101T000000Z", "videos": 2, "cues": 3}
    for sql in (
        "SELECT * FROM videos ORDER BY id",
        "SELECT * FROM jobs ORDER BY video_id",
        "SELECT video_id, lang, source_lang, idx, start_s, end_s, text FROM cues ORDER BY ALL",
    ):
        assert rows(target, sql) == rows(source, sql)
    assert target.get_video("v1") == source.get_video("v1")
    assert target.unfinished_jobs() == ["v2"]  # a restored running job is resumed like any other
    assert [h["lang"] for h in target.search("olá", "alice")["items"]] == ["pt-BR"]  # and it is searchable


def test_cues_are_partitioned_by_language(
    stores: tuple[CatalogStore, CatalogStore], storage: Storage
) -> None:
    source, _ = stores
    fill(source)
    source.export_snapshot(storage, "20260101T000000Z")

    keys = storage.list("catalog/snapshots/20260101T000000Z")
    assert [k.split("/", 3)[3] for k in keys] == [
        "cues/lang=en/part-0.parquet", "cues/lang=pt-BR/part-0.parquet", "jobs.parquet", "videos.parquet",
    ]  # fmt: skip
    english = ds.dataset(storage.path("catalog/snapshots/20260101T000000Z/cues/lang=en"), format="parquet")
    assert english.to_table().column("text").to_pylist() == ["Hello <i>there</i>", "second line"]


def test_import_replaces_the_snapshot_videos_and_keeps_the_others(
    stores: tuple[CatalogStore, CatalogStore], storage: Storage
) -> None:
    source, target = stores
    fill(source)
    source.export_snapshot(storage, "20260101T000000Z")
    fill(target)
    target.put_cues("v1", "en", "en", [{"start_s": 0, "end_s": 1, "text": "changed since"}])
    target.create_video("v3", "carol", "only here", "", "public", "k", 1)

    target.import_snapshot(storage, "20260101T000000Z")

    assert [c["text"] for c in target.get_cues("v1", "en")] == ["Hello <i>there</i>", "second line"]
    assert target.search("changed", "alice")["total"] == 0
    assert target.get_video("v3") is not None


def test_unknown_or_existing_snapshots_are_refused(
    stores: tuple[CatalogStore, CatalogStore], storage: Storage
) -> None:
    source, target = stores
    with pytest.raises(NotFound, match="no snapshot"):
        target.import_snapshot(storage)
    source.export_snapshot(storage, "20260101T000000Z")
    with pytest.raises(BadRequest, match="exists already"):
        source.export_snapshot(storage, "20260101T000000Z")
    with pytest.raises(NotFound, match="no snapshot '../x'"):
        target.import_snapshot(storage, "../x")
    assert list_snapshots(storage) == ["20260101T000000Z"]
