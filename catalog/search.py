"""Search over titles, descriptions and subtitle cues: BM25 computed in SQL over the postings.

Every clause of the query is required (a conjunctive search); documents are ranked by the sum
of their terms' BM25 scores. A prefix clause is any of its most common completions; a phrase
clause needs each of its words (through the postings) and then the words in order in the text
itself (a regular expression over the few documents that hold them all). Only ready videos
the viewer may see are searched; ``lang`` narrows the cues to one language.

Document frequencies count every field and language together, so a word is as rare in a
Spanish cue as in an English one; lengths are normalised per field (a title is short).
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import duckdb

from catalog.query import Query, phrase_pattern
from catalog.search_index import FIELDS
from catalog.visibility import VISIBLE_TO_SQL
from cluster.errors import BadRequest

K1 = 1.2
B = 0.75
MAX_PREFIX_TERMS = 64
"""A prefix matches its most frequent completions only, so ``th*`` stays a bounded query."""
SNIPPET_CHARS = 240


def search(
    cur: duckdb.DuckDBPyConnection,
    query: Query,
    *,
    viewer_id: str | None,
    lang: str | None = None,
    fields: tuple[str, ...] = FIELDS,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """``{"items": [...], "total": n}``: the matching documents, best first.

    An item has ``video_id``, ``title``, ``field``, ``lang``/``source_lang``, ``start_s``/
    ``end_s`` (cues only), ``text``, ``snippet`` (HTML-escaped, hits in ``<mark>``) and ``score``.
    """
    if not fields or set(fields) - set(FIELDS):
        raise BadRequest(f"scope must be a comma-separated list of {', '.join(FIELDS)}")
    groups = _term_groups(cur, query)
    if groups is None:
        return {"items": [], "total": 0}
    docs, avgdl = _field_stats(cur, fields)
    if not avgdl:
        return {"items": [], "total": 0}
    # Every value spliced into the SQL is an int or a float computed here, or one of FIELDS:
    # literals let DuckDB's zone maps skip the postings of every other term.
    weights = ", ".join(
        f"({int(term_id)}, {group}, {math.log(1 + (docs - df + 0.5) / (df + 0.5))!r}::DOUBLE)"
        for group, terms in enumerate(groups)
        for term_id, df in terms
    )
    term_ids = ", ".join(str(int(term_id)) for terms in groups for term_id, _ in terms)
    avg_length = " ".join(f"WHEN '{field}' THEN {length!r}::DOUBLE" for field, length in avgdl.items())
    in_scope = ", ".join(f"'{field}'" for field in avgdl)
    # With several groups, only documents holding the rarest one can match: the common words'
    # postings are joined against those instead of all being summed up.
    rarest = min(groups, key=lambda terms: sum(df for _, df in terms))
    rarest_ids = ", ".join(str(int(term_id)) for term_id, _ in rarest)
    rarest_first = (
        f"AND p.doc_id IN (SELECT doc_id FROM search_postings WHERE term_id IN ({rarest_ids}))"
        if len(groups) > 1
        else ""
    )
    every_group = f"HAVING bit_or(1 << q.grp) = {(1 << len(groups)) - 1}" if len(groups) > 1 else ""
    sql = f"""
        WITH q(term_id, grp, idf) AS (VALUES {weights}),
        matched AS (
            SELECT p.doc_id,
                   sum(q.idf * p.tf * {K1 + 1}::DOUBLE
                       / (p.tf + {K1} * ({1 - B} + {B} * p.length / CASE p.field {avg_length} END))) AS score
            FROM search_postings p JOIN q USING (term_id)
            WHERE p.term_id IN ({term_ids}) AND p.field IN ({in_scope}) {rarest_first}
            GROUP BY p.doc_id
            {every_group}
        ), found AS (
            SELECT m.doc_id, m.score, d.video_id, d.field, d.lang, v.title,
                   CASE d.field WHEN 'title' THEN v.title
                                WHEN 'description' THEN v.description END AS own_text
            FROM matched m JOIN search_docs d USING (doc_id) JOIN videos v ON v.id = d.video_id
            WHERE v.status = 'ready' AND {VISIBLE_TO_SQL}
              AND (d.field <> 'subtitles' OR ?::VARCHAR IS NULL OR d.lang = ?)
        ), checked AS (
            {_PHRASE_CHECKED.format(checks=_phrase_checks(query)) if query.phrases else "SELECT * FROM found"}
        )
        SELECT doc_id, score, video_id, field, lang, title, own_text, count(*) OVER () AS total
        FROM checked
        ORDER BY score DESC, doc_id
        LIMIT ? OFFSET ?
    """
    params = [viewer_id, lang, lang, *(phrase_pattern(words) for words in query.phrases)]
    rows = cur.execute(sql, [*params, limit, offset]).fetchall()
    if not rows and offset:  # past the last page: the total still says how many there are
        first = cur.execute(sql, [*params, 1, 0]).fetchall()
        return {"items": [], "total": int(first[0][-1]) if first else 0}
    return {"items": _page(cur, rows, query), "total": int(rows[0][-1]) if rows else 0}


# A phrase is checked against the text itself, in the documents that hold all its words.
_PHRASE_CHECKED = "SELECT f.* FROM found f LEFT JOIN cues c USING (doc_id) WHERE true {checks}"


def _phrase_checks(query: Query) -> str:
    return "".join(" AND regexp_matches(coalesce(f.own_text, c.text), ?)" for _ in query.phrases)


def _page(cur: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], query: Query) -> list[dict[str, Any]]:
    """The page's items, with titles and cue texts fetched for these documents alone."""
    cues: dict[int, tuple[Any, ...]] = {}
    if rows:
        literal = ", ".join(str(int(row[0])) for row in rows)
        found = cur.execute(
            f"SELECT doc_id, source_lang, start_s, end_s, text FROM cues WHERE doc_id IN ({literal})"
        ).fetchall()
        cues = {int(row[0]): row[1:] for row in found}
    items = []
    for doc_id, score, video_id, field, lang, title, own_text, _ in rows:
        source_lang, start_s, end_s, text = cues.get(int(doc_id), (None, None, None, None))
        text = own_text if field != "subtitles" else text
        items.append(
            {
                "video_id": video_id,
                "title": title,
                "field": field,
                "lang": lang,
                "source_lang": source_lang,
                "start_s": start_s,
                "end_s": end_s,
                "text": text,
                "snippet": snippet(text or "", query),
                "score": round(float(score), 4),
            }
        )
    return items


