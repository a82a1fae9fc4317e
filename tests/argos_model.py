"""Build a real ``.argosmodel`` package with random weights, for tests and the benchmark.

The package is laid out as Argos Translate packages are (a zip holding one directory with
``metadata.json``, a CTranslate2 model in ``model/`` and ``sentencepiece.model``), so the
real install, load, tokenise, batch-translate and detokenise path runs on it. Weights are
random: speed and plumbing are tested, not translation quality. No torch, no network: the
CTranslate2 spec is filled with numpy arrays and saved directly, and sentencepiece is trained
on a few lines in about a second.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm
from ctranslate2.specs import common_spec, transformer_spec

TRAINING_LINES = (
    "Hello from vodray",
    "A second line of subtitles",
    "The end",
    "Where are you going tonight?",
    "I will meet you at the station at nine.",
    "Nobody knows what happened to the ship.",
    "Please close the door behind you.",
    "We have been waiting for hours and hours.",
    "The river runs quietly under the old bridge.",
    "Do you remember the song we heard last summer?",
    "She opened the letter and began to read.",
    "There is nothing left to say.",
    "Turn left after the market, then keep walking.",
    "My brother lives in a small house by the sea.",
    "It is raining again, take an umbrella.",
    "They laughed until the lights went out.",
)


@dataclass(frozen=True)
class ModelShape:
    """Dimensions of the random transformer; ``ARGOS_BASE`` is a real Argos package's."""

    layers: int = 2
    heads: int = 2
    d_model: int = 32
    ffn: int = 64
    vocab: int | None = None
    """Model vocabulary size: the sentencepiece pieces, padded with unused pieces up to this."""
    quantization: str | None = None


TINY = ModelShape()
# argos-train's config.yml: 6+6 layers, 8 heads, 512 wide, 2048 FFN, shared sentencepiece
# vocabulary; converted to CTranslate2 with int8 quantization.
ARGOS_BASE = ModelShape(layers=6, heads=8, d_model=512, ffn=2048, vocab=32000, quantization="int8")


def _train_sentencepiece(lines: tuple[str, ...] | list[str], vocab_size: int) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a few lines cannot fill a larger vocabulary: take what there is
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
    )
    return model.getvalue()


