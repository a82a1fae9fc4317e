"""Subtitle translation: vodray's batched CTranslate2 path against argostranslate's ``translate()``.

Both translate the same distinct cues with the same installed ``.argosmodel``, side by side in
one run: vodray's ``CueTranslator`` as the translator actor runs it (chunks of 8 batches of
``--batch`` cues, sorted by length, the package's sentencepiece tokenizer, one worker per
CPU) and a loop of ``argostranslate.translate.translate(cue, ...)`` (the installed-package
API, one call per cue, its own thread settings). The model has the dimensions of a real Argos
package (argos-train's config: 6+6 layers, 8 heads, 512 wide, 2048 FFN, 32k vocabulary,
int8) and random weights: speed is measured, not quality. Its sentencepiece model is trained
on the benchmark's own lines, so a cue is about as many tokens as with a real package's
(``--tiny-tokenizer``: the test package's, nearly one token per letter). Both decode at
argostranslate's beam 4 and length penalty unless ``--beam``; both run the model's int8
weights (argostranslate's ``compute_type`` "auto" keeps what the package holds). Each model is
loaded and warmed up before the clocks start, and the two take turns on rounds of cues so that
load from elsewhere on the machine hits both alike.

    .venv/bin/python benchmarks/translate.py [--cues 5000] [--batch 32] [--argos-threads N]

Decoding bounds: vodray stops a batch at ``decoding_bound`` (2n + 16 tokens for its longest
line of n tokens); argostranslate at CTranslate2's 256. The script counts the cues vodray cut
at its bound: at 0, the bound did no work for vodray that argostranslate had to do.

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

from argostranslate.tokenizer import SentencePieceTokenizer  # noqa: E402

from pipelines.subtitles.cues import Cue  # noqa: E402
from pipelines.subtitles.models import install_model  # noqa: E402
from pipelines.subtitles.translate import CHUNK_BATCHES, CueTranslator  # noqa: E402
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


def argos_loop(package: Path, scratch: Path, threads: int | None) -> Callable[[list[str]], list[str]]:
    """argostranslate with ``package`` installed, warmed up: one ``translate()`` per cue."""
    # argostranslate reads its directories and threads from the environment once, on import.
    os.environ.update(
        ARGOS_PACKAGES_DIR=str(scratch / "argos-packages"),
        XDG_DATA_HOME=str(scratch / "xdg-data"),
        XDG_CONFIG_HOME=str(scratch / "xdg-config"),
        XDG_CACHE_HOME=str(scratch / "xdg-cache"),
    )
    if threads is not None:
        os.environ["ARGOS_INTRA_THREADS"] = str(threads)
    from argostranslate import package as argos_package
    from argostranslate import translate as argos_translate

    argos_package.install_from_path(package)
    translation = argos_translate.get_translation_from_codes("en", "es")
    translation.underlying.sentencizer = _OneSentence()
    argos_translate.translate("Warm up the model.", "en", "es")
    return lambda texts: [argos_translate.translate(text, "en", "es") for text in texts]


def vodray_batched(
    package: Path, scratch: Path, batch: int, beam: int, threads: int
) -> tuple[CueTranslator, Callable[[list[Cue]], list[str]]]:
    """vodray with ``package`` installed, warmed up: the cues in ``translate_batch`` calls."""
    install_model(package, scratch / "models")
    translator = CueTranslator(scratch / "models", batch_cues=batch, beam=beam, threads=threads)
    translator.translate_texts(["Warm up the model."], "en", "es")
    return translator, lambda cues: [cue.text for cue in translator.translate_cues(cues, "en", "es")]


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cues", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=32, help="cues per translate_batch call")
    parser.add_argument("--beam", type=int, default=4, help="vodray's beam (argostranslate's is 4)")
    parser.add_argument("--threads", type=int, default=0, help="vodray's workers (0: one per CPU)")
    parser.add_argument(
        "--argos-threads", type=int, default=None, help="ARGOS_INTRA_THREADS (default: argostranslate's)"
    )
    parser.add_argument("--round-cues", type=int, default=0, help="cues per round (0: one actor call)")
    parser.add_argument("--vocab", type=int, default=ARGOS_BASE.vocab)
    parser.add_argument("--stop-after", type=int, default=4, help="steers the random model's output length")
    parser.add_argument("--tiny-tokenizer", action="store_true", help="the tests' near-letter tokenizer")
    args = parser.parse_args()

    cues = synthetic_cues(args.cues)
    texts = [cue.text for cue in cues]
    round_cues = args.round_cues or args.batch * CHUNK_BATCHES
    shape = ModelShape(**{**ARGOS_BASE.__dict__, "vocab": args.vocab})
    lines = TRAINING_LINES if args.tiny_tokenizer else synthetic_cues(2000, seed=11)
    with tempfile.TemporaryDirectory(prefix="vodray-bench-translate-") as tmp:
        scratch = Path(tmp)
        started = time.perf_counter()
        package = build_argos_package(
            scratch / "en_es.argosmodel",
            shape=shape,
            stop_after=args.stop_after,
            lines=[line if isinstance(line, str) else line.text for line in lines],
        )
        print(
            f"model: {shape.layers}+{shape.layers} layers, {shape.heads} heads, d_model {shape.d_model}, "
            f"ffn {shape.ffn}, vocab {shape.vocab}, {shape.quantization}; "
            f"{package.stat().st_size / 1e6:.0f} MB package built in {time.perf_counter() - started:.1f} s"
        )
        translator, run_batched = vodray_batched(package, scratch, args.batch, args.beam, args.threads)
        run_loop = argos_loop(package, scratch, args.argos_threads)
        from argostranslate import settings as argos_settings

        tokenizer = SentencePieceTokenizer(scratch / "models" / "translate-en_es" / "sentencepiece.model")
        source_tokens = [len(tokenizer.encode(text)) for text in texts]
        # Alternating rounds: on a shared machine, load that comes and goes hits both alike.
        batched: list[str] = []
        looped: list[str] = []
        batched_s = loop_s = batched_cpu = loop_cpu = 0.0
        for start in range(0, len(cues), round_cues):
            some = cues[start : start + round_cues]
            wall, cpu = _clocks()
            batched += run_batched(some)
            batched_s, batched_cpu = batched_s + _clocks()[0] - wall, batched_cpu + _clocks()[1] - cpu
            wall, cpu = _clocks()
            looped += run_loop([cue.text for cue in some])
            loop_s, loop_cpu = loop_s + _clocks()[0] - wall, loop_cpu + _clocks()[1] - cpu
    words = sum(len(text.split()) for text in batched) / len(batched)
    same = sum(a == b for a, b in zip(batched, looped, strict=True))
    print(f"{len(cues)} distinct cues, {sum(len(t.split()) for t in texts) / len(texts):.1f} words and "
          f"{sum(source_tokens) / len(cues):.1f} tokens in, {words:.1f} words out (about a token each:"
          f" most pieces of the random model are words) on average; identical outputs: "
          f"{same}/{len(cues)}; cut at vodray's decoding bound: {translator.bounded}")  # fmt: skip
    print(f"{os.cpu_count()} CPUs; vodray: {translator.threads} worker(s) x 1 thread, rounds of "
          f"{round_cues} cues; argostranslate: inter_threads {argos_settings.inter_threads}, "
          f"intra_threads {argos_settings.intra_threads} (0: CTranslate2's default)")  # fmt: skip
    for name, seconds, cpu in (
        ("argostranslate translate() loop", loop_s, loop_cpu),
        (f"vodray translate_batch ({args.batch}, beam {args.beam})", batched_s, batched_cpu),
    ):
        print(f"  {name:<36}: {seconds:8.1f} s  {len(cues) / seconds:8.1f} cues/s  {cpu:8.1f} CPU s")
    print(
        f"  ratio batched/loop: {loop_s / batched_s:.2f}x in time (goal >= 5x),"
        f" {loop_cpu / batched_cpu:.2f}x in CPU time"
    )
    if args.beam != 4:
        print(f"  (vodray at beam {args.beam}, argostranslate at beam 4: not the same output)")


if __name__ == "__main__":
    main()
