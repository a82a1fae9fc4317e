"""The search index: Tantivy in a directory beside the catalog's DuckDB file.

Only the catalog store opens it (the catalog actor is its one process), and it keeps one
``IndexWriter`` for its whole life: changes are made under the catalog's write lock, one
commit per call, and the searcher is reloaded before the call returns, so a change is
searchable (or gone) the moment it returns. Searches take the current searcher and never
wait for a writer.

The index is derived (``catalog.search.index`` reads its documents from the catalog's
tables). A directory that is missing, unreadable, half-built or of another version is replaced by an empty
index, and the store fills it from the catalog.

Each document holds its terms already cut by ``terms_of`` (joined by spaces, split by Tantivy's
whitespace tokenizer) rather than a Tantivy analyzer's: Python's ``\\w`` and casefold are what a
query is parsed with, and a Rust regex or lowercaser differs from them on some words (``ß``,
combining marks in Devanagari), which would make such words unfindable.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

from catalog.search.index import Document, terms_of
from cluster.settings import private_dir

log = logging.getLogger(__name__)

WRITER_HEAP_BYTES = 128_000_000
"""Tantivy's indexing buffer: a bigger one only makes fewer segments during a whole rebuild."""
COMPLETE_MARK = "vodray-complete"
"""Written once the index has been filled from the catalog (holding ``INDEX_VERSION``): a
rebuild cut short is redone."""
INDEX_VERSION = "1"
"""Raise it whenever ``build_schema`` or what a document holds changes: the index is rebuilt."""
KEYWORDS = ("kind", "video_id", "owner_id", "visibility", "lang", "langs", "source_lang")
"""Untokenized fields, matched whole: what a query filters on and what a hit shows."""
STORED_KEYWORDS = ("kind", "video_id", "lang", "source_lang")


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="position")
    for name in KEYWORDS:
        builder.add_text_field(
            name, stored=name in STORED_KEYWORDS, tokenizer_name="raw", index_option="basic"
        )
    # Stored, not indexed: the page shows them, the terms field is what is searched.
    builder.add_bytes_field("text", stored=True)
    builder.add_bytes_field("title", stored=True)
    builder.add_float_field("start_s", stored=True)
    builder.add_float_field("end_s", stored=True)
    return builder.build()


def _open_or_create(directory: Path, schema: tantivy.Schema) -> tuple[tantivy.Index, bool]:
    """The index in ``directory`` and True, or a new empty one there and False when there was
    none, or it could not be read, or was never completely built, or is of another version."""
    if directory.is_dir() and tantivy.Index.exists(str(directory)):
        try:
            index = tantivy.Index.open(str(directory))
            mark = directory / COMPLETE_MARK
            if not mark.exists():
                log.warning("search index %s was never completely built: rebuilding it", directory)
            elif mark.read_text() != INDEX_VERSION:
                log.warning("search index %s is of another version: rebuilding it", directory)
            else:
                index.searcher()  # reads every segment's metadata: fails here, not in a search
                return index, True
        except (ValueError, OSError) as exc:
            log.warning("search index %s is unreadable (%s): rebuilding it", directory, exc)
        shutil.rmtree(directory)
    elif directory.is_dir():
        shutil.rmtree(directory)  # a directory without an index's metadata is no index
    elif directory.exists():
        directory.unlink()
    private_dir(directory)
    return tantivy.Index(schema, path=str(directory), reuse=False), False


class SearchEngine:
    """The Tantivy index of the catalog at ``catalog_path``; ``complete`` is False when it was
    just created empty and must be filled from the catalog (``replace_all``)."""

    def __init__(self, catalog_path: Path) -> None:
        self.directory = catalog_path.with_name(catalog_path.name + ".search")
        self.index, self.complete = _open_or_create(self.directory, build_schema())
        self.schema = self.index.schema
        self.index.reload()
        self._writer: tantivy.IndexWriter | None = self.index.writer(
            heap_size=WRITER_HEAP_BYTES, num_threads=1
        )

    def searcher(self) -> tantivy.Searcher:
        """The index as of the last commit; a search runs on one searcher from start to end."""
        return self.index.searcher()

    def replace_videos(self, video_ids: Sequence[str], documents: Iterable[Document]) -> int:
        """Take every document of ``video_ids`` out and put ``documents`` (theirs, as they are
        now) in, in one commit; returns how many documents were added."""
        writer = self._open_writer()
        for video_id in video_ids:
            writer.delete_documents_by_term("video_id", video_id)
        return self._add_and_commit(writer, documents)

    def replace_all(self, documents: Iterable[Document]) -> int:
        """Empty the index and fill it with ``documents``, in one commit."""
        started = time.perf_counter()
        writer = self._open_writer()
        writer.delete_all_documents()
        added = self._add_and_commit(writer, documents)
        (self.directory / COMPLETE_MARK).write_text(INDEX_VERSION)
        self.complete = True
        log.info("search index rebuilt: %d documents in %.1f s", added, time.perf_counter() - started)
        return added

    def mark_incomplete(self) -> None:
        """Have the next open rebuild the index from the catalog (it may hold what never landed)."""
        (self.directory / COMPLETE_MARK).unlink(missing_ok=True)
        self.complete = False

    def close(self) -> None:
        """Finish merging and release the writer (and its lock on the directory)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.wait_merging_threads()
            del writer

    def _open_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            raise RuntimeError("the search index is closed")
        return self._writer

    def _add_and_commit(self, writer: tantivy.IndexWriter, documents: Iterable[Document]) -> int:
        added = 0
        try:
            for document in documents:
                writer.add_document(_tantivy_document(document))
                added += 1
            writer.commit()
        except BaseException:
            writer.rollback()  # nothing half-done is committed later with someone else's change
            raise
        self.index.reload()
        return added


def _tantivy_document(document: Document) -> tantivy.Document:
    text = document["text"] or ""
    fields = {name: document[name] for name in ("kind", "video_id", "owner_id", "visibility", "langs")}
    fields |= {"terms": " ".join(terms_of(text)), "text": text.encode(), "title": document["title"].encode()}
    # A title or a description has no language of its own and no time.
    fields |= {
        name: document[name]
        for name in ("lang", "source_lang", "start_s", "end_s")
        if document.get(name) is not None
    }
    return tantivy.Document(**fields)
