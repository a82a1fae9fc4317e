"""Offline translation on real (tiny, random-weight) Argos packages built by the tests.

The packages go through the real path: install (unzip + checks), load in CTranslate2,
tokenise with the package's sentencepiece model, translate in batches, detokenise.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import ctranslate2
import pytest
import sentencepiece as spm
from click.testing import CliRunner

from cluster.cli import main
from cluster.errors import BadRequest, InvalidMedia
from pipelines.subtitles.cues import Cue, read_vtt, write_vtt
from pipelines.subtitles.models import install_from, install_model, list_models, route
from pipelines.subtitles.translate import (
    ARGOS_BEAM,
    DECODING,
    MAX_TOKENS,
    CueTranslator,
    decoding_bound,
    length_batches,
    worker_threads,
)
from pipelines.subtitles.translate_cpu import translation_cpu
from tests.argos_model import build_argos_package, model_vocabulary

CUES = [
    Cue(500, 2000, "Hello from vodray"),
    Cue(2500, 4000, "A second line\nof subtitles"),
    Cue(4500, 5500, "The end"),
    Cue(6000, 7250, "Where are you going tonight?"),
    Cue(8000, 9000, "Please close the door behind you."),
]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("argos")
    return {
        pair: build_argos_package(
            root / f"{pair}.argosmodel", from_code=pair[:2], to_code=pair[3:], seed=seed
        )
        for seed, pair in enumerate(["en_es", "fr_en", "en_de"])
    }


@pytest.fixture(scope="module")
def models_dir(packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("models")
    for package in packages.values():
        install_model(package, target)
    return target


def reference(package_dir: Path, text: str, max_tokens: int = MAX_TOKENS) -> str:
    """One cue through CTranslate2 on its own, unbatched: what the model says for it."""
    sp = spm.SentencePieceProcessor(model_file=str(package_dir / "sentencepiece.model"))
    translator = ctranslate2.Translator(str(package_dir / "model"))
    tokens = sp.encode(" ".join(text.split()), out_type=str)
    [result] = translator.translate_batch(
        [tokens], beam_size=ARGOS_BEAM, max_decoding_length=max_tokens, **DECODING
    )
    assert set(result.hypotheses[0]) <= model_vocabulary(package_dir)
    return str(sp.decode_pieces(result.hypotheses[0])).replace("▁", " ").strip()


def test_install_lays_out_the_package_and_lists_it(models_dir: Path) -> None:
    models = list_models(models_dir)
    assert [(m.pair, m.path.name, m.version) for m in models] == [
        ("en->de", "translate-en_de", "1.0"),
        ("en->es", "translate-en_es", "1.0"),
        ("fr->en", "translate-fr_en", "1.0"),
    ]
    package = models[1].path
    assert {p.name for p in package.iterdir()} == {"metadata.json", "model", "sentencepiece.model"}
    assert (package / "model" / "model.bin").stat().st_size > 0


def test_reinstall_replaces_the_old_package(packages: dict[str, Path], tmp_path: Path) -> None:
    first = install_model(packages["en_es"], tmp_path)
    (first.path / "stale.txt").write_text("from the old version")
    again = install_from(str(packages["en_es"]), tmp_path)
    assert again.path == first.path and not (again.path / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["translate-en_es"]  # no scratch left behind


def test_broken_packages_are_refused_and_install_nothing(tmp_path: Path, packages: dict[str, Path]) -> None:
    models = tmp_path / "models"
    (tmp_path / "text.argosmodel").write_text("not a zip")
    with pytest.raises(InvalidMedia, match="not an Argos model"):
        install_model(tmp_path / "text.argosmodel", models)
    with zipfile.ZipFile(tmp_path / "nomodel.argosmodel", "w") as archive:
        archive.writestr("pkg/metadata.json", json.dumps({"from_code": "en", "to_code": "es"}))
        archive.writestr("pkg/sentencepiece.model", b"x")
    with pytest.raises(InvalidMedia, match="has no model/model.bin"):
        install_model(tmp_path / "nomodel.argosmodel", models)
    with (
        zipfile.ZipFile(packages["en_es"]) as good,
        zipfile.ZipFile(tmp_path / "evil.argosmodel", "w") as evil,
    ):
        for member in good.infolist():
            evil.writestr(member, good.read(member))
        evil.writestr("../escape.txt", "outside the models dir")
    with pytest.raises(InvalidMedia, match="one top directory"):
        install_model(tmp_path / "evil.argosmodel", models)
    with zipfile.ZipFile(tmp_path / "list.argosmodel", "w") as archive:
        archive.writestr("pkg/metadata.json", "[]")
        archive.writestr("pkg/model/model.bin", b"x")
        archive.writestr("pkg/sentencepiece.model", b"x")
    with pytest.raises(InvalidMedia, match="no from_code/to_code"):
        install_model(tmp_path / "list.argosmodel", models)
    with pytest.raises(BadRequest, match="not a file or an http"):
        install_from(str(tmp_path / "missing.argosmodel"), models)
    assert list_models(models) == [] and not (tmp_path / "escape.txt").exists()


def test_cues_are_translated_in_batches_one_cue_out_per_cue_in(models_dir: Path) -> None:
    translator = CueTranslator(models_dir, batch_cues=2)
    out = translator.translate_cues(CUES, "en", "es")
    assert len(out) == len(CUES)
    assert [(c.start_ms, c.end_ms) for c in out] == [(c.start_ms, c.end_ms) for c in CUES]
    assert all(c.text.strip() for c in out)
    assert [c.text for c in out] != [c.text for c in CUES]
    # What came out is what the model says for each cue on its own: batching changes nothing.
    package = models_dir / "translate-en_es"
    assert [c.text for c in out] == [reference(package, c.text) for c in CUES]
    # Deterministic, and another model gives other text for the same cues.
    assert translator.translate_cues(CUES, "en", "es") == out
    assert [c.text for c in translator.translate_cues(CUES, "en", "de")] != [c.text for c in out]
    assert translator.loaded_pairs() == ["en->de", "en->es"]
    # A repeated line (same words, other line breaks) gets the same translation.
    repeated = translator.translate_texts(["The end", "Hello from vodray", "The\nend"], "en", "es")
    assert repeated == [out[2].text, out[0].text, out[2].text]


def test_the_translator_says_how_it_translates_each_model_it_loads(
    models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import os

    translator = CueTranslator(models_dir)  # the defaults: VODRAY_TRANSLATE_BATCH_CUES, one worker per CPU
    cues = [Cue(i * 1000, i * 1000 + 900, f"{CUES[i % 5].text} {i}") for i in range(40)]  # 3 batches
    with caplog.at_level(logging.INFO, logger="pipelines.subtitles.translate"):
        out = translator.translate_cues(cues, "en", "es")
        translator.translate_cues(CUES, "en", "es")  # loaded once: said once
    # The test packages hold float32 weights (a real Argos package: int8, run as int8_float32).
    setup = (
        f"float32, beam 4, batches of 16 cues on {os.cpu_count()} worker(s) x 1 thread; {translation_cpu()}"
    )
    assert translator.describe("en->es") == setup
    assert [r.getMessage() for r in caplog.records] == [f"translation model en->es loaded: {setup}"]
    # Batches of the default size say what the model says for each cue on its own.
    package = models_dir / "translate-en_es"
    assert [c.text for c in out] == [reference(package, c.text) for c in cues]
    mine = CueTranslator(models_dir, batch_cues=2, threads=1)
    mine.translate_texts(["The end"], "en", "es")
    assert (
        mine.describe("en->es")
        == f"float32, beam 4, batches of 2 cues on 1 worker(s) x 1 thread; {translation_cpu()}"
    )


def test_pivot_through_english(models_dir: Path) -> None:
    translator = CueTranslator(models_dir)
    assert [m.pair for m in route(list_models(models_dir), "fr", "es") or []] == ["fr->en", "en->es"]
    out = translator.translate_texts(["Bonjour tout le monde", "Au revoir"], "fr", "es")
    english = translator.translate_texts(["Bonjour tout le monde", "Au revoir"], "fr", "en")
    assert out == translator.translate_texts(english, "en", "es")
    assert all(out)
    assert translator.loaded_pairs() == ["en->es", "fr->en"]


def test_a_model_installed_later_is_found_without_a_restart(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    translator = CueTranslator(tmp_path / "models")
    assert not translator.available("en", "es")
    install_model(packages["en_es"], tmp_path / "models")
    assert translator.available("en", "es")
    assert len(translator.translate_texts(["Hello from vodray"], "en", "es")) == 1


def test_a_language_without_a_model_is_unavailable_not_a_failure(models_dir: Path, tmp_path: Path) -> None:
    translator = CueTranslator(models_dir)
    assert translator.available("en", "es") and translator.available("en", "en")
    assert not translator.available("en", "ja")
    translated = translator.translate_cues(CUES, "en", "es")
    write_vtt(translated, tmp_path / "es.vtt")
    back = read_vtt(tmp_path / "es.vtt")
    assert [(c.start_ms, c.end_ms) for c in back] == [(c.start_ms, c.end_ms) for c in CUES]
    assert [c.text for c in back] == [c.text for c in translated] != [c.text for c in CUES]
    with pytest.raises(BadRequest, match="no translation model from en to ja"):
        translator.translate_texts(["x"], "en", "ja")


def test_cli_installs_and_lists_models(packages: dict[str, Path], tmp_path: Path) -> None:
    env = {
        "VODRAY_DATA_DIR": str(tmp_path),
        "HOME": str(tmp_path),
        "VODRAY_TRANSLATE_BATCH_CUES": "8",
        "VODRAY_TRANSLATE_THREADS": "3",
    }
    runner = CliRunner()
    empty = runner.invoke(main, ["models", "list"], env=env)
    assert empty.exit_code == 0 and empty.output.splitlines() == [
        f"no models in {tmp_path / 'models'} (vodray models install PATH|URL)"
    ]
    installed = runner.invoke(main, ["models", "install", str(packages["fr_en"])], env=env)
    assert installed.exit_code == 0, installed.output
    assert "installed fr->en (version 1.0)" in installed.output
    listed = runner.invoke(main, ["models", "list"], env=env)
    # Then how this machine translates: the settings, CTranslate2's backend and the CPU's int8 instructions.
    assert listed.output.splitlines() == [
        f"fr->en\t1.0\t{tmp_path / 'models' / 'translate-fr_en'}",
        f"translated here at beam 4, batches of 8 cues on 3 worker(s) x 1 thread; {translation_cpu()}",
    ]
    bad = runner.invoke(main, ["models", "install", str(tmp_path / "nope.argosmodel")], env=env)
    assert bad.exit_code == 1 and "is not a file or an http(s) URL" in bad.output


def test_translation_settings_come_from_the_environment(tmp_path: Path) -> None:
    from cluster.settings import load_settings

    env = {
        "VODRAY_DATA_DIR": str(tmp_path),
        "VODRAY_TRANSLATE_TO": "es, FR,es",
        "VODRAY_TRANSLATE_BATCH_CUES": "8",
    }
    subtitles = load_settings(env).subtitles
    assert subtitles.translate_to == ("es", "fr")
    assert subtitles.models_dir == tmp_path / "models"
    assert subtitles.translate_batch_cues == 8
    assert subtitles.translate_beam == 4  # argostranslate's beam: the same output as its translate()
    assert load_settings({"VODRAY_DATA_DIR": str(tmp_path)}).subtitles.translate_to == ()
    with pytest.raises(BadRequest, match="VODRAY_TRANSLATE_TO='es,<b>'"):
        load_settings({**env, "VODRAY_TRANSLATE_TO": "es,<b>"})


def test_install_from_a_url(packages: dict[str, Path], tmp_path: Path) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(packages["en_es"].parent))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            model = install_from(f"{base}/en_es.argosmodel", tmp_path / "models", allow_http=True)
            with pytest.raises(BadRequest, match="HTTP 404"):
                install_from(f"{base}/missing.argosmodel", tmp_path / "models", allow_http=True)
        finally:
            server.shutdown()
    assert model.pair == "en->es"
    assert [m.pair for m in list_models(tmp_path / "models")] == ["en->es"]
    assert CueTranslator(tmp_path / "models").translate_texts(["The end"], "en", "es")[0]


def test_batches_are_sorted_by_length_and_cover_every_line_once() -> None:
    lengths = [9, 2, 30, 2, 7, 15, 1]
    batches = length_batches(lengths, 3)
    assert batches == [[6, 1, 3], [4, 0, 5], [2]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert length_batches([], 3) == []


def test_length_sorted_batches_give_every_cue_its_own_translation_in_order(models_dir: Path) -> None:
    # Longest first, a repeat in the middle: batches are made shortest first, cues come back in order.
    cues = sorted(CUES, key=lambda c: -len(c.text)) + [CUES[2]] + [Cue(9500, 9900, "Yes.")]
    package = models_dir / "translate-en_es"
    for threads in (1, 2):
        translator = CueTranslator(models_dir, batch_cues=2, threads=threads)
        assert translator.threads == threads
        out = translator.translate_cues(cues, "en", "es")
        assert [(c.start_ms, c.end_ms) for c in out] == [(c.start_ms, c.end_ms) for c in cues]
        assert [c.text for c in out] == [reference(package, c.text) for c in cues]
        assert translator.bounded == 0  # a model that ends its lines is never cut


def test_the_decoding_bound_cuts_a_runaway_model_short(tmp_path: Path) -> None:
    # A model that never writes </s>, as a broken or degenerate one may: without a bound every
    # line decodes to 256 tokens with all its beams.
    install_model(build_argos_package(tmp_path / "loop.argosmodel", stop_after=10_000), tmp_path / "models")
    package = tmp_path / "models" / "translate-en_es"
    sp = spm.SentencePieceProcessor(model_file=str(package / "sentencepiece.model"))
    translator = CueTranslator(tmp_path / "models", batch_cues=2)
    texts = ["The end", "Hello from vodray", "Where are you going tonight?"]
    out = translator.translate_texts(texts, "en", "es")
    assert translator.bounded == len(texts)
    lengths = [len(sp.encode(text)) for text in texts]
    # Batched shortest first ([0, 1], [2]): each batch is bounded by its longest line.
    bounds = [decoding_bound(max(lengths[:2]))] * 2 + [decoding_bound(lengths[2])]
    assert [reference(package, t, bound) for t, bound in zip(texts, bounds, strict=True)] == out
    assert all(len(text) < len(reference(package, t)) for t, text in zip(texts, out, strict=True))
    assert decoding_bound(1) == 18 and decoding_bound(12) == 40 and decoding_bound(500) == MAX_TOKENS


def test_translator_threads_default_to_one_per_cpu(tmp_path: Path) -> None:
    import os

    from cluster.settings import load_settings

    assert load_settings({"VODRAY_DATA_DIR": str(tmp_path)}).subtitles.translate_threads == 0
    assert (
        load_settings(
            {"VODRAY_DATA_DIR": str(tmp_path), "VODRAY_TRANSLATE_THREADS": "3"}
        ).subtitles.translate_threads
        == 3
    )
    assert worker_threads(0) == os.cpu_count() and worker_threads(2) == 2
    assert CueTranslator(tmp_path).threads == os.cpu_count()
    with pytest.raises(BadRequest, match="VODRAY_TRANSLATE_THREADS"):
        load_settings({"VODRAY_DATA_DIR": str(tmp_path), "VODRAY_TRANSLATE_THREADS": "-1"})
