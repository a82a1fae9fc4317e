"""Subtitle cues in the catalog, and the search over them, as methods of the catalog store.

A video's cues are kept per language (the original track and each translation, with the
language it was translated from). Putting a language's cues replaces that language's cues
and their search documents in one transaction: the video is searchable in that language the
moment the call returns, and never half-indexed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from catalog.query import parse_query
from catalog.search import search
from catalog.search_index import (
    FIELDS,
    add_documents,
    compact,
    reserve_doc_ids,
    unindex,
    unindex_tracks,
    unsorted_postings,
)
from cluster.errors import BadRequest, NotFound

log = logging.getLogger(__name__)

LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
"""A BCP 47 language tag as subtitles carry them: ``en``, ``pt-BR``, ``zh-Hans``."""
MAX_CUES_PER_TRACK = 50_000
MAX_CUE_CHARS = 2_000
CUE_COLUMNS = ("video_id", "lang", "source_lang", "idx", "start_s", "end_s", "text")
"""A cue as callers and the Parquet export see it (its search document id stays inside)."""
COMPACT_MIN_POSTINGS = 200_000
COMPACT_FRACTION = 0.1
"""Sort the postings once the unsorted tail is this big, and this share of them all."""

Track = tuple[str, str, str, Sequence[Mapping[str, Any]]]
"""``(video_id, lang, source_lang, cues)``; each cue a ``{"start_s", "end_s", "text"}``."""


def check_lang(lang: str, what: str = "lang") -> str:
    if not isinstance(lang, str) or not LANG.fullmatch(lang):
        raise BadRequest(f"{what} must be a language tag such as 'en' or 'pt-BR', not {str(lang)[:20]!r}")
    return lang


def cue_rows(track: Track, doc_ids: Sequence[int]) -> dict[str, list[Any]]:
    """A track's validated cues as columns of the ``cues`` table, numbered from 0 in order."""
    video_id, lang, source_lang, cues = track
    check_lang(lang)
    check_lang(source_lang, "source_lang")
    rows: dict[str, list[Any]] = {column: [] for column in ("doc_id", *CUE_COLUMNS)}
    for idx, (cue, doc_id) in enumerate(zip(cues, doc_ids, strict=True)):
        start, end, text = float(cue["start_s"]), float(cue["end_s"]), str(cue["text"])
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise BadRequest(f"cue {idx} must have 0 <= start_s <= end_s, not {start}..{end}")
        if len(text) > MAX_CUE_CHARS:
            raise BadRequest(f"cue {idx} has more than {MAX_CUE_CHARS} characters")
        for column, value in zip(
            rows, (doc_id, video_id, lang, source_lang, idx, start, end, text), strict=True
        ):
            rows[column].append(value)
    return rows


