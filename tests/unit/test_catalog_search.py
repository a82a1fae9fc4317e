"""Cues and search on a real DuckDB file: what is stored, how it ranks, what a query means."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tantivy

from catalog.search.query import Clause, parse_query
from catalog.search.search import snippet
from catalog.store import CatalogStore
from cluster.errors import BadRequest, NotFound

ALICE, BOB = "a" * 32, "b" * 32


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    opened = CatalogStore(tmp_path / "catalog.duckdb")
    yield opened
    opened.close()


def ready_video(
    store: CatalogStore, video_id: str, owner: str = ALICE, visibility: str = "public", **kw: Any
) -> str:
    store.create_video(video_id, owner, kw.get("title", f"video {video_id}"), kw.get("description", ""),
                       visibility, "k", 1)  # fmt: skip
    store.mark_ready(video_id, duration_s=60, width=2, height=2, renditions=[], has_audio=True, media_bytes=1)
    return video_id


def cues(*texts: str) -> list[dict[str, Any]]:
    return [{"start_s": 2.0 * i, "end_s": 2.0 * i + 1.5, "text": text} for i, text in enumerate(texts)]


def hits(store: CatalogStore, q: str, viewer: str | None = ALICE, **kw: Any) -> list[tuple[str, str, Any]]:
    return [(h["video_id"], h["field"], h["start_s"]) for h in store.search(q, viewer, **kw)["items"]]


def indexed_documents(store: CatalogStore, video_id: str) -> int:
    """How many documents of the video the Tantivy index holds (deleted ones not counted)."""
    assert store._search is not None
    searcher = store._search.searcher()
    by_video = tantivy.Query.term_query(store._search.schema, "video_id", video_id)
    return int(searcher.search(by_video, 1, count=True).count or 0)


def test_put_cues_stores_them_in_order_and_replaces_one_language(store: CatalogStore) -> None:
    vid = ready_video(store, "v1")
    assert store.put_cues(vid, "en", "en", cues("one", "two")) == 2
    assert store.put_cues(vid, "fr", "en", cues("un", "deux")) == 2
    assert store.put_cues(vid, "en", "en", cues("uno")) == 1  # replaces English only

    assert store.get_cues(vid) == [
        {
            "video_id": vid,
            "lang": "en",
            "source_lang": "en",
            "idx": 0,
            "start_s": 0.0,
            "end_s": 1.5,
            "text": "uno",
        },
        {
            "video_id": vid,
            "lang": "fr",
            "source_lang": "en",
            "idx": 0,
            "start_s": 0.0,
            "end_s": 1.5,
            "text": "un",
        },
        {
            "video_id": vid,
            "lang": "fr",
            "source_lang": "en",
            "idx": 1,
            "start_s": 2.0,
            "end_s": 3.5,
            "text": "deux",
        },
    ]
    assert hits(store, "one") == [] and hits(store, "uno") == [(vid, "subtitles", 0.0)]
    assert hits(store, "deux") == [(vid, "subtitles", 2.0)]
    assert indexed_documents(store, vid) == 2 + 3  # title, description and the three cues


@pytest.mark.parametrize(
    ("track", "detail"),
    [
        (("v1", "english", "en", cues("x")), "lang must be a language tag"),
        (("v1", "en", "EN!", cues("x")), "source_lang must be"),
        (("v1", "en", "en", [{"start_s": 3, "end_s": 1, "text": "x"}]), "0 <= start_s <= end_s"),
        (("v1", "en", "en", [{"start_s": float("nan"), "end_s": 1, "text": "x"}]), "start_s"),
        (("v1", "en", "en", [{"start_s": 0, "end_s": 1, "text": "x" * 2001}]), "more than 2000 characters"),
    ],
)
def test_bad_cues_are_refused_and_change_nothing(
    store: CatalogStore, track: tuple[Any, ...], detail: str
) -> None:
    ready_video(store, "v1")
    store.put_cues("v1", "en", "en", cues("kept"))
    with pytest.raises(BadRequest, match=detail):
        store.put_cues(*track)
    assert [c["text"] for c in store.get_cues("v1")] == ["kept"]


def test_cues_of_an_unknown_video_are_not_found(store: CatalogStore) -> None:
    with pytest.raises(NotFound):
        store.put_cues("nope", "en", "en", cues("x"))


def test_bm25_prefers_the_rarer_word_and_the_shorter_line(store: CatalogStore) -> None:
    vid = ready_video(store, "v1", title="t")
    store.put_cues(
        vid, "en", "en", cues("storm at sea", "storm storm over the old grey long harbour wall", "calm")
    )
    ranked = store.search("storm", ALICE, fields=["subtitles"])["items"]
    assert [item["start_s"] for item in ranked] == [0.0, 2.0]  # the short line first
    assert ranked[0]["score"] > ranked[1]["score"] > 0
    both = store.search("storm sea", ALICE)["items"]
    assert [item["start_s"] for item in both] == [0.0]  # every word is required


def test_phrases_prefixes_and_snippets(store: CatalogStore) -> None:
    vid = ready_video(store, "v1", title="Sea stories", description="About <the> sea")
    store.put_cues(
        vid, "en", "en", cues("The sea is calm tonight", "Calm. The sea!", "seagulls over the seaside")
    )

    assert hits(store, '"sea is calm"') == [(vid, "subtitles", 0.0)]
    assert hits(store, '"calm the sea"') == [(vid, "subtitles", 2.0)]  # punctuation between words is fine
    assert hits(store, '"calm sea"') == []
    assert {start for _, _, start in hits(store, "seag*")} == {4.0}
    found = store.search("sea*", ALICE, limit=10)["items"]
    assert {(item["field"], item["start_s"]) for item in found} == {
        ("title", None), ("description", None), ("subtitles", 0.0), ("subtitles", 2.0), ("subtitles", 4.0),
    }  # fmt: skip
    description = next(item for item in found if item["field"] == "description")
    assert description["snippet"] == "About &lt;the&gt; <mark>sea</mark>"
    last = next(item for item in found if item["start_s"] == 4.0)
    assert last["snippet"] == "<mark>seagulls</mark> over the <mark>seaside</mark>"


def test_visibility_readiness_language_and_scope(store: CatalogStore) -> None:
    public = ready_video(store, "p1", owner=ALICE)
    mine = ready_video(store, "p2", owner=ALICE, visibility="private")
    theirs = ready_video(store, "p3", owner=BOB, visibility="private")
    store.create_video("p4", BOB, "queued", "", "public", "k", 1)  # not ready: not searchable
    for vid in (public, mine, theirs, "p4"):
        store.put_cues(vid, "en", "en", cues("lantern"))
    store.put_cues(public, "de", "en", cues("Laterne lantern"))

    assert {v for v, _, _ in hits(store, "lantern", None)} == {public}
    assert {v for v, _, _ in hits(store, "lantern", ALICE)} == {public, mine}
    assert {v for v, _, _ in hits(store, "lantern", BOB)} == {public, theirs}
    assert [h["lang"] for h in store.search("lantern", None, lang="de")["items"]] == ["de"]
    assert hits(store, "lantern", ALICE, fields=["title"]) == []
    with pytest.raises(BadRequest, match="scope"):
        store.search("lantern", ALICE, fields=["comments"])


def test_delete_video_removes_cues_and_documents(store: CatalogStore) -> None:
    vid = ready_video(store, "v1", title="Unique title")
    store.put_cues(vid, "en", "en", cues("ephemeral words"))
    store.put_cues(vid, "es", "en", cues("palabras efímeras"))
    assert indexed_documents(store, vid) == 4

    assert store.delete_video(vid)

    assert hits(store, "ephemeral") == [] and hits(store, "unique") == [] and hits(store, "palabras") == []
    assert store.get_cues(vid) == []
    assert indexed_documents(store, vid) == 0
    assert store._db.execute("SELECT count(*) FROM search_dirty").fetchone() == (0,)


def test_pages_and_total(store: CatalogStore) -> None:
    vid = ready_video(store, "v1")
    store.put_cues(vid, "en", "en", cues(*(f"echo {i}" for i in range(7))))
    first = store.search("echo", ALICE, limit=5)
    rest = store.search("echo", ALICE, limit=5, offset=5)
    past = store.search("echo", ALICE, limit=5, offset=20)
    assert (first["total"], rest["total"], past["total"]) == (7, 7, 7)
    assert len(first["items"]) == 5 and len(rest["items"]) == 2 and past["items"] == []
    assert {h["start_s"] for h in first["items"] + rest["items"]} == {2.0 * i for i in range(7)}


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("Hello, World", [Clause("term", ("hello",)), Clause("term", ("world",))]),
        ('"to be" or', [Clause("phrase", ("to", "be")), Clause("term", ("or",))]),
        ('"solo"', [Clause("term", ("solo",))]),
        ("Caf*", [Clause("prefix", ("caf",))]),
        ("rock-n-ro*", [Clause("term", ("rock",)), Clause("term", ("n",)), Clause("prefix", ("ro",))]),
        ("dup dup DUP", [Clause("term", ("dup",))]),
        ("ÜBER straße", [Clause("term", ("über",)), Clause("term", ("strasse",))]),
    ],
)
def test_parse_query(text: str, clauses: list[Clause]) -> None:
    assert list(parse_query(text).clauses) == clauses


@pytest.mark.parametrize(
    ("text", "clauses", "ignored"),
    [
        ("", [], []),
        ("   ", [], []),
        ("?!* ...", [], []),  # no words: matches nothing, not an error
        ('"', [], []),
        ('"open phrase', [Clause("phrase", ("open", "phrase"))], []),  # a quote still being typed
        ('"a b" "c', [Clause("phrase", ("a", "b")), Clause("term", ("c",))], []),
        ("a*", [Clause("prefix", ("a",))], []),
        (
            " ".join(f"w{i}" for i in range(10)),
            [Clause("term", (f"w{i}",)) for i in range(8)],
            ["w8", "w9"],
        ),
        (
            'a b c d e f g "h i" j*',
            [Clause("term", (w,)) for w in "abcdefg"] + [Clause("phrase", ("h", "i"))],
            ["j*"],
        ),  # fmt: skip
    ],
)
def test_every_text_is_a_query_and_parts_past_the_eighth_are_named(
    text: str, clauses: list[Clause], ignored: list[str]
) -> None:
    query = parse_query(text)
    assert (list(query.clauses), [str(c) for c in query.ignored]) == (clauses, ignored)


def test_only_a_query_over_200_characters_is_refused() -> None:
    assert len(parse_query("ab " * 66 + "cd").clauses) == 2
    with pytest.raises(BadRequest, match="at most 200"):
        parse_query("x" * 201)


def test_a_query_of_no_words_finds_nothing_and_ignored_parts_are_reported(store: CatalogStore) -> None:
    vid = ready_video(store, "v1")
    store.put_cues(vid, "en", "en", cues("w0 w1 w2 w3 w4 w5 w6 w7"))
    assert store.search("?!", ALICE) == {"items": [], "total": 0, "total_exact": True, "ignored": []}
    found = store.search(" ".join(f"w{i}" for i in range(9)), ALICE)  # w8 is in no line
    assert (found["total"], found["ignored"]) == (1, ["w8"])


def test_snippet_escapes_html_and_cuts_long_text_around_the_hit() -> None:
    query = parse_query("needle")
    assert snippet("<script>alert(1)</script> needle", query) == (
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>needle</mark>"
    )
    long = "hay " * 100 + "needle" + " hay" * 100
    cut = snippet(long, query)
    assert cut.startswith("…") and cut.endswith("…") and "<mark>needle</mark>" in cut
    assert len(cut) < 300


def test_lang_keeps_its_lines_and_the_titles_of_videos_that_have_it(store: CatalogStore) -> None:
    spanish = ready_video(store, "v1", title="Harbour lights", description="harbour at dusk")
    english_only = ready_video(store, "v2", title="Harbour days")
    store.put_cues(spanish, "en", "en", cues("the harbour"))
    store.put_cues(spanish, "es", "en", cues("el puerto harbour"))
    store.put_cues(english_only, "en", "en", cues("harbour again"))

    found = {
        (h["video_id"], h["field"], h["lang"]) for h in store.search("harbour", ALICE, lang="es")["items"]
    }
    assert found == {(spanish, "title", None), (spanish, "description", None), (spanish, "subtitles", "es")}
    everywhere = {(h["video_id"], h["field"]) for h in store.search("harbour", ALICE)["items"]}
    assert (english_only, "title") in everywhere and (english_only, "subtitles") in everywhere
    assert store.search("harbour", ALICE, lang="fr") == {
        "items": [],
        "total": 0,
        "total_exact": True,
        "ignored": [],
    }
