"""Parquet snapshots of the catalog under the storage root: the backup and the notebook's way in.

    catalog/snapshots/{YYYYmmddTHHMMSSZ}/videos.parquet        every video row
    catalog/snapshots/{YYYYmmddTHHMMSSZ}/jobs.parquet          their jobs (a restored queued video resumes)
    catalog/snapshots/{YYYYmmddTHHMMSSZ}/cues/lang={xx}/*.parquet  every cue, by language

Read one from a notebook (Ray Data, pandas, polars, DuckDB all take the same paths)::

    import ray
    cues = ray.data.read_parquet(f"{root}/catalog/snapshots/{stamp}/cues")  # lang from lang=xx/

Importing a snapshot replaces the videos it holds (their rows, cues and search documents) and
leaves every other video alone, in one transaction; the search index catches up with them in
one commit before the call returns.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from catalog.cues import CUE_COLUMNS, insert_tracks
from catalog.search.index import mark_dirty
from cluster.errors import BadRequest, NotFound
from cluster.storage import Storage

SNAPSHOTS = "catalog/snapshots"
IMPORT_BATCH_VIDEOS = 200
"""Videos whose cues are built into one Arrow table and inserted at once while importing."""


def snapshot_name(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def list_snapshots(storage: Storage) -> list[str]:
    """Snapshot names, oldest first (they sort as their time)."""
    names = {key.split("/")[2] for key in storage.list(SNAPSHOTS) if key.count("/") >= 3}
    return sorted(name for name in names if storage.exists(f"{SNAPSHOTS}/{name}/videos.parquet"))


class SnapshotMethods:
    """Mixed into ``CatalogStore``: export and import, run where the database file is."""

    if TYPE_CHECKING:

        def _reading(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...
        def _writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def export_snapshot(
        self, storage: Storage, name: str | None = None, *, exist_ok: bool = False
    ) -> dict[str, Any]:
        """Write every video and cue as of one moment to a new snapshot; returns its summary.

        ``exist_ok``: a whole snapshot of that name is answered, not refused (the CLI names its
        snapshot before the call, so the call retried after a catalog restart writes it once)."""
        name = name or snapshot_name(datetime.now(UTC))
        prefix = f"{SNAPSHOTS}/{name}"
        if storage.exists(f"{prefix}/videos.parquet"):
            if exist_ok:
                return snapshot_summary(storage, name)
            raise BadRequest(f"snapshot {name!r} exists already")
        storage.delete_prefix(prefix)  # what an export that stopped half way left
        with self._reading() as cur:
            cur.begin()  # videos and cues from the same moment
            videos = cur.execute("SELECT * FROM videos ORDER BY id").to_arrow_table()
            jobs = cur.execute("SELECT * FROM jobs ORDER BY video_id").to_arrow_table()
            cues = cur.execute(
                f"SELECT {', '.join(CUE_COLUMNS)} FROM cues ORDER BY video_id, lang, idx"
            ).to_arrow_table()
            cur.rollback()
        if cues.num_rows:
            ds.write_dataset(
                cues,
                storage.path(f"{prefix}/cues"),
                filesystem=storage.fs,
                format="parquet",
                partitioning=["lang"],
                partitioning_flavor="hive",
                basename_template="part-{i}.parquet",
                existing_data_behavior="error",
            )
        for table_name, table in (("jobs", jobs), ("videos", videos)):  # videos last: it marks a whole one
            with storage.open(f"{prefix}/{table_name}.parquet", "wb") as out:
                pq.write_table(table, out)
        languages = sorted(set(cues.column("lang").to_pylist()))
        return {"snapshot": name, "path": prefix, "videos": videos.num_rows, "cues": cues.num_rows,
                "languages": languages}  # fmt: skip

    def import_snapshot(self, storage: Storage, name: str | None = None) -> dict[str, Any]:
        """Restore the videos and cues of snapshot ``name`` (default: the newest)."""
        names = list_snapshots(storage)
        if name is None and not names:
            raise NotFound(f"no snapshot under {SNAPSHOTS}/")
        name = name or names[-1]
        if name not in names:
            raise NotFound(f"no snapshot {name[:40]!r} (there are: {', '.join(names[-5:]) or 'none'})")
        prefix = f"{SNAPSHOTS}/{name}"
        with storage.open(f"{prefix}/videos.parquet", "rb") as source:
            videos = pq.read_table(source)
        with storage.open(f"{prefix}/jobs.parquet", "rb") as source:
            jobs = pq.read_table(source)
        cues = read_cues(storage, prefix)
        video_ids = videos.column("id").to_pylist()
        with self._writing() as cur:
            mark_dirty(cur, video_ids)
            cur.execute("DELETE FROM cues WHERE list_contains(?, video_id)", [video_ids])
            cur.execute("DELETE FROM videos WHERE list_contains(?, id)", [video_ids])
            cur.execute("DELETE FROM jobs WHERE list_contains(?, video_id)", [video_ids])
            cur.register("snapshot_videos", videos)
            cur.register("snapshot_jobs", jobs)
            try:
                cur.execute("INSERT INTO videos BY NAME SELECT * FROM snapshot_videos")
                cur.execute("INSERT INTO jobs BY NAME SELECT * FROM snapshot_jobs")
            finally:
                cur.unregister("snapshot_videos")
                cur.unregister("snapshot_jobs")
            # One transaction for the whole import: all of it lands or none, reindexed in one
            # search commit when it returns.
            tracks = _tracks(cues)
            for first in range(0, len(tracks), IMPORT_BATCH_VIDEOS):
                insert_tracks(cur, tracks[first : first + IMPORT_BATCH_VIDEOS])
        return {"snapshot": name, "videos": len(video_ids), "cues": cues.num_rows}


def snapshot_summary(storage: Storage, name: str) -> dict[str, Any]:
    """What ``export_snapshot`` answered for the whole snapshot ``name``, read back from it."""
    prefix = f"{SNAPSHOTS}/{name}"
    with storage.open(f"{prefix}/videos.parquet", "rb") as source:
        videos = pq.read_metadata(source).num_rows
    cues = read_cues(storage, prefix)
    languages = sorted(set(cues.column("lang").to_pylist()))
    return {"snapshot": name, "path": prefix, "videos": videos, "cues": cues.num_rows, "languages": languages}


def read_cues(storage: Storage, prefix: str) -> pa.Table:
    """A snapshot's cues, with ``lang`` back as a plain string column, in export order."""
    if not storage.exists(f"{prefix}/cues"):
        return pa.table({column: pa.array([], pa.string()) for column in CUE_COLUMNS})
    dataset = ds.dataset(storage.path(f"{prefix}/cues"), filesystem=storage.fs, format="parquet",
                         partitioning="hive")  # fmt: skip
    table = dataset.to_table()
    table = table.set_column(
        table.schema.get_field_index("lang"), "lang", table.column("lang").cast(pa.string())
    )
    return table.select(list(CUE_COLUMNS)).sort_by([("video_id", "ascending"), ("lang", "ascending"),
                                                    ("idx", "ascending")])  # fmt: skip


def _tracks(cues: pa.Table) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    tracks: dict[tuple[str, str], tuple[str, list[dict[str, Any]]]] = {}
    for row in cues.to_pylist():
        _, rows = tracks.setdefault((row["video_id"], row["lang"]), (row["source_lang"], []))
        rows.append({"start_s": row["start_s"], "end_s": row["end_s"], "text": row["text"]})
    return [(video_id, lang, source_lang, rows) for (video_id, lang), (source_lang, rows) in tracks.items()]
