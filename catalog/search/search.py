"""Search over titles, descriptions and subtitle cues: BM25 in Tantivy (``catalog.search.engine``).

Every clause of the query is required (a conjunctive search); documents are ranked by the sum
of their clauses' BM25 scores. A term clause is that word; a phrase clause is its words at
consecutive positions; a prefix clause is its ``MAX_PREFIX_TERMS`` most common completions,
scored by the best one a document holds (one word, counted once). Only ready videos are in the
index; the viewer's visibility, ``lang`` and the scope are filters that never change a score.
``lang`` keeps the subtitle lines of that language, and the title and description hits of
videos that have subtitles in it (a video a Spanish viewer can follow). ``total`` is exact.

A search reads one searcher (one committed state of the index) from start to end and reads
nothing from DuckDB: the page's texts are stored in the index, so a page and its total always
agree, even while a video is being deleted.
"""

from __future__ import annotations

import html
import re
from typing import Any

import tantivy

from catalog.search.engine import SearchEngine
from catalog.search.index import FIELDS
from catalog.search.query import Clause, Query
from cluster.errors import BadRequest

MAX_PREFIX_TERMS = 64
"""A prefix matches its most frequent completions only, so ``th*`` stays a bounded query."""
SNIPPET_CHARS = 240

Must = tantivy.Occur.Must
Should = tantivy.Occur.Should


def search(
    engine: SearchEngine,
    query: Query,
    *,
    viewer_id: str | None,
    lang: str | None = None,
    fields: tuple[str, ...] = FIELDS,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """``{"items": [...], "total": n, "total_exact": True}``: the matching documents, best first.

    An item has ``video_id``, ``title``, ``field``, ``lang``/``source_lang``, ``start_s``/
    ``end_s`` (cues only), ``text``, ``snippet`` (HTML-escaped, hits in ``<mark>``) and ``score``.
    """
    if not fields or set(fields) - set(FIELDS):
        raise BadRequest(f"scope must be a comma-separated list of {', '.join(FIELDS)}")
    nothing: dict[str, Any] = {"items": [], "total": 0, "total_exact": True}
    searcher = engine.searcher()
    clauses = [_clause_query(engine.schema, searcher, clause) for clause in query.clauses]
    required = [(Must, clause) for clause in clauses if clause is not None]
    if not clauses or len(required) < len(clauses):
        return nothing
    only = _filter(engine.schema, viewer_id, lang, fields)
    wanted = tantivy.Query.boolean_query([*required, (Must, only)])
    found = searcher.search(wanted, max(limit, 1), count=True, offset=offset)
    hits = found.hits[:limit]
    items = [_item(searcher.doc(address), score, query) for score, address in hits]
    total = int(getattr(found, "count", 0) or 0)  # exact: count=True (missing from the stubs)
    return {"items": items, "total": total, "total_exact": True}


def _clause_query(schema: tantivy.Schema, searcher: tantivy.Searcher, clause: Clause) -> tantivy.Query | None:
    """The clause as a Tantivy query; None when it cannot match (a prefix nothing completes)."""
    if clause.kind == "term":
        return tantivy.Query.term_query(schema, "terms", clause.words[0])
    if clause.kind == "phrase":
        return tantivy.Query.phrase_query(schema, "terms", list(clause.words))
    completions = searcher.terms_with_prefix("terms", clause.words[0], limit=MAX_PREFIX_TERMS)
    if not completions:
        return None
    return tantivy.Query.disjunction_max_query(
        [tantivy.Query.term_query(schema, "terms", term) for term, _ in completions]
    )


def _filter(
    schema: tantivy.Schema, viewer_id: str | None, lang: str | None, fields: tuple[str, ...]
) -> tantivy.Query:
    """What the viewer may see, in ``lang`` and the scope: a filter of score 0."""
    public = tantivy.Query.term_query(schema, "visibility", "public")
    visible = (
        public
        if viewer_id is None
        else tantivy.Query.boolean_query(
            [(Should, public), (Should, tantivy.Query.term_query(schema, "owner_id", viewer_id))]
        )
    )
    parts = [visible]
    if lang:
        parts.append(tantivy.Query.term_query(schema, "langs", lang))
    if set(fields) != set(FIELDS):
        parts.append(tantivy.Query.term_set_query(schema, "kind", list(fields)))
    return tantivy.Query.const_score_query(tantivy.Query.boolean_query([(Must, part) for part in parts]), 0.0)


def _item(doc: tantivy.Document, score: float, query: Query) -> dict[str, Any]:
    text = _stored_text(doc, "text")
    return {
        "video_id": doc.get_first("video_id"),
        "title": _stored_text(doc, "title"),
        "field": doc.get_first("kind"),
        "lang": doc.get_first("lang"),
        "source_lang": doc.get_first("source_lang"),
        "start_s": doc.get_first("start_s"),
        "end_s": doc.get_first("end_s"),
        "text": text,
        "snippet": snippet(text, query),
        "score": round(float(score), 4),
    }


def _stored_text(doc: tantivy.Document, name: str) -> str:
    value = doc.get_first(name)
    return bytes(value).decode() if value is not None else ""


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
