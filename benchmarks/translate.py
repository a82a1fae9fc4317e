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

    .venv/bin/python benchmarks/translate.py [--cues 5000] [--backend mkl,dnnl] [--batch 16]

Backends: CTranslate2 multiplies int8 weights with Intel MKL on an Intel CPU and with oneDNN
on any other; ``CT2_USE_MKL`` picks one and is read once, when ctranslate2 loads. So each entry
of ``--backend`` (default ``mkl,dnnl``: both, on one host, in one run) runs in a process of its
own, one after the other, each with both sides side by side, and a table of both closes the
run. ``dnnl:avx2`` (or ``mkl:avx2``) also caps the library's instructions at AVX2
(``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``): on an Intel host with AVX-512, what an AMD
EPYC without AVX-512 (Zen 2 and 3) runs. Before each backend the script prints what the
libraries themselves report for it: CTranslate2's CPU, ISA and GEMM backends
(``CT2_VERBOSE``), and the instructions oneDNN or MKL dispatch to.

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
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.settings import SubtitleSettings  # noqa: E402
from pipelines.subtitles.cues import Cue  # noqa: E402
from tests.argos_model import ARGOS_BASE, TRAINING_LINES, ModelShape, build_argos_package  # noqa: E402

BACKENDS = {"mkl": {"CT2_USE_MKL": "1"}, "dnnl": {"CT2_USE_MKL": "0"}}
ISA_CAPS = {"mkl": "MKL_ENABLE_INSTRUCTIONS", "dnnl": "ONEDNN_MAX_CPU_ISA"}
LIBRARY_VERBOSE = {"mkl": "MKL_VERBOSE", "dnnl": "ONEDNN_VERBOSE"}


def backend_env(spec: str) -> dict[str, str]:
    """The environment of one ``--backend`` entry: ``mkl``, ``dnnl``, ``dnnl:avx2``..."""
    name, _, isa = spec.partition(":")
    if name not in BACKENDS:
        raise SystemExit(f"--backend {spec}: not one of mkl, dnnl (optionally :ISA, e.g. dnnl:avx2)")
    env = {**os.environ, **BACKENDS[name]}
    for variable in ISA_CAPS.values():
        env.pop(variable, None)
    if isa:
        env[ISA_CAPS[name]] = isa.upper()
    return env


def synthetic_cues(count: int, seed: int = 7) -> list[Cue]:
    """Distinct subtitle-like lines of 4 to 12 words (argostranslate caches the last text)."""
    rng = random.Random(seed)
    words = sorted({w.strip(".,?").lower() for line in TRAINING_LINES for w in line.split()})
    texts: set[str] = set()
    while len(texts) < count:
        texts.add(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))).capitalize() + ".")
    return [Cue(i * 2000, i * 2000 + 1500, text) for i, text in enumerate(sorted(texts))]


def report_libraries(spec: str, model_dir: Path) -> None:
    """What CTranslate2 and its GEMM library say they run for ``spec``: one short translation in a
    process with their logs on (oneDNN and MKL log every product, so not in the measured one)."""
    name = spec.partition(":")[0]
    env = {**backend_env(spec), "CT2_VERBOSE": "1", LIBRARY_VERBOSE[name]: "1"}
    probe = (
        "import sys, ctranslate2; "
        "ctranslate2.Translator(sys.argv[1], device='cpu').translate_batch([['▁The', '▁end']], beam_size=1)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(model_dir)], env=env, capture_output=True, text=True, check=True
    )
    said = []
    for line in (run.stderr + run.stdout).splitlines():
        if "[ctranslate2]" in line and any(k in line for k in ("CPU:", "ISA", "backend", "compute type")):
            said.append("CTranslate2 " + line.split("[info]", 1)[-1].strip().lstrip("- "))
        elif line.startswith("onednn_verbose,info,cpu,isa:"):
            said.append("oneDNN runs: " + line.split("isa:", 1)[1].strip())
        elif line.startswith("MKL_VERBOSE oneMKL"):
            said.append("MKL runs: " + line.split(" architecture ", 1)[-1].split(", Lnx")[0].strip())
    for line in said:
        print(f"  {line}")


