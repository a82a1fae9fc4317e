"""The per-node translator actor on a real local Ray, with a real (tiny) Argos package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from pipelines.subtitles.cues import Cue, read_vtt, write_vtt
from pipelines.subtitles.translate import (
    CueTranslator,
    TranslatorClient,
    translator_for_node,
)

CUES = [Cue(i * 1000, i * 1000 + 800, text) for i, text in enumerate(
    ["Hello from vodray", "A second line of subtitles", "The end", "Where are you going tonight?",
     "Nobody knows what happened to the ship.", "Turn left after the market."]
)]  # fmt: skip


@pytest.fixture(scope="module")
def translator(settings: Settings, es_model: None) -> Iterator[Any]:
    import ray

    from cluster.runtime import connect

    connection = connect(settings, start=True)
    handle = translator_for_node(settings)
    try:
        yield handle
    finally:
        ray.kill(handle)
        if connection.started_here:
            ray.shutdown()


def test_one_translator_per_node_keeps_its_models_loaded(translator: Any, settings: Settings) -> None:
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    again = translator_for_node(settings, node_id)
    assert again._actor_id == translator._actor_id
    named = ray.get_actor(f"translator:{node_id}", namespace=settings.ray.namespace)
    assert named._actor_id == translator._actor_id

    client = TranslatorClient(translator, batch_cues=2)
    first = client.translate_cues(CUES, "en", "es")
    second = TranslatorClient(again, batch_cues=4).translate_cues(CUES, "en", "es")
    # The actor is the node's, shared by the session: other tests may have loaded their pairs.
    assert "en->es" in ray.get(translator.loaded_pairs.remote())
    # Same cues, same timings, model text: what the same package says in this process.
    local = CueTranslator(settings.subtitles.models_dir).translate_cues(CUES, "en", "es")
    assert first == second == local
    assert [(c.start_ms, c.end_ms) for c in first] == [(c.start_ms, c.end_ms) for c in CUES]
    assert all(c.text for c in first) and [c.text for c in first] != [c.text for c in CUES]


def test_a_track_through_the_actor_lists_missing_languages_as_unavailable(
    translator: Any, tmp_path: Path
) -> None:
    client = TranslatorClient(translator, batch_cues=4)
    assert client.available("en", "es") and not client.available("en", "fr")
    translated = client.translate_cues(CUES, "en", "es")
    write_vtt(translated, tmp_path / "es.vtt")
    assert [(c.start_ms, c.end_ms) for c in read_vtt(tmp_path / "es.vtt")] == [
        (c.start_ms, c.end_ms) for c in CUES
    ]


def test_a_long_track_goes_in_chunks_and_comes_back_in_order(translator: Any, settings: Settings) -> None:
    # 40 cues in chunks of 16 (8 batches of 2), two chunks translated at once by the actor,
    # each sorted by length inside: every cue still gets its own line, at its own time.
    cues = [Cue(i * 1000, i * 1000 + 900, CUES[(i * 7) % len(CUES)].text + " " * (i % 3)) for i in range(40)]
    out = TranslatorClient(translator, batch_cues=2).translate_cues(cues, "en", "es")
    local = CueTranslator(settings.subtitles.models_dir, threads=1).translate_cues(cues, "en", "es")
    assert out == local
    assert [(c.start_ms, c.end_ms) for c in out] == [(c.start_ms, c.end_ms) for c in cues]
    said: dict[str, set[str]] = {}
    for cue, line in zip(cues, out, strict=True):  # a repeated line is translated alike
        said.setdefault(cue.text.strip(), set()).add(line.text)
    assert len(said) == len(CUES) and all(len(lines) == 1 and "" not in lines for lines in said.values())
