"""What the search index holds, read from the catalog's tables: the catalog is the truth.

A document is one searchable text: a ready video's title, its description, or one subtitle cue
in one language. The Tantivy index (``catalog.search.engine``) is derived from the ``videos`` and
``cues`` tables and can be rebuilt from them at any time.

Every change that alters what a video shows in search records the video's id in
``search_dirty`` (``mark_dirty``) in the same transaction as the change. Right after that
transaction commits, still under the catalog's write lock, the store reindexes the dirty videos
and clears their rows (``CueMethods._reindex_dirty``). A crash between the two leaves the row
behind, and the next open reindexes the video: the index never silently drifts from the catalog.

Terms are the text's Unicode words, case-folded; nothing is stemmed and no stop words are
dropped: subtitles come in every language, and a phrase search needs its small words. The index
is fed these terms (``terms_of``) and a query is parsed with the same function, so the two can
never tokenize a word differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the cursors' type: the API imports FIELDS and terms_of without DuckDB
    import duckdb

WORD = re.compile(r"\w+")
MAX_TERM_CHARS = 64
"""Longer "words" (base64, URLs run together) are not terms anyone searches for."""
FIELDS = ("title", "description", "subtitles")
BATCH_ROWS = 50_000
"""Rows read from DuckDB at a time when (re)indexing: a whole rebuild streams, never loads all."""

Document = dict[str, Any]
"""One document as ``catalog.search.engine`` indexes it: ``kind`` (one of FIELDS), ``video_id``,
``owner_id``, ``visibility``, ``title``, ``text``, ``langs`` (a title or description: the
video's subtitle languages; a cue: its own), and for a cue ``lang``, ``source_lang``,
``start_s``, ``end_s``."""


def terms_of(text: str) -> list[str]:
    """The terms of ``text`` in order, as both the index and a query see them."""
    return [word for word in WORD.findall(text.casefold()) if len(word) <= MAX_TERM_CHARS]


def mark_dirty(cur: duckdb.DuckDBPyConnection, video_ids: Iterable[str]) -> None:
    """Record, in the caller's transaction, that these videos must be reindexed."""
    ids = sorted(set(video_ids))
    if ids:
        cur.execute("INSERT INTO search_dirty SELECT unnest(?::VARCHAR[]) ON CONFLICT DO NOTHING", [ids])


def dirty_videos(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in cur.execute("SELECT video_id FROM search_dirty ORDER BY video_id").fetchall()]


def clear_dirty(cur: duckdb.DuckDBPyConnection, video_ids: Sequence[str] | None = None) -> None:
    """Forget the marks of ``video_ids`` (None: every mark, after a whole rebuild)."""
    if video_ids is None:
        cur.execute("DELETE FROM search_dirty")
    elif video_ids:
        cur.execute("DELETE FROM search_dirty WHERE list_contains(?, video_id)", [list(video_ids)])


def documents(cur: duckdb.DuckDBPyConnection, video_ids: Sequence[str] | None = None) -> Iterator[Document]:
    """The documents of the ready ones of ``video_ids`` (None: of every ready video), a video's
    title and description first, then its cues by language and index."""
    only = "AND list_contains($ids, v.id)" if video_ids is not None else ""
    params = {"ids": list(video_ids)} if video_ids is not None else {}
    videos = cur.execute(
        "SELECT v.id AS video_id, v.owner_id, v.visibility, v.title, v.description,"
        " coalesce(l.langs, []) AS langs FROM videos v LEFT JOIN (SELECT video_id,"
        " list(DISTINCT lang ORDER BY lang) AS langs FROM cues GROUP BY video_id) l ON l.video_id = v.id"
        f" WHERE v.status = 'ready' {only} ORDER BY v.id",
        params,
    ).to_arrow_reader(BATCH_ROWS)
    for batch in videos:
        for video in batch.to_pylist():
            description = video.pop("description")
            yield video | {"kind": "title", "text": video["title"]}
            yield video | {"kind": "description", "text": description}
    cues = cur.execute(
        "SELECT 'subtitles' AS kind, c.video_id, v.owner_id, v.visibility, v.title, c.text,"
        " [c.lang] AS langs, c.lang, c.source_lang, c.start_s, c.end_s"
        " FROM cues c JOIN videos v ON v.id = c.video_id"
        f" WHERE v.status = 'ready' {only} ORDER BY c.video_id, c.lang, c.idx",
        params,
    ).to_arrow_reader(BATCH_ROWS)
    for batch in cues:
        yield from batch.to_pylist()
