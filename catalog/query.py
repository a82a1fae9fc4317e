"""What a search query means: words, ``"exact phrases"`` and ``prefix*`` words, all required.

Parsing is pure, so the HTTP route, the CLI and a notebook refuse the same queries with the
same words, and the tests need no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from catalog.search_index import terms_of
from cluster.errors import BadRequest

MAX_QUERY_CHARS = 200
MAX_CLAUSES = 8
MIN_PREFIX_CHARS = 2

ClauseKind = Literal["term", "prefix", "phrase"]


@dataclass(frozen=True)
class Clause:
    """One required part of a query; ``words`` are terms as the index holds them."""

    kind: ClauseKind
    words: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    text: str
    clauses: tuple[Clause, ...]

    @property
    def phrases(self) -> tuple[tuple[str, ...], ...]:
        return tuple(c.words for c in self.clauses if c.kind == "phrase")


_QUOTED_OR_BARE = re.compile(r'"([^"]*)"|(\S+)')


def parse_query(text: str) -> Query:
    """The clauses of ``text``, or ``BadRequest`` saying what is wrong with it."""
    text = text.strip()
    if not text:
        raise BadRequest("the query 'q' is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"the query 'q' must be at most {MAX_QUERY_CHARS} characters")
    if text.count('"') % 2:
        raise BadRequest('the query has an unbalanced quote: close every "phrase" with a second "')
    clauses: list[Clause] = []
    for quoted, bare in _QUOTED_OR_BARE.findall(text):
        if quoted:
            phrase = tuple(terms_of(quoted))
            if len(phrase) > 1:
                clauses.append(Clause("phrase", phrase))
            elif phrase:
                clauses.append(Clause("term", phrase))
        elif bare.endswith("*") and re.search(r"\w$", bare.rstrip("*")):
            *words, stem = terms_of(bare.rstrip("*"))
            if len(stem) < MIN_PREFIX_CHARS:
                raise BadRequest(f"a prefix search needs at least {MIN_PREFIX_CHARS} letters before '*'")
            clauses.extend(Clause("term", (word,)) for word in words)
            clauses.append(Clause("prefix", (stem,)))
        else:
            clauses.extend(Clause("term", (word,)) for word in terms_of(bare))
    unique = tuple(dict.fromkeys(clauses))
    if not unique:
        raise BadRequest("the query has no words to search for (only punctuation or quotes)")
    if len(unique) > MAX_CLAUSES:
        raise BadRequest(f"the query has more than {MAX_CLAUSES} words, phrases or prefixes")
    return Query(text=text, clauses=unique)


def phrase_pattern(words: tuple[str, ...]) -> str:
    """An RE2 pattern (for DuckDB's ``regexp_matches``) for ``words`` in order, whole words,
    any case, with only non-word characters between them."""
    not_word = r"[^\pL\pN_]"
    body = f"{not_word}+".join(re.escape(word) for word in words)
    return f"(?i)(^|{not_word}){body}({not_word}|$)"