def cpu_name() -> str:
    from pipelines.subtitles.translate_cpu import parse_cpuinfo

    try:
        vendor, model, _ = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return "unknown CPU"
    return f"{vendor} {model}"


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


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def measure(args: argparse.Namespace, package: Path, models: Path, scratch: Path) -> dict[str, object]:
    """One backend (this process's): both sides on the same cues in alternating rounds."""
    from argostranslate import settings as argos_settings
    from argostranslate.tokenizer import SentencePieceTokenizer

    from pipelines.subtitles.translate import CHUNK_BATCHES, CueTranslator

    load_before = _load()
    translator = CueTranslator(models, batch_cues=args.batch, beam=args.beam, threads=args.threads)
    translator.translate_texts(["Warm up the model."], "en", "es")
    run_loop = argos_loop(package, scratch, args.argos_threads)
    cues = synthetic_cues(args.cues)
    texts = [cue.text for cue in cues]
    round_cues = args.round_cues or args.batch * CHUNK_BATCHES
    tokenizer = SentencePieceTokenizer(models / "translate-en_es" / "sentencepiece.model")
    source_tokens = [len(tokenizer.encode(text)) for text in texts]
    # Alternating rounds: on a shared machine, load that comes and goes hits both alike.
    batched: list[str] = []
    looped: list[str] = []
    batched_s = loop_s = batched_cpu = loop_cpu = 0.0
    for start in range(0, len(cues), round_cues):
        some = cues[start : start + round_cues]
        wall, cpu = _clocks()
        batched += [cue.text for cue in translator.translate_cues(some, "en", "es")]
        batched_s, batched_cpu = batched_s + _clocks()[0] - wall, batched_cpu + _clocks()[1] - cpu
        wall, cpu = _clocks()
        looped += run_loop([cue.text for cue in some])
        loop_s, loop_cpu = loop_s + _clocks()[0] - wall, loop_cpu + _clocks()[1] - cpu
    words = sum(len(text.split()) for text in batched) / len(batched)
    same = sum(a == b for a, b in zip(batched, looped, strict=True))
    print(f"  {len(cues)} distinct cues, {sum(len(t.split()) for t in texts) / len(texts):.1f} words and "
          f"{sum(source_tokens) / len(cues):.1f} tokens in, {words:.1f} words out (about a token each:"
          f" most pieces of the random model are words) on average; identical outputs: "
          f"{same}/{len(cues)}; cut at vodray's decoding bound: {translator.bounded}")  # fmt: skip
    print(f"  {os.cpu_count()} CPUs; vodray: {translator.describe(translator.loaded_pairs()[0])}; "
          f"rounds of {round_cues} cues; argostranslate: inter_threads {argos_settings.inter_threads}, "
          f"intra_threads {argos_settings.intra_threads} (0: CTranslate2's default)")  # fmt: skip
    for name, seconds, cpu in (
        ("argostranslate translate() loop", loop_s, loop_cpu),
        (f"vodray translate_batch ({args.batch}, beam {args.beam})", batched_s, batched_cpu),
    ):
        print(f"  {name:<36}: {seconds:8.1f} s  {len(cues) / seconds:8.1f} cues/s  {cpu:8.1f} CPU s")
    print(
        f"  ratio batched/loop: {loop_s / batched_s:.2f}x in time (goal >= 5x),"
        f" {loop_cpu / batched_cpu:.2f}x in CPU time; load average {load_before} before, {_load()} after"
    )
    if args.beam != 4:
        print(f"  (vodray at beam {args.beam}, argostranslate at beam 4: not the same output)")
    return {
        "cues": len(cues), "loop_s": loop_s, "loop_cpu": loop_cpu, "batched_s": batched_s,
        "batched_cpu": batched_cpu, "same": same, "load": f"{load_before} -> {_load()}",
    }  # fmt: skip