class CueMethods:
    """Mixed into ``CatalogStore``: cues and search over the same database and write lock."""

    _compactor: threading.Thread | None = None

    if TYPE_CHECKING:

        def _reading(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...
        def _writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def put_cues(self, video_id: str, lang: str, source_lang: str, cues: Sequence[Mapping[str, Any]]) -> int:
        """Replace the video's cues in ``lang`` (``{"start_s", "end_s", "text"}`` each, in
        order) and index them; returns how many. ``source_lang == lang`` for an original track."""
        return self.put_many_cues([(video_id, lang, source_lang, cues)])

    def put_many_cues(self, tracks: Sequence[Track]) -> int:
        """``put_cues`` for many tracks in one transaction (a backfill, an import); returns the
        number of cues."""
        keys = [(video_id, lang) for video_id, lang, *_ in tracks]
        if len(set(keys)) != len(keys):
            raise BadRequest("each (video, language) may appear once in one put")
        for _, _, _, cues in tracks:
            if len(cues) > MAX_CUES_PER_TRACK:
                raise BadRequest(
                    f"a subtitle track may have at most {MAX_CUES_PER_TRACK} cues, not {len(cues)}"
                )
        with self._writing() as cur:
            videos = sorted({video_id for video_id, _ in keys})
            known = cur.execute("SELECT id FROM videos WHERE list_contains(?, id)", [videos]).fetchall()
            missing = set(videos) - {row[0] for row in known}
            if missing:
                raise NotFound(f"no video with id {min(missing)[:64]!r}")
            delete_tracks(cur, keys)
            doc_ids = iter(reserve_doc_ids(cur, sum(len(track[3]) for track in tracks)))
            columns: dict[str, list[Any]] = {column: [] for column in ("doc_id", *CUE_COLUMNS)}
            for track in tracks:
                for column, values in cue_rows(track, [next(doc_ids) for _ in track[3]]).items():
                    columns[column] += values
            cur.register("new_cues", pa.table(columns))
            try:
                cur.execute("INSERT INTO cues SELECT * FROM new_cues ORDER BY doc_id")
            finally:
                cur.unregister("new_cues")
            add_documents(
                cur,
                list(
                    zip(
                        columns["doc_id"],
                        columns["video_id"],
                        ["subtitles"] * len(columns["doc_id"]),
                        columns["lang"],
                        columns["idx"],
                        columns["text"],
                        strict=True,
                    )
                ),
            )
            unsorted, everything = unsorted_postings(cur)
        if unsorted >= max(COMPACT_MIN_POSTINGS, COMPACT_FRACTION * everything):
            self._compact_in_background()
        return len(columns["doc_id"])

    def set_subtitles(self, video_id: str, record: Mapping[str, Any]) -> None:
        """Replace the video's subtitle record: ``{"tracks", "unavailable", "skipped",
        "warnings"}`` (``pipelines.subtitle_step.SubtitleRecord.as_json``); ``get_video``
        returns it as the ``subtitles`` JSON text."""
        with self._writing() as cur:
            found = cur.execute(
                "UPDATE videos SET subtitles = ? WHERE id = ?", [json.dumps(dict(record)), video_id]
            ).fetchone()
        if not found or not found[0]:
            raise NotFound(f"no video with id {video_id[:64]!r}")

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
        parts of ``q`` past the first ``catalog.query.MAX_CLAUSES``, not searched."""
        if lang is not None:
            check_lang(lang)
        query = parse_query(q)
        with self._reading() as cur:
            cur.begin()  # one snapshot: a video deleted meanwhile is in neither page nor total
            try:
                found = search(
                    cur,
                    query,
                    viewer_id=viewer_id,
                    lang=lang,
                    fields=tuple(fields),
                    limit=limit,
                    offset=offset,
                )
            finally:
                cur.rollback()
        return found | {"ignored": [str(clause) for clause in query.ignored]}

    def compact_search_index(self) -> dict[str, float]:
        """Sort the postings by term (searches keep running on the old ones meanwhile)."""
        started = time.perf_counter()
        with self._writing() as cur:
            postings = compact(cur)
        return {"postings": postings, "seconds": round(time.perf_counter() - started, 3)}

    def _compact_in_background(self) -> None:
        if self._compactor is not None and self._compactor.is_alive():
            return

        def run() -> None:
            try:
                log.info("search index compacted: %s", self.compact_search_index())
            except Exception:  # the index stays correct unsorted: log it, never fail a put
                log.exception("search index compaction failed")

        self._compactor = threading.Thread(target=run, name="search-compaction", daemon=True)
        self._compactor.start()

    def wait_for_compaction(self) -> None:
        """Return once a background compaction (if any) has finished; ``close`` calls it."""
        if self._compactor is not None:
            self._compactor.join()


def delete_tracks(cur: duckdb.DuckDBPyConnection, tracks: Sequence[tuple[str, str]]) -> None:
    """Remove the cues of ``(video_id, lang)`` tracks and their search documents."""
    if not tracks:
        return
    unindex_tracks(cur, tracks)
    pairs = [[video_id, lang] for video_id, lang in tracks]
    cur.execute("DELETE FROM cues WHERE list_contains(?::VARCHAR[][], [video_id, lang])", [pairs])


def delete_video_search(cur: duckdb.DuckDBPyConnection, video_id: str) -> None:
    """Everything cues and search hold for a video (the hook of ``CatalogStore.delete_video``)."""
    unindex(cur, video_id)
    cur.execute("DELETE FROM cues WHERE video_id = ?", [video_id])
