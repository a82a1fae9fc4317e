"""What a search query means: words, ``"exact phrases"`` and ``prefix*`` words, all required.

Every text of 1 to ``MAX_QUERY_CHARS`` characters is a query, so what the API's schema states
(a string of that length) is exactly what it accepts: a quote left open runs to the end of the
query (a phrase still being typed), a query of no words matches nothing, and the parts after
the first ``MAX_CLAUSES`` are ignored and named in ``Query.ignored`` (as a web search does).

Parsing is pure, so the HTTP route, the CLI and a notebook read a query the same way, and the
tests need no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from catalog.search.index import terms_of
from cluster.errors import BadRequest

MAX_QUERY_CHARS = 200
MAX_CLAUSES = 8

ClauseKind = Literal["term", "prefix", "phrase"]


@dataclass(frozen=True)
class Clause:
    """One required part of a query; ``words`` are terms as the index holds them."""

    kind: ClauseKind
    words: tuple[str, ...]

    def __str__(self) -> str:
        """The clause as a user would type it."""
        if self.kind == "phrase":
            return '"' + " ".join(self.words) + '"'
        return self.words[0] + ("*" if self.kind == "prefix" else "")


@dataclass(frozen=True)
class Query:
    text: str
    clauses: tuple[Clause, ...]
    ignored: tuple[Clause, ...] = ()
    """Parts past the first ``MAX_CLAUSES``: not searched."""

    @property
    def phrases(self) -> tuple[tuple[str, ...], ...]:
        return tuple(c.words for c in self.clauses if c.kind == "phrase")


# A quoted phrase (closed, or open to the end of the query) or a run of non-blank characters.
_QUOTED_OR_BARE = re.compile(r'"([^"]*)(?:"|$)|([^\s"]+)')


def parse_query(text: str) -> Query:
    """The clauses of ``text`` (none for a query of no words); ``BadRequest`` only when it is
    longer than ``MAX_QUERY_CHARS``."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"the query 'q' must be at most {MAX_QUERY_CHARS} characters")
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
            clauses.extend(Clause("term", (word,)) for word in words)
            clauses.append(Clause("prefix", (stem,)))
        else:
            clauses.extend(Clause("term", (word,)) for word in terms_of(bare))
    unique = tuple(dict.fromkeys(clauses))
    return Query(text=text, clauses=unique[:MAX_CLAUSES], ignored=unique[MAX_CLAUSES:])


def phrase_pattern(words: tuple[str, ...]) -> str:
    """An RE2 pattern (for DuckDB's ``regexp_matches``) for ``words`` in order, whole words,
    any case, with only non-word characters between them."""
    not_word = r"[^\pL\pN_]"
    body = f"{not_word}+".join(re.escape(word) for word in words)
    return f"(?i)(^|{not_word}){body}({not_word}|$)"