def summary(results: dict[str, dict[str, float]]) -> None:
    print(f"\n{'backend':<10} {'loop cues/s':>11} {'CPU s':>7} {'vodray cues/s':>13} {'CPU s':>7}"
          f" {'time':>6} {'CPU':>6}  identical  load average (1/5/15 min)")  # fmt: skip
    for spec, r in results.items():
        n, time_ratio, cpu_ratio = r["cues"], r["loop_s"] / r["batched_s"], r["loop_cpu"] / r["batched_cpu"]
        print(f"{spec:<10} {n / r['loop_s']:11.1f} {r['loop_cpu']:7.1f} {n / r['batched_s']:13.1f}"
              f" {r['batched_cpu']:7.1f} {time_ratio:5.2f}x {cpu_ratio:5.2f}x"
              f"  {r['same']:>4}/{n:<4}  {r['load']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cues", type=int, default=5000)
    parser.add_argument(
        "--backend", default="mkl,dnnl", help="comma-separated mkl, dnnl, each optionally :ISA (dnnl:avx2)"
    )
    parser.add_argument(
        "--batch", type=int, default=SubtitleSettings.translate_batch_cues, help="cues per translate_batch"
    )
    parser.add_argument("--beam", type=int, default=4, help="vodray's beam (argostranslate's is 4)")
    parser.add_argument("--threads", type=int, default=0, help="vodray's workers (0: one per CPU)")
    parser.add_argument(
        "--argos-threads", type=int, default=None, help="ARGOS_INTRA_THREADS (default: argostranslate's)"
    )
    parser.add_argument("--round-cues", type=int, default=0, help="cues per round (0: one actor call)")
    parser.add_argument("--vocab", type=int, default=ARGOS_BASE.vocab)
    parser.add_argument("--stop-after", type=int, default=4, help="steers the random model's output length")
    parser.add_argument("--tiny-tokenizer", action="store_true", help="the tests' near-letter tokenizer")
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)  # set for one backend's process
    args = parser.parse_args()

    if args.scratch:  # one backend, in the process the run below started with its environment
        result = measure(args, args.scratch / "en_es.argosmodel", args.scratch / "models", args.scratch)
        (args.scratch / "result.json").write_text(json.dumps(result))
        return

    from pipelines.subtitles.models import install_model

    specs = [spec.strip() for spec in args.backend.split(",") if spec.strip()]
    for spec in specs:
        backend_env(spec)  # a wrong name fails before anything is built
    shape = ModelShape(**{**ARGOS_BASE.__dict__, "vocab": args.vocab})
    lines = TRAINING_LINES if args.tiny_tokenizer else [cue.text for cue in synthetic_cues(2000, seed=11)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="vodray-bench-translate-") as tmp:
        started = time.perf_counter()
        package = build_argos_package(
            Path(tmp) / "en_es.argosmodel", shape=shape, stop_after=args.stop_after, lines=list(lines)
        )
        print(
            f"model: {shape.layers}+{shape.layers} layers, {shape.heads} heads, d_model {shape.d_model}, "
            f"ffn {shape.ffn}, vocab {shape.vocab}, {shape.quantization}; "
            f"{package.stat().st_size / 1e6:.0f} MB package built in {time.perf_counter() - started:.1f} s; "
            f"CPU: {cpu_name()}"
        )
        for spec in specs:
            scratch = Path(tmp) / spec.replace(":", "-")
            scratch.mkdir()
            (scratch / package.name).symlink_to(package)
            install_model(package, scratch / "models")
            env = backend_env(spec)
            chosen = [f"{k}={env[k]}" for k in ("CT2_USE_MKL", *ISA_CAPS.values()) if k in env]
            print(f"\nbackend {spec} ({', '.join(chosen)}):")
            report_libraries(spec, scratch / "models" / "translate-en_es" / "model")
            argv = [sys.executable, __file__, *sys.argv[1:], "--scratch", str(scratch)]
            subprocess.run(argv, env=env, check=True)
            results[spec] = json.loads((scratch / "result.json").read_text())
    summary(results)


if __name__ == "__main__":
    main()