def _term_groups(cur: duckdb.DuckDBPyConnection, query: Query) -> list[list[tuple[int, int]]] | None:
    """``[(term_id, df), ...]`` per required group; None when some group cannot match anything."""
    groups: list[list[tuple[int, int]]] = []
    for clause in query.clauses:
        if clause.kind == "prefix":
            found = cur.execute(
                "SELECT term_id, df FROM search_terms WHERE starts_with(term, ?) AND df > 0"
                " ORDER BY df DESC, term LIMIT ?",
                [clause.words[0], MAX_PREFIX_TERMS],
            ).fetchall()
            if not found:
                return None
            groups.append([(int(t), int(df)) for t, df in found])
            continue
        for word in clause.words:
            row = cur.execute("SELECT term_id, df FROM search_terms WHERE term = ?", [word]).fetchone()
            if row is None or row[1] <= 0:
                return None
            groups.append([(int(row[0]), int(row[1]))])
    return groups


def _field_stats(cur: duckdb.DuckDBPyConnection, fields: tuple[str, ...]) -> tuple[int, dict[str, float]]:
    """All documents (for the IDF) and the average length of each field in scope."""
    rows = cur.execute("SELECT field, count(*), avg(length) FROM search_docs GROUP BY field").fetchall()
    docs = sum(int(count) for _, count, _ in rows)
    avgdl = {field: max(float(avg or 0), 1.0) for field, _, avg in rows if field in fields}
    return docs, avgdl


def snippet(text: str, query: Query) -> str:
    """``text`` HTML-escaped, at most about ``SNIPPET_CHARS`` around the first hit, hits in
    ``<mark>``: safe to insert as HTML, and plain enough to strip the tags for a terminal."""
    spans = _hit_spans(text, query)
    start = 0
    if len(text) > SNIPPET_CHARS and spans:
        start = max(0, min(spans[0][0] - SNIPPET_CHARS // 4, len(text) - SNIPPET_CHARS))
    end = min(len(text), start + SNIPPET_CHARS)
    out, at = [], start
    for hit_start, hit_end in spans:
        if hit_start < at or hit_end > end:
            continue
        out += [html.escape(text[at:hit_start]), "<mark>", html.escape(text[hit_start:hit_end]), "</mark>"]
        at = hit_end
    out.append(html.escape(text[at:end]))
    return ("…" if start else "") + "".join(out) + ("…" if end < len(text) else "")


def _hit_spans(text: str, query: Query) -> list[tuple[int, int]]:
    patterns = []
    for clause in query.clauses:
        words = [re.escape(word) for word in clause.words]
        if clause.kind == "phrase":
            patterns.append(r"\W+".join(words))
        elif clause.kind == "prefix":
            patterns.append(words[0] + r"\w*")
        else:
            patterns.append(words[0])
    hits = re.finditer(rf"(?<!\w)(?:{'|'.join(patterns)})(?!\w)", text, re.IGNORECASE)
    return [match.span() for match in hits]
