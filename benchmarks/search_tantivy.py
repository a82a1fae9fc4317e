"""Tantivy on the same cues and queries as ``benchmarks/search.py`` (``--tantivy``): a measure of
what a dedicated engine beside the catalog would give, not part of vodray's search.

Every cue is a document with its video, owner and visibility; a query is the same clauses as
vodray's (each required: a term, a phrase, or a prefix of at most 50 completions) plus the
viewer's visibility filter, top 20 by BM25 with an exact count, stored fields fetched.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import tantivy

from catalog.query import parse_query

Report = Callable[[str, list[str], Callable[[str], Any]], None]


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=True, index_option="position")
    for name in ("video_id", "owner", "visibility"):
        builder.add_text_field(name, stored=name == "video_id", tokenizer_name="raw")
    builder.add_float_field("start_s", stored=True)
    builder.add_float_field("end_s", stored=True)
    return builder.build()


def _add(writer: Any, video_id: str, owner: str, visibility: str, cues: list[dict[str, Any]]) -> None:
    for cue in cues:
        writer.add_document(
            tantivy.Document(
                text=cue["text"],
                video_id=video_id,
                owner=owner,
                visibility=visibility,
                start_s=cue["start_s"],
                end_s=cue["end_s"],
            )  # fmt: skip
        )


def run_tantivy(
    videos: list[list[dict[str, Any]]],
    owners: tuple[str, str],
    new_cues: list[dict[str, Any]],
    queries: list[str],
    report: Report,
) -> None:
    schema = _schema()
    with tempfile.TemporaryDirectory(prefix="vodray-tantivy-") as path:
        index = tantivy.Index(schema, path=path)
        started = time.perf_counter()
        writer = index.writer(heap_size=256_000_000, num_threads=1)
        for n, cues in enumerate(videos):  # the same owners and visibility as the catalog's videos
            _add(writer, f"{n:032x}", owners[n % 2], "private" if n % 3 == 0 else "public", cues)
        writer.commit()
        writer.wait_merging_threads()
        print(f"tantivy:  index built in {time.perf_counter() - started:.1f} s (one indexing thread)")
        index.reload()
        viewer = owners[0]
        visible = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "visibility", "public")),
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "owner", viewer)),
            ]
        )

        def build(text: str) -> tantivy.Query:
            parts = [visible]
            for clause in parse_query(text).clauses:
                if clause.kind == "term":
                    parts.append(tantivy.Query.term_query(schema, "text", clause.words[0]))
                elif clause.kind == "phrase":
                    parts.append(tantivy.Query.phrase_query(schema, "text", list(clause.words)))
                else:
                    parts.append(tantivy.Query.phrase_prefix_query(schema, "text", [clause.words[0]]))
            return tantivy.Query.boolean_query([(tantivy.Occur.Must, part) for part in parts])

        started = time.perf_counter()
        writer = index.writer(heap_size=64_000_000, num_threads=1)
        _add(writer, "new", viewer, "private", new_cues)
        writer.commit()
        index.reload()
        searcher = index.searcher()
        found = searcher.search(build(f'"{new_cues[123]["text"]}"'), 200).hits
        assert any(searcher.doc(address)["video_id"][0] == "new" for _, address in found)
        print(
            f"tantivy:  new {len(new_cues)}-cue video searchable in"
            f" {(time.perf_counter() - started) * 1000:.0f} ms wall (add, commit, reload, search)"
        )

        def search(text: str) -> list[Any]:
            searcher = index.searcher()
            result = searcher.search(build(text), 20, count=True)
            return [searcher.doc(address) for _, address in result.hits]

        report("tantivy", queries, search)
