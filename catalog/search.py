"""Search over titles, descriptions and subtitle cues: BM25 computed in SQL over the postings.

Every clause of the query is required (a conjunctive search); documents are ranked by the sum
of their terms' BM25 scores. A prefix clause is any of its most common completions; a phrase
clause needs each of its words (through the postings) and then the words in order in the text
itself (a regular expression over the documents that hold them all). Only ready videos the
viewer may see are searched. ``lang`` keeps the subtitle lines of that language, and the title
and description hits of videos that have subtitles in it (a video a Spanish viewer can follow).

How a query is ranked without reading every posting of its words:

* If some clause has no common term (no head, see ``catalog.search_index``), every match holds
  one of that clause's postings: they are the candidates, and the page and total are exact.
* Otherwise the candidates are the documents in the heads of the query's terms, plus the
  postings added since the last compaction. A document in none of them scores at most the
  sum of the heads' cutoffs (times each term's IDF), so if the page's last hit scores above
  that bound, the page is exactly the one a full scan would give; ``total`` then counts the
  matches among the candidates, a lower bound (``total_exact`` is False). If the bound is not
  met (a deep page, or a filter that leaves few candidates), the query is read whole.

Document frequencies count every field and language together, so a word is as rare in a
Spanish cue as in an English one; lengths are normalised per field (a title is short).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Any

import duckdb

from catalog.query import Query, phrase_pattern
from catalog.search_index import FIELDS, field_stats, weight_sql
from catalog.visibility import VISIBLE_TO_SQL
from cluster.errors import BadRequest

MAX_PREFIX_TERMS = 64
"""A prefix matches its most frequent completions only, so ``th*`` stays a bounded query."""
SNIPPET_CHARS = 240
PHRASE_WORD_DF_RATIO = 10

Term = tuple[int, int]
"""``(term_id, df)``."""


@dataclass(frozen=True)
class _Plan:
    """Which postings a ranking reads (``postings``: a relation of search_postings' columns;
    ``candidates``: only these documents'), and the score a document left out cannot beat
    (None: nothing that matches is left out)."""

    candidates: str | None
    bound: float | None
    postings: str = "search_postings"


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
    """``{"items": [...], "total": n, "total_exact": bool}``: the matching documents, best first.

    An item has ``video_id``, ``title``, ``field``, ``lang``/``source_lang``, ``start_s``/
    ``end_s`` (cues only), ``text``, ``snippet`` (HTML-escaped, hits in ``<mark>``) and ``score``.
    """
    if not fields or set(fields) - set(FIELDS):
        raise BadRequest(f"scope must be a comma-separated list of {', '.join(FIELDS)}")
    nothing: dict[str, Any] = {"items": [], "total": 0, "total_exact": True}
    groups = _term_groups(cur, query) if query.clauses else None
    if groups is None:
        return nothing
    docs, avgdl, compacted_below = _index_stats(cur, fields)
    if not avgdl:
        return nothing
    idf = {term_id: math.log(1 + (docs - df + 0.5) / (df + 0.5)) for terms in groups for term_id, df in terms}
    params = [*([lang] if lang else []), viewer_id, *([lang] if lang else [])]
    params += [phrase_pattern(words) for words in query.phrases]
    plan = _plan(cur, groups, idf, compacted_below)
    wanted = offset + limit
    if plan.bound is not None:
        sql = _search_sql(query, groups, idf, avgdl, plan, lang)
        rows = cur.execute(sql, [*params, wanted, 0]).fetchall()
        if len(rows) == wanted and rows[-1][1] > plan.bound:  # proven: no one else ranks this high
            return {
                "items": _page(cur, rows[offset:], query),
                "total": int(rows[0][-1]),
                "total_exact": False,
            }
        plan = _read_whole(groups)
    sql = _search_sql(query, groups, idf, avgdl, plan, lang)
    rows = cur.execute(sql, [*params, limit, offset]).fetchall()
    if not rows and offset:  # past the last page: the total still says how many there are
        first = cur.execute(sql, [*params, 1, 0]).fetchall()
        return {"items": [], "total": int(first[0][-1]) if first else 0, "total_exact": True}
    return {"items": _page(cur, rows, query), "total": int(rows[0][-1]) if rows else 0, "total_exact": True}


def _plan(
    cur: duckdb.DuckDBPyConnection, groups: list[list[Term]], idf: dict[int, float], compacted_below: int
) -> _Plan:
    term_ids = [term_id for terms in groups for term_id, _ in terms]
    cutoffs = dict(
        cur.execute(
            "SELECT term_id, cutoff FROM search_head_terms WHERE list_contains(?, term_id)", [term_ids]
        ).fetchall()
    )
    headless = [terms for terms in groups if not any(term_id in cutoffs for term_id, _ in terms)]
    if headless:
        return _read_whole(groups)
    headed = ", ".join(str(int(term_id)) for term_id in cutoffs)
    others = ", ".join(str(int(term_id)) for term_id in term_ids if term_id not in cutoffs) or "NULL"
    # A group scores a document by its best term, so a document outside the heads scores at
    # most each group's highest cutoff (times the term's IDF), summed over the groups.
    bound = sum(max(idf[t] * cutoffs[t] for t, _ in terms if t in cutoffs) for terms in groups)
    columns = "term_id, doc_id, video_id, field, lang, tf, length"
    seen = (
        f"SELECT {columns} FROM search_heads WHERE term_id IN ({headed})"
        f" UNION ALL SELECT {columns} FROM search_postings WHERE term_id IN ({headed})"
        f" AND doc_id >= {int(compacted_below)}"
        f" UNION ALL SELECT {columns} FROM search_postings WHERE term_id IN ({others})"
    )
    if len(groups) == 1:  # every posting a candidate has in the query is among those seen
        return _Plan(None, bound, f"({seen})")
    # The candidates' other postings are looked up by (term, document) alone: three integer
    # columns of the common words' postings are read, never their text columns.
    all_ids = ", ".join(str(int(term_id)) for term_id in term_ids)
    candidates = f"SELECT DISTINCT doc_id, video_id, field, lang, length FROM ({seen})"
    looked_up = (
        f"(SELECT l.term_id, l.doc_id, c.video_id, c.field, c.lang, l.tf, c.length FROM"
        f" (SELECT term_id, doc_id, tf FROM search_postings WHERE term_id IN ({all_ids})"
        f" AND doc_id IN (SELECT doc_id FROM ({seen}))) l JOIN ({candidates}) c USING (doc_id))"
    )
    return _Plan(None, bound, looked_up)


def _read_whole(groups: list[list[Term]]) -> _Plan:
    """Every match holds a posting of the group of fewest postings: only those documents'
    postings of the other groups are read, not all the common words' postings."""
    if len(groups) == 1:
        return _Plan(None, None)
    rarest = min(groups, key=lambda terms: sum(df for _, df in terms))
    ids = ", ".join(str(int(term_id)) for term_id, _ in rarest)
    return _Plan(f"SELECT doc_id FROM search_postings WHERE term_id IN ({ids})", None)


def _search_sql(
    query: Query,
    groups: list[list[Term]],
    idf: dict[int, float],
    avgdl: dict[str, float],
    plan: _Plan,
    lang: str | None,
) -> str:
    """The ranking query. Every value spliced in is an int or a float computed here, or one of
    FIELDS: literal term ids let DuckDB's zone maps skip the postings of every other term."""
    weights = ", ".join(
        f"({int(term_id)}, {group}, {idf[term_id]!r}::DOUBLE)"
        for group, terms in enumerate(groups)
        for term_id, _ in terms
    )
    term_ids = ", ".join(str(int(term_id)) for terms in groups for term_id, _ in terms)
    avg_length = (
        "CASE p.field " + " ".join(f"WHEN '{f}' THEN {n!r}::DOUBLE" for f, n in avgdl.items()) + " END"
    )
    in_scope = ", ".join(f"'{field}'" for field in avgdl)
    any_values = "any_value(video_id) AS video_id, any_value(field) AS field, any_value(lang) AS lang"
    if len(groups) == 1 and len(groups[0]) == 1:  # one term: one posting per document, no sum
        matched = "SELECT doc_id, video_id, field, lang, part AS score FROM hits"
    else:
        # A prefix group counts its best completion in the document: one word, scored once.
        best = (
            "hits"
            if all(len(terms) == 1 for terms in groups)
            else (f"(SELECT doc_id, grp, {any_values}, max(part) AS part FROM hits GROUP BY doc_id, grp)")
        )
        matched = f"SELECT doc_id, {any_values}, sum(part) AS score FROM {best} GROUP BY doc_id" + (
            f" HAVING bit_or(1 << grp) = {(1 << len(groups)) - 1}" if len(groups) > 1 else ""
        )
    checked = _PHRASE_CHECKED.format(checks=_phrase_checks(query)) if query.phrases else "SELECT * FROM found"
    only_candidates = f"AND p.doc_id IN ({plan.candidates})" if plan.candidates else ""
    return f"""
        WITH q(term_id, grp, idf) AS (VALUES {weights}),
        hits AS (
            SELECT p.doc_id, p.video_id, p.field, p.lang, q.grp,
                   q.idf * {weight_sql(avg_length, "p.tf", "p.length")} AS part
            FROM {plan.postings} p JOIN q USING (term_id)
            WHERE p.term_id IN ({term_ids}) AND p.field IN ({in_scope})
              {"AND (p.field <> 'subtitles' OR p.lang = ?)" if lang else ""}
              {only_candidates}
        ),
        matched AS ({matched}),
        found AS (
            SELECT m.* FROM matched m JOIN videos v ON v.id = m.video_id
            WHERE v.status = 'ready' AND {VISIBLE_TO_SQL} {_HAS_LANG if lang else ""}
        ),
        checked AS ({checked})
        SELECT doc_id, score, video_id, field, lang, count(*) OVER () AS total
        FROM checked
        ORDER BY score DESC, doc_id
        LIMIT ? OFFSET ?
    """


# With ``lang``, a title or description hit counts for a video with subtitles in that language.
_HAS_LANG = """AND (m.field = 'subtitles' OR m.video_id IN (
    SELECT video_id FROM search_docs WHERE field = 'subtitles' AND lang = ?))"""

# A phrase is checked against the text itself, in the documents that hold all its words.
_PHRASE_CHECKED = """SELECT f.* FROM found f
    LEFT JOIN cues c USING (doc_id) JOIN videos v ON v.id = f.video_id
    WHERE true {checks}"""


def _phrase_checks(query: Query) -> str:
    text = "CASE f.field WHEN 'subtitles' THEN c.text WHEN 'title' THEN v.title ELSE v.description END"
    return "".join(f" AND regexp_matches({text}, ?)" for _ in query.phrases)


def _page(cur: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], query: Query) -> list[dict[str, Any]]:
    """The page's items, with titles and cue texts fetched for these documents alone."""
    cues: dict[int, tuple[Any, ...]] = {}
    videos: dict[str, tuple[str, str]] = {}
    if rows:
        literal = ", ".join(str(int(row[0])) for row in rows)
        found = cur.execute(
            f"SELECT doc_id, source_lang, start_s, end_s, text FROM cues WHERE doc_id IN ({literal})"
        ).fetchall()
        cues = {int(row[0]): row[1:] for row in found}
        ids = sorted({row[2] for row in rows})
        texts = cur.execute("SELECT id, title, description FROM videos WHERE list_contains(?, id)", [ids])
        videos = {video_id: (title, description) for video_id, title, description in texts.fetchall()}
    items = []
    for doc_id, score, video_id, field, lang, _ in rows:
        source_lang, start_s, end_s, text = cues.get(int(doc_id), (None, None, None, None))
        title, description = videos[video_id]
        text = {"title": title, "description": description}.get(field, text)
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


def _term_groups(cur: duckdb.DuckDBPyConnection, query: Query) -> list[list[Term]] | None:
    """``[(term_id, df), ...]`` per required group; None when some group cannot match anything."""
    words = sorted({word for c in query.clauses if c.kind != "prefix" for word in c.words})
    known = {
        term: (int(term_id), int(df))
        for term, term_id, df in cur.execute(
            "SELECT term, term_id, df FROM search_terms WHERE list_contains(?, term) AND df > 0", [words]
        ).fetchall()
    }
    groups: list[list[Term]] = []
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


def _index_stats(
    cur: duckdb.DuckDBPyConnection, fields: tuple[str, ...]
) -> tuple[int, dict[str, float], int]:
    """All documents (for the IDF), the average length each field in scope ranks with, and
    the first document id the last compaction did not see."""
    stats = field_stats(cur)
    docs = sum(count for count, _, _ in stats.values())
    avgdl = {
        field: ranking or max(avg, 1.0)
        for field, (count, avg, ranking) in stats.items()
        if field in fields and count
    }
    row = cur.execute("SELECT compacted_below FROM search_index_state").fetchone()
    return docs, avgdl, int(row[0]) if row and row[0] is not None else 0


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
