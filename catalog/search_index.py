"""The search index: postings kept in DuckDB, changed one video at a time.

A document is one searchable text: a video's title, its description, or one subtitle cue in
one language. Indexing a video adds its documents, their postings and the terms' document
frequencies in the caller's transaction; removing it takes them away again. Nothing is
rebuilt, so a video is searchable (or gone) the moment its transaction commits.

Postings are appended unsorted. ``compact`` rewrites them sorted by term, so that DuckDB's
zone maps skip every row group that cannot hold a query's terms, and keeps the *head* of every
common term: its ``HEAD_POSTINGS`` postings of highest BM25 weight, with the lowest weight kept
(the cutoff). ``catalog.search`` ranks a query of common words from the heads and proves from
the cutoffs that nothing outside them could rank higher. Compaction changes no result, only
speed, and runs in the background once the unsorted tail has grown (see ``catalog.cues``).

Terms are the text's Unicode words, case-folded; nothing is stemmed and no stop words are
dropped: subtitles come in every language, and a phrase search needs its small words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import duckdb
import pyarrow as pa

WORD = re.compile(r"\w+")
MAX_TERM_CHARS = 64
"""Longer "words" (base64, URLs run together) are not terms anyone searches for."""
MAX_TF = 65535
FIELDS = ("title", "description", "subtitles")
K1 = 1.2
B = 0.75
"""BM25's term-frequency saturation and length normalisation (Lucene's defaults)."""
HEAD_MIN_DF = 20_000
"""Terms in at least this many documents get a head; rarer ones are read whole (cheap)."""
HEAD_POSTINGS = 3_000

Document = tuple[int, str, str, str | None, int | None, str]
"""``(doc_id, video_id, field, lang, idx, text)``: ``lang`` and ``idx`` are a cue's, None
for a title or a description."""


def terms_of(text: str) -> list[str]:
    """The terms of ``text`` in order, as both the index and a query see them."""
    return [word for word in WORD.findall(text.casefold()) if len(word) <= MAX_TERM_CHARS]


def reserve_doc_ids(cur: duckdb.DuckDBPyConnection, count: int) -> list[int]:
    """``count`` new document ids, increasing (the caller holds the catalog's write lock)."""
    if count == 0:
        return []
    rows = cur.execute("SELECT nextval('search_doc_ids') AS id FROM range(?) ORDER BY id", [count]).fetchall()
    return [int(row[0]) for row in rows]


def index_video_text(cur: duckdb.DuckDBPyConnection, video_id: str, title: str, description: str) -> None:
    """Index a new video's title and description (``unindex`` them first to change them)."""
    title_id, description_id = reserve_doc_ids(cur, 2)
    add_documents(
        cur,
        [
            (title_id, video_id, "title", None, None, title),
            (description_id, video_id, "description", None, None, description),
        ],
    )


def add_documents(cur: duckdb.DuckDBPyConnection, documents: Sequence[Document]) -> int:
    """Index documents (of one video or of many at once); returns the postings added."""
    if not documents:
        return 0
    docs: dict[str, list[object]] = {k: [] for k in ("doc_id", "video_id", "field", "lang", "idx", "length")}
    postings: dict[str, list[object]] = {
        k: [] for k in ("term", "doc_id", "video_id", "field", "lang", "tf", "length")
    }
    for doc_id, video_id, field, lang, idx, text in documents:
        terms = terms_of(text)
        length = min(len(terms), MAX_TF)
        for column, value in zip(docs, (doc_id, video_id, field, lang, idx, length), strict=True):
            docs[column].append(value)
        for term, tf in Counter(terms).items():
            entries = (term, doc_id, video_id, field, lang, min(tf, MAX_TF), length)
            for column, entry in zip(postings, entries, strict=True):
                postings[column].append(entry)
    cur.register("new_docs", pa.table(docs))
    cur.register("new_postings", pa.table(postings))
    try:
        cur.execute("INSERT INTO search_docs SELECT * FROM new_docs")
        # New terms get ids; every term of the batch has its document frequency raised.
        cur.execute(
            "INSERT INTO search_terms SELECT term, nextval('search_term_ids'), 0 FROM"
            " (SELECT DISTINCT term FROM new_postings WHERE term NOT IN (SELECT term FROM search_terms))"
        )
        cur.execute(
            "UPDATE search_terms t SET df = t.df + n.docs"
            " FROM (SELECT term, count(*) AS docs FROM new_postings GROUP BY term) n WHERE t.term = n.term"
        )
        cur.execute(
            "INSERT INTO search_postings"
            " SELECT t.term_id, p.doc_id, p.video_id, p.field, p.lang, p.tf, p.length"
            " FROM new_postings p JOIN search_terms t USING (term)"
        )
        _change_field_stats(cur, "new_docs", +1)
    finally:
        cur.unregister("new_docs")
        cur.unregister("new_postings")
    added = len(postings["term"])
    cur.execute("UPDATE search_index_state SET unsorted_postings = unsorted_postings + ?", [added])
    return added


def unindex(cur: duckdb.DuckDBPyConnection, video_id: str, *, fields: Iterable[str] = FIELDS) -> None:
    """Remove a video's documents of ``fields`` from the index."""
    _unindex_where(cur, "video_id = ? AND list_contains(?, field)", [video_id, list(fields)])


def unindex_tracks(cur: duckdb.DuckDBPyConnection, tracks: Sequence[tuple[str, str]]) -> None:
    """Remove the cue documents of ``(video_id, lang)`` subtitle tracks from the index."""
    pairs = [[video_id, lang] for video_id, lang in tracks]
    _unindex_where(cur, "field = 'subtitles' AND list_contains(?::VARCHAR[][], [video_id, lang])", [pairs])


def _unindex_where(cur: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> None:
    # The condition is one of this module's constants; the values are parameters.
    gone = [row[0] for row in cur.execute(f"SELECT doc_id FROM search_docs WHERE {where}", params).fetchall()]
    if not gone:
        return
    # The literal range lets the zone maps skip the rest of the table (a video's documents
    # have neighbouring ids); the semi join picks the exact ones.
    in_gone = (
        f"doc_id BETWEEN {int(min(gone))} AND {int(max(gone))} AND doc_id IN (SELECT doc_id FROM gone_docs)"
    )
    cur.register("gone_docs", pa.table({"doc_id": pa.array(gone, pa.int64())}))
    try:
        cur.execute(
            "UPDATE search_terms t SET df = t.df - g.docs FROM (SELECT term_id, count(*) AS docs"
            f" FROM search_postings WHERE {in_gone} GROUP BY term_id) g WHERE t.term_id = g.term_id"
        )
        cur.execute(f"DELETE FROM search_postings WHERE {in_gone}")
        cur.execute(f"DELETE FROM search_heads WHERE {in_gone}")
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE gone_search_docs AS SELECT * FROM search_docs WHERE {in_gone}"
        )
        _change_field_stats(cur, "gone_search_docs", -1)
        cur.execute("DROP TABLE gone_search_docs")
        cur.execute(f"DELETE FROM search_docs WHERE {in_gone}")
    finally:
        cur.unregister("gone_docs")


def _change_field_stats(cur: duckdb.DuckDBPyConnection, documents: str, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) the ``documents`` relation's counts and lengths."""
    cur.execute(
        f"UPDATE search_field_stats s SET docs = s.docs + {sign} * n.docs,"
        f" total_length = s.total_length + {sign} * n.total_length"
        " FROM (SELECT field, count(*) AS docs, sum(length) AS total_length"
        f" FROM {documents} GROUP BY field) n WHERE s.field = n.field"
    )


def field_stats(cur: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, float, float]]:
    """``{field: (documents, average length, average length ranked with)}``; the last is 0
    before the first compaction (rank with the live average then)."""
    rows = cur.execute("SELECT field, docs, total_length, ranking_length FROM search_field_stats").fetchall()
    return {
        field: (int(docs), float(total) / docs if docs else 0.0, float(ranking or 0))
        for field, docs, total, ranking in rows
    }