def _fill(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _linear(
    spec: common_spec.LinearSpec, rng: np.random.Generator, out_dim: int, in_dim: int, gain: float = 1.0
) -> None:
    spec.weight = _fill(rng, (out_dim, in_dim), gain * in_dim**-0.5)
    spec.bias = np.zeros(out_dim, np.float32)


def _norm(spec: common_spec.LayerNormSpec, dim: int) -> None:
    spec.gamma = np.ones(dim, np.float32)
    spec.beta = np.zeros(dim, np.float32)


def _sinusoids(positions: int, dim: int) -> np.ndarray:
    half = dim // 2
    inverse = np.exp(-np.log(10000.0) * np.arange(half) / max(half - 1, 1))
    angles = np.arange(positions)[:, None] * inverse[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def random_transformer(
    shape: ModelShape, vocabulary: list[str], stop_after: int, seed: int
) -> transformer_spec.TransformerSpec:
    """A pre-norm transformer (as OpenNMT-py trains Argos models) with random weights.

    Random logits almost never pick ``</s>``, so every output would run to the decoding
    limit. One dimension of the decoder's residual stream is kept as a clock (its position
    encoding is a ramp; nothing else writes to it) and ``</s>`` reads it, so every output
    ends after about ``stop_after`` tokens, like a real model's on a short cue. Everything
    else (which tokens, and so the text) still comes from the random weights and the input.
    """
    rng = np.random.default_rng(seed)
    d, ffn, vocab = shape.d_model, shape.ffn, len(vocabulary)
    clock = d - 1
    spec = transformer_spec.TransformerSpec.from_config(shape.layers, shape.heads)
    spec.encoder.embeddings[0].weight = _fill(rng, (vocab, d), d**-0.5)
    spec.decoder.embeddings.weight = _fill(rng, (vocab, d), d**-0.5)
    spec.decoder.embeddings.weight[:, clock] = 0.0
    positions = _sinusoids(1024, d)
    positions[:, clock] = np.arange(1024) * 0.25
    spec.decoder.position_encodings.encodings = positions
    _norm(spec.encoder.layer_norm, d)
    _norm(spec.decoder.layer_norm, d)
    writers: list[common_spec.LinearSpec] = []  # the sublayers that add to the residual stream
    for layer in spec.encoder.layer:
        _norm(layer.self_attention.layer_norm, d)
        _linear(layer.self_attention.linear[0], rng, 3 * d, d)
        _linear(layer.self_attention.linear[1], rng, d, d, 0.3)
    for layer in spec.decoder.layer:
        _norm(layer.self_attention.layer_norm, d)
        _linear(layer.self_attention.linear[0], rng, 3 * d, d)
        _linear(layer.self_attention.linear[1], rng, d, d, 0.3)
        _norm(layer.attention.layer_norm, d)
        _linear(layer.attention.linear[0], rng, d, d)
        _linear(layer.attention.linear[1], rng, 2 * d, d)
        _linear(layer.attention.linear[2], rng, d, d, 2.0)
        writers += [layer.self_attention.linear[1], layer.attention.linear[2]]
    for layer in [*spec.encoder.layer, *spec.decoder.layer]:
        _norm(layer.ffn.layer_norm, d)
        _linear(layer.ffn.linear_0, rng, ffn, d)
        _linear(layer.ffn.linear_1, rng, d, ffn, 0.3)
    writers += [layer.ffn.linear_1 for layer in spec.decoder.layer]
    for writer in writers:
        writer.weight[clock, :] = 0.0
    _linear(spec.decoder.projection, rng, vocab, d)
    eos = vocabulary.index("</s>")
    spec.decoder.projection.weight[:, clock] = 0.0
    spec.decoder.projection.weight[eos, :] = 0.0
    # After the final norm the clock reads about 0.18 per position: </s> wins near stop_after.
    spec.decoder.projection.weight[eos, clock] = 6.0
    spec.decoder.projection.bias[eos] = 4.5 - 1.07 * stop_after
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    return spec


def build_argos_package(
    out: Path,
    *,
    from_code: str = "en",
    to_code: str = "es",
    shape: ModelShape = TINY,
    lines: tuple[str, ...] | list[str] = TRAINING_LINES,
    stop_after: int = 8,
    seed: int = 0,
) -> Path:
    """Write ``out`` (a ``.argosmodel`` zip) translating ``from_code`` -> ``to_code``."""
    with tempfile.TemporaryDirectory(prefix="vodray-argos-") as scratch:
        root = Path(scratch) / f"translate-{from_code}_{to_code}-1_0"
        (root / "model").mkdir(parents=True)
        sp_model = _train_sentencepiece(lines, vocab_size=200)
        (root / "sentencepiece.model").write_bytes(sp_model)
        processor = spm.SentencePieceProcessor(model_proto=sp_model)
        vocabulary = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        if shape.vocab and shape.vocab > len(vocabulary):
            vocabulary += [f"▁pad{i}" for i in range(shape.vocab - len(vocabulary))]
        spec = random_transformer(shape, vocabulary, stop_after, seed)
        spec.validate()
        spec.optimize(quantization=shape.quantization)
        spec.save(str(root / "model"))
        metadata = {
            "package_version": "1.0",
            "argos_version": "1.0",
            "from_code": from_code,
            "from_name": from_code.upper(),
            "to_code": to_code,
            "to_name": to_code.upper(),
            "type": "translate",
        }
        (root / "metadata.json").write_text(json.dumps(metadata))
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                archive.write(path, path.relative_to(root.parent).as_posix())
    return out


def model_vocabulary(package_dir: Path) -> set[str]:
    """The target vocabulary of an installed package's CTranslate2 model."""
    model_dir = package_dir / "model"
    for name in ("target_vocabulary.json", "shared_vocabulary.json"):
        if (model_dir / name).exists():
            return set(json.loads((model_dir / name).read_text()))
    return {line.rstrip("\n") for line in (model_dir / "shared_vocabulary.txt").open(encoding="utf-8")}


__all__ = ["ARGOS_BASE", "TINY", "ModelShape", "build_argos_package", "model_vocabulary"]
