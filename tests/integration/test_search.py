"""Search over real HTTP: cues put through the catalog actor, found by words, phrases and
prefixes down to the cue's timestamps, only where the caller may look, gone once deleted."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray


def _ready_video(
    catalog: Any, owner: SimpleNamespace, title: str, visibility: str, ready: bool = True
) -> str:
    video_id = uuid.uuid4().hex
    ray.get(
        catalog.create_video.remote(
            video_id, owner.id, title, "", visibility, f"sources/{video_id}/source", 1
        )
    )
    if ready:
        ray.get(
            catalog.mark_ready.remote(
                video_id, duration_s=60.0, width=640, height=360, renditions=[], has_audio=True, media_bytes=1
            )
        )
    return video_id


@pytest.fixture
def corpus(catalog: Any, new_user: Any) -> SimpleNamespace:
    """Two users' videos sharing one made-up word (so other tests' data never matches)."""
    word = f"lumo{uuid.uuid4().hex[:8]}"
    alice, bob = new_user(), new_user()
    public = _ready_video(catalog, alice, "Harbour at night", "public")
    ray.get(
        catalog.put_cues.remote(
            public,
            "en",
            "en",
            [
                {"start_s": 0.0, "end_s": 1.5, "text": "Good evening."},
                {"start_s": 12.5, "end_s": 14.25, "text": f"The {word} keeper waves <b>hello</b>"},
                {"start_s": 20.0, "end_s": 22.0, "text": f"Keeper of the {word}, goodbye"},
            ],
        )
    )
    ray.get(
        catalog.put_cues.remote(
            public,
            "es",
            "en",
            [
                {"start_s": 0.0, "end_s": 1.5, "text": "Buenas noches."},
                {"start_s": 12.5, "end_s": 14.25, "text": f"El guardián del {word} saluda"},
                {"start_s": 20.0, "end_s": 22.0, "text": f"Guardián del {word}, adiós"},
            ],
        )
    )
    alice_private = _ready_video(catalog, alice, "Alice's notes", "private")
    ray.get(
        catalog.put_cues.remote(alice_private, "en", "en", [{"start_s": 3, "end_s": 4, "text": f"my {word}"}])
    )
    bob_private = _ready_video(catalog, bob, "Bob's notes", "private")
    ray.get(
        catalog.put_cues.remote(bob_private, "en", "en", [{"start_s": 5, "end_s": 6, "text": f"his {word}"}])
    )
    unready = _ready_video(catalog, bob, f"{word} in progress", "public", ready=False)
    return SimpleNamespace(
        word=word, alice=alice, bob=bob, public=public, alice_private=alice_private,
        bob_private=bob_private, unready=unready,
    )  # fmt: skip


def _search(api: httpx.Client, user: SimpleNamespace | None = None, **params: Any) -> dict[str, Any]:
    answer = api.get("/v1/search", params=params, headers=user.headers if user else None)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_each_caller_finds_public_videos_and_only_their_own_private_ones(
    api: httpx.Client, corpus: SimpleNamespace
) -> None:
    anonymous = {hit["video_id"] for hit in _search(api, q=corpus.word, limit=100)["items"]}
    alice = {hit["video_id"] for hit in _search(api, corpus.alice, q=corpus.word, limit=100)["items"]}
    bob = {hit["video_id"] for hit in _search(api, corpus.bob, q=corpus.word, limit=100)["items"]}

    assert anonymous == {corpus.public}
    assert alice == {corpus.public, corpus.alice_private}
    assert bob == {corpus.public, corpus.bob_private}  # never alice's private one, nor an unready video


def test_a_phrase_lands_on_the_cue_with_its_timestamps_and_a_link_to_that_second(
    api: httpx.Client, corpus: SimpleNamespace, base_url: str
) -> None:
    body = _search(api, q=f'"{corpus.word} keeper"')

    assert body["total"] == 1
    (hit,) = body["items"]
    assert (hit["video_id"], hit["field"], hit["lang"], hit["source_lang"]) == (
        corpus.public,
        "subtitles",
        "en",
        "en",
    )
    assert (hit["start_s"], hit["end_s"]) == (12.5, 14.25)
    assert hit["play_url"] == f"{base_url}/media/{corpus.public}/master.m3u8#t=12.5"
    assert hit["video_url"] == f"{base_url}/v1/videos/{corpus.public}"
    assert hit["title"] == "Harbour at night"
    # The hit is marked; the cue's own markup is escaped, never passed through as HTML.
    assert hit["snippet"] == f"The <mark>{corpus.word} keeper</mark> waves &lt;b&gt;hello&lt;/b&gt;"
    # Both words, but not in that order: the other cue is no phrase match.
    assert _search(api, q=f'"keeper {corpus.word}"')["total"] == 0


def test_words_match_in_any_order_and_rank_every_matching_line(
    api: httpx.Client, corpus: SimpleNamespace
) -> None:
    body = _search(api, q=f"keeper {corpus.word}")

    assert body["total"] == 2
    assert sorted(hit["start_s"] for hit in body["items"]) == [12.5, 20.0]
    assert all(hit["score"] > 0 for hit in body["items"])
    assert body["items"][0]["score"] >= body["items"][1]["score"]


def test_a_prefix_finds_the_word_and_marks_it_whole(api: httpx.Client, corpus: SimpleNamespace) -> None:
    body = _search(api, q=f"{corpus.word[:7]}* waves")

    assert body["total"] == 1
    assert body["items"][0]["start_s"] == 12.5
    assert f"<mark>{corpus.word}</mark>" in body["items"][0]["snippet"]


def test_translations_are_searched_too_and_lang_narrows_to_one_language(
    api: httpx.Client, corpus: SimpleNamespace
) -> None:
    spanish = _search(api, q=f"guardián {corpus.word}")
    assert sorted((hit["lang"], hit["source_lang"], hit["start_s"]) for hit in spanish["items"]) == [
        ("es", "en", 12.5),
        ("es", "en", 20.0),
    ]

    everywhere = _search(api, q=corpus.word, scope="subtitles", limit=100)
    assert {hit["lang"] for hit in everywhere["items"]} == {"en", "es"}
    only_es = _search(api, q=corpus.word, lang="es", scope="subtitles", limit=100)
    assert {hit["lang"] for hit in only_es["items"]} == {"es"} and only_es["total"] == 2


def test_lang_keeps_title_hits_only_of_videos_with_that_language(
    api: httpx.Client, catalog: Any, corpus: SimpleNamespace
) -> None:
    english_only = _ready_video(catalog, corpus.alice, f"{corpus.word} in English only", "public")
    ray.get(catalog.put_cues.remote(english_only, "en", "en", [{"start_s": 1, "end_s": 2, "text": "hello"}]))
    spanish_title = _ready_video(catalog, corpus.alice, f"{corpus.word} en español", "public")
    ray.get(catalog.put_cues.remote(spanish_title, "es", "es", [{"start_s": 1, "end_s": 2, "text": "hola"}]))

    in_spanish = _search(api, q=corpus.word, lang="es", limit=100)
    assert sorted((hit["video_id"], hit["field"], hit["lang"]) for hit in in_spanish["items"]) == sorted(
        [
            (corpus.public, "subtitles", "es"),
            (corpus.public, "subtitles", "es"),
            (spanish_title, "title", None),
        ]
    )
    assert in_spanish["total"] == 3
    everywhere = {(hit["video_id"], hit["field"]) for hit in _search(api, q=corpus.word, limit=100)["items"]}
    assert {(english_only, "title"), (spanish_title, "title")} <= everywhere
    assert _search(api, q=corpus.word, lang="fr")["items"] == []


def test_scope_limits_the_fields_searched(api: httpx.Client, corpus: SimpleNamespace) -> None:
    titles = _search(api, q="harbour", scope="title", limit=100)
    assert corpus.public in {hit["video_id"] for hit in titles["items"]}
    assert {hit["field"] for hit in titles["items"]} == {"title"}
    assert all(hit["start_s"] is None and hit["play_url"].endswith("/master.m3u8") for hit in titles["items"])
    assert _search(api, q=corpus.word, scope="title")["total"] == 0


def test_pages_share_one_total(api: httpx.Client, corpus: SimpleNamespace) -> None:
    first = _search(api, q=corpus.word, limit=2, offset=0)
    second = _search(api, q=corpus.word, limit=2, offset=2)
    past = _search(api, q=corpus.word, limit=2, offset=50)

    assert first["total"] == second["total"] == past["total"] == 4  # 2 en + 2 es lines
    assert len(first["items"]) == 2 and len(second["items"]) == 2 and past["items"] == []
    keys = {(h["lang"], h["start_s"]) for h in first["items"]} | {
        (h["lang"], h["start_s"]) for h in second["items"]
    }
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"q": ""}, "q: Expected `str` of length >= 1"),
        ({"q": "x" * 201}, "q: Expected `str` of length <= 200"),
        ({"q": "ok", "limit": 0}, "limit"),
        ({"q": "ok", "limit": 101}, "limit"),
        ({"q": "ok", "offset": -1}, "offset"),
        ({"q": "ok", "offset": 1001}, "offset"),
        ({"q": "ok", "scope": "comments"}, "scope"),
        ({"q": "ok", "scope": "title,"}, "scope"),
        ({"q": "ok", "lang": "../etc"}, "lang"),
        ({"q": "ok", "lang": ""}, "lang"),
        ({"q": "ok", "limit": "many"}, "limit"),
        ({}, "q"),
    ],
)
def test_bad_parameters_are_a_400_with_a_readable_detail(
    api: httpx.Client, params: dict[str, Any], detail: str
) -> None:
    answer = api.get("/v1/search", params=params)

    assert answer.status_code == 400, answer.text
    assert detail in answer.json()["detail"]


@pytest.mark.parametrize("q", ["   ", "?!. ,;", '"', "*"])
def test_a_query_of_no_words_finds_nothing(api: httpx.Client, q: str) -> None:
    assert _search(api, q=q) == {
        "q": q, "items": [], "total": 0, "total_exact": True, "ignored": [], "limit": 20, "offset": 0,
    }  # fmt: skip


def test_an_open_quote_is_a_phrase_to_the_end_and_parts_past_eight_are_named(
    api: httpx.Client, corpus: SimpleNamespace
) -> None:
    open_quote = _search(api, q=f'"keeper of the {corpus.word}')
    assert [(hit["lang"], hit["start_s"]) for hit in open_quote["items"]] == [("en", 20.0)]

    long = _search(api, q=f"{corpus.word} keeper " + " ".join(f"w{i}" for i in range(8)))
    assert long["ignored"] == ["w6", "w7"]  # the first 8 parts: the word, keeper, w0..w5
    assert long["items"] == [] and long["total"] == 0  # w0..w5 are in no line


def test_a_deleted_video_leaves_search_at_once(api: httpx.Client, corpus: SimpleNamespace) -> None:
    assert corpus.public in {hit["video_id"] for hit in _search(api, q=corpus.word, limit=100)["items"]}

    deleted = api.delete(f"/v1/videos/{corpus.public}", headers=corpus.alice.headers)
    assert deleted.status_code == 204, deleted.text

    assert _search(api, q=corpus.word, limit=100) == {
        "q": corpus.word, "items": [], "total": 0, "total_exact": True, "ignored": [],
        "limit": 100, "offset": 0,
    }  # fmt: skip
    assert {hit["video_id"] for hit in _search(api, corpus.alice, q=corpus.word)["items"]} == {
        corpus.alice_private
    }