def unsorted_postings(cur: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """``(unsorted, all)`` postings: how much a compaction would sort."""
    row = cur.execute(
        "SELECT (SELECT unsorted_postings FROM search_index_state), (SELECT count(*) FROM search_postings)"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def weight_sql(avg_length: str, tf: str = "tf", length: str = "length") -> str:
    """BM25's weight of one posting without the IDF: SQL over the columns ``tf`` and ``length``
    and the expression ``avg_length``."""
    return f"({tf} * {K1 + 1}::DOUBLE / ({tf} + {K1} * ({1 - B} + {B} * {length} / {avg_length})))"


def compact(cur: duckdb.DuckDBPyConnection) -> int:
    """Rewrite the postings sorted by term and rebuild the heads (in the caller's transaction);
    returns how many postings."""
    cur.execute("CREATE OR REPLACE TEMP TABLE sorted_postings AS SELECT * FROM search_postings")
    try:
        cur.execute("DELETE FROM search_postings")
        cur.execute("INSERT INTO search_postings SELECT * FROM sorted_postings ORDER BY term_id, doc_id")
        count = cur.execute("SELECT count(*) FROM sorted_postings").fetchone()
    finally:
        cur.execute("DROP TABLE IF EXISTS sorted_postings")
    # From now on BM25 ranks with today's average lengths, the ones the heads' weights use.
    cur.execute(
        "UPDATE search_field_stats SET ranking_length = CASE WHEN docs > 0"
        " THEN greatest(total_length / docs, 1) ELSE 0 END"
    )
    cur.execute("DELETE FROM search_heads")
    cur.execute("DELETE FROM search_head_terms")
    cur.execute(
        "INSERT INTO search_heads"
        " SELECT term_id, doc_id, video_id, field, lang, tf, length, weight FROM ("
        f"   SELECT p.*, {weight_sql('s.ranking_length')} AS weight FROM search_postings p"
        "    JOIN search_field_stats s USING (field)"
        "    WHERE p.term_id IN (SELECT term_id FROM search_terms WHERE df >= ?)"
        " ) QUALIFY row_number() OVER (PARTITION BY term_id ORDER BY weight DESC, doc_id) <= ?"
        " ORDER BY term_id, weight DESC, doc_id",
        [HEAD_MIN_DF, HEAD_POSTINGS],
    )
    cur.execute(
        "INSERT INTO search_head_terms SELECT term_id, min(weight) FROM search_heads GROUP BY term_id"
    )
    cur.execute(
        "UPDATE search_index_state SET unsorted_postings = 0,"
        " compacted_below = (SELECT coalesce(max(doc_id), -1) + 1 FROM search_postings)"
    )
    return int(count[0]) if count else 0
