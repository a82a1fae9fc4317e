"""Subtitle translation: vodray's batched CTranslate2 path against argostranslate's ``translate()``.

Both translate the same distinct cues with the same installed ``.argosmodel``, side by side in
one run: vodray's ``CueTranslator`` (cues in ``translate_batch`` calls of ``--batch`` cues, the
package's sentencepiece tokenizer) and a loop of ``argostranslate.translate.translate(cue, ...)``
(the installed-package API, one call per cue). The model has the dimensions of a real Argos
package (argos-train's config: 6+6 layers, 8 heads, 512 wide, 2048 FFN, int8) and random
weights: speed is measured, not quality. Both decode alike (beam 4 unless ``--beam``,
CTranslate2 defaults for threads), each model is loaded and warmed up before the clocks
start, and the two take turns on rounds of cues so that load from elsewhere on the machine
hits both alike.

    .venv/bin/python benchmarks/translate.py [--cues 5000] [--batch 32]

argostranslate splits each text into sentences with MiniSBD, whose ONNX model it downloads on
first use; nothing may be downloaded here, so the loop's splitter is replaced by "the cue is
one sentence", the cheapest split there is. That can only make the loop faster: the printed
ratio is a lower bound of the real one.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.argos_models import install_model  # noqa: E402
from pipelines.subtitles import Cue  # noqa: E402
from pipelines.translate import CueTranslator  # noqa: E402
from tests.argos_model import ARGOS_BASE, TRAINING_LINES, ModelShape, build_argos_package  # noqa: E402


def synthetic_cues(count: int, seed: int = 7) -> list[Cue]:
    """Distinct subtitle-like lines of 4 to 12 words (argostranslate caches the last text)."""
    rng = random.Random(seed)
    words = sorted({w.strip(".,?").lower() for line in TRAINING_LINES for w in line.split()})
    texts: set[str] = set()
    while len(texts) < count:
        texts.add(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))).capitalize() + ".")
    return [Cue(i * 2000, i * 2000 + 1500, text) for i, text in enumerate(sorted(texts))]


class _OneSentence:
    """Stands in for MiniSBD (which would download a model): the cue is one sentence."""

    def split_sentences(self, text: str) -> list[str]:
        return [text]


def argos_loop(package: Path, scratch: Path) -> Callable[[list[str]], list[str]]:
    """argostranslate with ``package`` installed, warmed up: one ``translate()`` per cue."""
    # argostranslate reads its directories from the environment once, on import.
    os.environ.update(
        ARGOS_PACKAGES_DIR=str(scratch / "argos-packages"),
        XDG_DATA_HOME=str(scratch / "xdg-data"),
        XDG_CONFIG_HOME=str(scratch / "xdg-config"),
        XDG_CACHE_HOME=str(scratch / "xdg-cache"),
    )
    from argostranslate import package as argos_package
    from argostranslate import translate as argos_translate

    argos_package.install_from_path(package)
    translation = argos_translate.get_translation_from_codes("en", "es")
    translation.underlying.sentencizer = _OneSentence()  # type: ignore[attr-defined]
    argos_translate.translate("Warm up the model.", "en", "es")
    return lambda texts: [argos_translate.translate(text, "en", "es") for text in texts]


def vodray_batched(package: Path, scratch: Path, batch: int, beam: int) -> Callable[[list[Cue]], list[str]]:
    """vodray with ``package`` installed, warmed up: the cues in ``translate_batch`` calls."""
    install_model(package, scratch / "models")
    translator = CueTranslator(scratch / "models", batch_cues=batch, beam=beam)
    translator.translate_texts(["Warm up the model."], "en", "es")
    return lambda cues: [cue.text for cue in translator.translate_cues(cues, "en", "es")]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cues", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=32, help="cues per translate_batch call")
    parser.add_argument("--beam", type=int, default=4, help="vodray's beam (argostranslate's is 4)")
    parser.add_argument("--round-cues", type=int, default=128, help="cues per alternating round")
    parser.add_argument("--vocab", type=int, default=ARGOS_BASE.vocab)
    parser.add_argument("--stop-after", type=int, default=6, help="steers the random model's output length")
    args = parser.parse_args()

    cues = synthetic_cues(args.cues)
    texts = [cue.text for cue in cues]
    shape = ModelShape(**{**ARGOS_BASE.__dict__, "vocab": args.vocab})
    with tempfile.TemporaryDirectory(prefix="vodray-bench-translate-") as tmp:
        scratch = Path(tmp)
        started = time.perf_counter()
        package = build_argos_package(scratch / "en_es.argosmodel", shape=shape, stop_after=args.stop_after)
        print(
            f"model: {shape.layers}+{shape.layers} layers, {shape.heads} heads, d_model {shape.d_model}, "
            f"ffn {shape.ffn}, vocab {shape.vocab}, {shape.quantization}; "
            f"{package.stat().st_size / 1e6:.0f} MB package built in {time.perf_counter() - started:.1f} s"
        )
        run_batched = vodray_batched(package, scratch, args.batch, args.beam)
        run_loop = argos_loop(package, scratch)
        # Alternating rounds: on a shared machine, load that comes and goes hits both alike.
        batched: list[str] = []
        looped: list[str] = []
        batched_s = loop_s = 0.0
        for start in range(0, len(cues), args.round_cues):
            round_cues = cues[start : start + args.round_cues]
            started = time.perf_counter()
            batched += run_batched(round_cues)
            batched_s += time.perf_counter() - started
            started = time.perf_counter()
            looped += run_loop([cue.text for cue in round_cues])
            loop_s += time.perf_counter() - started
    words = sum(len(text.split()) for text in batched) / len(batched)
    same = sum(a == b for a, b in zip(batched, looped, strict=True))
    print(f"{len(cues)} distinct cues, {sum(len(t.split()) for t in texts) / len(texts):.1f} words in, "
          f"{words:.1f} words out on average; identical outputs: {same}/{len(cues)}")  # fmt: skip
    for name, seconds in (
        ("argostranslate translate() loop", loop_s),
        (f"vodray translate_batch ({args.batch}, beam {args.beam})", batched_s),
    ):
        print(f"  {name:<32}: {seconds:8.1f} s  {len(cues) / seconds:8.1f} cues/s")
    print(f"  ratio batched/loop: {loop_s / batched_s:.2f}x (goal >= 5x)")
    if args.beam != 4:
        print(f"  (vodray at beam {args.beam}, argostranslate at beam 4: not the same output)")


if __name__ == "__main__":
    main()
