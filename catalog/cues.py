"""Subtitle cues in the catalog, and the search over them, as methods of the catalog store.

A video's cues are kept per language (the original track and each translation, with the
language it was translated from). Putting a language's cues replaces that language's cues in
one transaction that also marks the video for reindexing; the store reindexes it before the
call returns (``_reindex_dirty``), so the video is searchable in that language the moment
the call returns. Putting cues and setting the subtitle record replace what was there, so the
same call made twice (``catalog.client`` repeats one a catalog restart interrupted) leaves what
one leaves. The search index itself is Tantivy, beside the DuckDB file
(``catalog.search.engine``), derived from the ``videos`` and ``cues`` tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from catalog.outbox import record_video_event, status_of
from catalog.search.engine import SearchEngine
from catalog.search.index import FIELDS, clear_dirty, dirty_videos, documents, mark_dirty
from catalog.search.query import parse_query
from catalog.search.search import search
from catalog.validation import check_cues, check_lang
from cluster.errors import BadRequest, NotFound

log = logging.getLogger(__name__)

CUE_COLUMNS = ("video_id", "lang", "source_lang", "idx", "start_s", "end_s", "text")
"""A cue as the ``cues`` table, callers and the Parquet export see it."""

Track = tuple[str, str, str, Sequence[Mapping[str, Any]]]
"""``(video_id, lang, source_lang, cues)``; each cue a ``{"start_s", "end_s", "text"}``."""


def cue_rows(track: Track) -> dict[str, list[Any]]:
    """A track's validated cues (``check_cues``) as columns of the ``cues`` table, numbered
    from 0 in order."""
    video_id, lang, source_lang, cues = track
    check_lang(lang)
    check_lang(source_lang, "source_lang")
    check_cues(cues)
    rows: dict[str, list[Any]] = {column: [] for column in CUE_COLUMNS}
    for idx, cue in enumerate(cues):
        values = (
            video_id,
            lang,
            source_lang,
            idx,
            float(cue["start_s"]),
            float(cue["end_s"]),
            str(cue["text"]),
        )
        for column, value in zip(rows, values, strict=True):
            rows[column].append(value)
    return rows


class CueMethods:
    """Mixed into ``CatalogStore``: cues and search over the same database and write lock."""

    _search: SearchEngine | None = None
    _reindexed: list[str] = []  # noqa: RUF012 - replaced, never mutated: the last write's videos

    if TYPE_CHECKING:
        path: Path

        def _reading(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...
        def _writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...
        def _now(self) -> datetime: ...

    def put_cues(self, video_id: str, lang: str, source_lang: str, cues: Sequence[Mapping[str, Any]]) -> int:
        """Replace the video's cues in ``lang`` (``{"start_s", "end_s", "text"}`` each, in
        order) and index them; returns how many. ``source_lang == lang`` for an original track."""
        return self.put_many_cues([(video_id, lang, source_lang, cues)])

    def put_many_cues(self, tracks: Sequence[Track]) -> int:
        """``put_cues`` for many tracks in one transaction (a backfill, an import); returns the
        number of cues."""
        with self._writing() as cur:
            return insert_tracks(cur, tracks)

    def set_subtitles(self, video_id: str, record: Mapping[str, Any]) -> None:
        """Replace the video's subtitle record (``pipelines.subtitles.record.SubtitleRecord``
        as JSON); ``get_video`` returns it parsed, as ``subtitles``."""
        self.put_subtitles(video_id, record, [])

    def put_subtitles(self, video_id: str, record: Mapping[str, Any], tracks: Sequence[Track]) -> int:
        """The video's subtitle record and the cues of ``tracks`` (``put_many_cues``'s), in one
        transaction: what the metadata lists and what search finds change together, or neither
        does. Returns the number of cues put.

        On a ready video each track is news (a sidecar, a late sidecar, a translation backfill):
        a ``video.subtitles.ready`` event per language, in the same transaction; unless the record
        was this one already (the same call made again: it is no news)."""
        with self._writing() as cur:
            before = cur.execute("SELECT subtitles FROM videos WHERE id = ?", [video_id]).fetchone()
            repeated = before is not None and bool(before[0]) and json.loads(before[0]) == dict(record)
            found = cur.execute(
                "UPDATE videos SET subtitles = ? WHERE id = ?", [json.dumps(dict(record)), video_id]
            ).fetchone()
            if not found or not found[0]:
                raise NotFound(f"no video with id {video_id[:64]!r}")
            put = insert_tracks(cur, tracks) if tracks else 0
            if tracks and not repeated and status_of(cur, video_id) == "ready":
                for _, lang, source_lang, _ in tracks:
                    detail = {"lang": lang, "source_lang": source_lang}
                    record_video_event(cur, self._now(), "video.subtitles.ready", video_id, detail)
            return put

    def get_cues(self, video_id: str, lang: str | None = None) -> list[dict[str, Any]]:
        """The video's cues, by language then index (one language with ``lang``)."""
        where = "video_id = ?" + (" AND lang = ?" if lang else "")
        with self._reading() as cur:
            rows = cur.execute(
                f"SELECT {', '.join(CUE_COLUMNS)} FROM cues WHERE {where} ORDER BY lang, idx",
                [video_id, *([lang] if lang else [])],
            ).fetchall()
        return [dict(zip(CUE_COLUMNS, row, strict=True)) for row in rows]

    def search(
        self,
        q: str,
        viewer_id: str | None,
        *,
        lang: str | None = None,
        fields: Sequence[str] = FIELDS,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Ready videos' titles, descriptions and cues matching ``q`` that ``viewer_id`` may see
        (``None``: public only); see ``catalog.search.search`` for the items. ``ignored``: the
        parts of ``q`` past the first ``catalog.search.query.MAX_CLAUSES``, not searched."""
        if lang is not None:
            check_lang(lang)
        query = parse_query(q)
        if self._search is None:
            raise RuntimeError("the search index is closed")
        found = search(
            self._search,
            query,
            viewer_id=viewer_id,
            lang=lang,
            fields=tuple(fields),
            limit=limit,
            offset=offset,
        )
        return found | {"ignored": [str(clause) for clause in query.ignored]}

    def _open_search(self) -> None:
        """Open the index beside the catalog file; fill it from the catalog if it was missing or
        unreadable, else reindex what a crash left marked. Before the store answers anyone."""
        engine = SearchEngine(self.path)
        self._search = engine
        if not engine.complete:
            with self._reading() as cur:
                engine.replace_all(documents(cur))
                clear_dirty(cur)
        with self._reading() as cur:
            self._reindex_dirty(cur)

    def _reindex_dirty(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Reindex the videos marked dirty and clear their marks, in ``cur``'s transaction.

        Called last inside every write transaction, under the write lock, so no change is
        reindexed out of order and no reader sees a change in the tables that search lacks; a
        failure is logged and the marks stay (committed with the change), to be retried by the
        next write or the next open."""
        dirty = dirty_videos(cur)
        self._reindexed = dirty
        if not dirty or self._search is None:
            return
        try:
            self._search.replace_videos(dirty, documents(cur, dirty))
        except Exception:  # never fail the change for the index: its marks stay for the next try
            log.exception("reindexing %d videos failed; they stay marked for the next try", len(dirty))
            return
        clear_dirty(cur, dirty)

    def _reindex_committed(self) -> None:
        """After a commit failed: the index took the change that never landed; give the videos
        it touched their committed documents back."""
        touched, self._reindexed = self._reindexed, []
        if not touched or self._search is None:
            return
        try:
            with self._reading() as cur:
                self._search.replace_videos(touched, documents(cur, touched))
        except Exception:
            log.exception(
                "restoring %d videos in the index failed; it is rebuilt on the next open", len(touched)
            )
            self._search.mark_incomplete()

    def _close_search(self) -> None:
        engine, self._search = self._search, None
        if engine is not None:
            engine.close()


def insert_tracks(cur: duckdb.DuckDBPyConnection, tracks: Sequence[Track]) -> int:
    """``put_many_cues`` in the caller's transaction (an import puts every batch in one);
    returns the number of cues."""
    keys = [(video_id, lang) for video_id, lang, *_ in tracks]
    if len(set(keys)) != len(keys):
        raise BadRequest("each (video, language) may appear once in one put")
    videos = sorted({video_id for video_id, _ in keys})
    known = cur.execute("SELECT id FROM videos WHERE list_contains(?, id)", [videos]).fetchall()
    missing = set(videos) - {row[0] for row in known}
    if missing:
        raise NotFound(f"no video with id {min(missing)[:64]!r}")
    delete_tracks(cur, keys)
    columns: dict[str, list[Any]] = {column: [] for column in CUE_COLUMNS}
    for track in tracks:
        for column, values in cue_rows(track).items():
            columns[column] += values
    cur.register("new_cues", pa.table(columns))
    try:
        cur.execute("INSERT INTO cues BY NAME SELECT * FROM new_cues")
    finally:
        cur.unregister("new_cues")
    return len(columns["idx"])


def delete_tracks(cur: duckdb.DuckDBPyConnection, tracks: Sequence[tuple[str, str]]) -> None:
    """Remove the cues of ``(video_id, lang)`` tracks (their videos are reindexed)."""
    if not tracks:
        return
    mark_dirty(cur, [video_id for video_id, _ in tracks])
    pairs = [[video_id, lang] for video_id, lang in tracks]
    cur.execute("DELETE FROM cues WHERE list_contains(?::VARCHAR[][], [video_id, lang])", [pairs])


def delete_video_search(cur: duckdb.DuckDBPyConnection, video_id: str) -> None:
    """Everything cues and search hold for a video (the hook of ``CatalogStore.delete_video``)."""
    mark_dirty(cur, [video_id])
    cur.execute("DELETE FROM cues WHERE video_id = ?", [video_id])
