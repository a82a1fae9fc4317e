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
from catalog.search_index import FIELDS, field_stats
from catalog.visibility import VISIBLE_TO_SQL
from cluster.errors import BadRequest

K1 = 1.2
B = 0.75
MAX_PREFIX_TERMS = 64
"""A prefix matches its most frequent completions only, so ``th*`` stays a bounded query."""
SNIPPET_CHARS = 240
PHRASE_WORD_DF_RATIO = 10


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
    params = [lang, lang, viewer_id, *(phrase_pattern(words) for words in query.phrases)]
    sql = _search_sql(query, groups, docs, avgdl)
    rows = cur.execute(sql, [*params, limit, offset]).fetchall()
    if not rows and offset:  # past the last page: the total still says how many there are
        first = cur.execute(sql, [*params, 1, 0]).fetchall()
        return {"items": [], "total": int(first[0][-1]) if first else 0}
    return {"items": _page(cur, rows, query), "total": int(rows[0][-1]) if rows else 0}


def _search_sql(query: Query, groups: list[list[tuple[int, int]]], docs: int, avgdl: dict[str, float]) -> str:
    """The ranking query. Every value spliced in is an int or a float computed here, or one of
    FIELDS: literal term ids let DuckDB's zone maps skip the postings of every other term."""
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
    rarest_first = f"AND p.doc_id IN (SELECT doc_id FROM search_postings WHERE term_id IN ({rarest_ids}))"
    if len(groups) == 1 and len(groups[0]) == 1:  # one term: one posting per document, no sum
        matched = "SELECT doc_id, video_id, field, lang, part AS score FROM hits"
    else:
        matched = (
            "SELECT doc_id, any_value(video_id) AS video_id, any_value(field) AS field,"
            " any_value(lang) AS lang, sum(part) AS score FROM hits GROUP BY doc_id"
            + (f" HAVING bit_or(1 << grp) = {(1 << len(groups)) - 1}" if len(groups) > 1 else "")
        )
    checked = _PHRASE_CHECKED.format(checks=_phrase_checks(query)) if query.phrases else "SELECT * FROM found"
    return f"""
        WITH q(term_id, grp, idf) AS (VALUES {weights}),
        hits AS (
            SELECT p.doc_id, p.video_id, p.field, p.lang, q.grp,
                   q.idf * p.tf * {K1 + 1}::DOUBLE
                   / (p.tf + {K1} * ({1 - B} + {B} * p.length / CASE p.field {avg_length} END)) AS part
            FROM search_postings p JOIN q USING (term_id)
            WHERE p.term_id IN ({term_ids}) AND p.field IN ({in_scope})
              AND (p.field <> 'subtitles' OR ?::VARCHAR IS NULL OR p.lang = ?)
              {rarest_first if len(groups) > 1 else ""}
        ),
        matched AS ({matched}),
        found AS (
            SELECT m.*, v.title,
                   CASE m.field WHEN 'title' THEN v.title
                                WHEN 'description' THEN v.description END AS own_text
            FROM matched m JOIN videos v ON v.id = m.video_id
            WHERE v.status = 'ready' AND {VISIBLE_TO_SQL}
        ),
        checked AS ({checked})
        SELECT doc_id, score, video_id, field, lang, title, own_text, count(*) OVER () AS total
        FROM checked
        ORDER BY score DESC, doc_id
        LIMIT ? OFFSET ?
    """


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
    words = sorted({word for c in query.clauses if c.kind != "prefix" for word in c.words})
    known = {
        term: (int(term_id), int(df))
        for term, term_id, df in cur.execute(
            "SELECT term, term_id, df FROM search_terms WHERE list_contains(?, term) AND df > 0", [words]
        ).fetchall()
    }
    groups: list[list[tuple[int, int]]] = []
    for clause in query.clauses:
        if clause.kind == "prefix":
            found = cur.execute(
                "SELECT term_id, df FROM search_terms WHERE starts_with(term, ?) AND df > 0"
                " ORDER BY df DESC, term LIMIT ?",
                [clause.words[0], MAX_PREFIX_TERMS],
            ).fetchall()
            groups.append([(int(term_id), int(df)) for term_id, df in found])
        elif clause.kind == "phrase":
            # The text is checked for the whole phrase anyway, so a word far more common than
            # the phrase's rarest one is left to that check: "the" in a phrase never sums half
            # the index. Words of similar frequency still narrow the candidates together.
            if not all(word in known for word in clause.words):
                return None
            terms = sorted({known[word] for word in clause.words}, key=lambda term: term[1])
            groups += [[term] for term in terms if term[1] <= PHRASE_WORD_DF_RATIO * terms[0][1]]
        else:
            groups.append([known[clause.words[0]]] if clause.words[0] in known else [])
    return groups if all(groups) else None


def _field_stats(cur: duckdb.DuckDBPyConnection, fields: tuple[str, ...]) -> tuple[int, dict[str, float]]:
    """All documents (for the IDF) and the average length of each field in scope that has any."""
    stats = field_stats(cur)
    docs = sum(count for count, _ in stats.values())
    return docs, {field: max(avg, 1.0) for field, (count, avg) in stats.items() if field in fields and count}


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
