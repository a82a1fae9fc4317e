"""Offline translation of subtitle cues with Argos Translate models, in CTranslate2 batches.

Models are ``.argosmodel`` packages installed by ``vodray models install``
(``pipelines.subtitles.models``; nothing is downloaded while a job runs). A video's cues go through
``ctranslate2.Translator.translate_batch`` with the package's own sentencepiece tokenizer
(argostranslate's ``SentencePieceTokenizer``): one call for many cues, instead of
argostranslate's ``translate()`` per line, which also re-splits sentences. One cue in is one
cue out with the same timings. Where only X->en and en->Y exist, cues pivot through English;
a pair with no route is reported unavailable, not as a failure.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ctranslate2
from argostranslate.tokenizer import SentencePieceTokenizer

from cluster.errors import BadRequest
from cluster.settings import Settings, SubtitleSettings
from pipelines.subtitles.cues import Cue, fit_text
from pipelines.subtitles.models import InstalledModel, list_models, route
from pipelines.subtitles.translate_cpu import translation_cpu

log = logging.getLogger(__name__)

# Decoding as argostranslate does (its length penalty; beam 4 by default), so that at the same
# beam the output is argostranslate's.
DECODING: dict[str, Any] = {"length_penalty": 0.2, "replace_unknowns": True}
ARGOS_BEAM = 4
MAX_TOKENS = 256
"""Longest input of one cue, and longest output whatever the input (CTranslate2's default)."""


def decoding_bound(source_tokens: int) -> int:
    """Most tokens decoded for a source of ``source_tokens``: ``2n + 16``, at most ``MAX_TOKENS``.

    A subtitle line is short (two lines of about 42 characters, rarely 30 tokens) and its
    translation about as long; even a short line that grows ("Oh." -> "¡Ay, Dios mío!") stays
    inside 2n + 16. A model that degenerates into a loop ("no no no ...") would otherwise
    decode to 256 tokens with every beam, holding the whole batch it is in.
    """
    return min(MAX_TOKENS, 2 * source_tokens + 16)


def worker_threads(threads: int) -> int:
    """CTranslate2 workers for ``threads`` (0: one per CPU of this node)."""
    return threads or os.cpu_count() or 1


class _LoadedModel:
    def __init__(self, model: InstalledModel, threads: int) -> None:
        # One worker per core, each translating a whole batch on its core (intra_threads=1):
        # batches run side by side, and no step waits for threads to split a small matrix.
        self.translator = ctranslate2.Translator(
            str(model.path / "model"), device="cpu", inter_threads=threads, intra_threads=1
        )
        self.tokenizer = SentencePieceTokenizer(model.path / "sentencepiece.model")
        self.target_prefix = str(
            json.loads((model.path / "metadata.json").read_text()).get("target_prefix", "")
        )


def translation_setup(batch_cues: int, beam: int, threads: int) -> str:
    """What ``vodray models list`` and the translator's log say about how cues are translated."""
    return (
        f"beam {beam}, batches of {batch_cues} cues on {worker_threads(threads)} worker(s) x 1 thread;"
        f" {translation_cpu()}"
    )


def length_batches(lengths: Sequence[int], batch: int) -> list[list[int]]:
    """Indexes of ``lengths`` in batches of at most ``batch``, shortest first: a batch holds
    lines of about one length, so little padding is decoded and the bound fits every line."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch] for i in range(0, len(order), batch)]


class CueTranslator:
    """Translates cues with the installed models; each model is loaded once, on first use."""

    def __init__(
        self,
        models_dir: Path,
        *,
        batch_cues: int = SubtitleSettings.translate_batch_cues,
        beam: int = ARGOS_BEAM,
        threads: int = 0,
    ) -> None:
        self.models_dir = models_dir
        self.batch_cues = batch_cues
        self.beam = beam
        self.threads = worker_threads(threads)
        self.bounded = 0
        """Lines whose translation was cut at ``decoding_bound`` (a runaway decode), so far."""
        self._models = list_models(models_dir)
        self._loaded: dict[str, _LoadedModel] = {}
        self._lock = threading.Lock()

    def _route(self, source: str, target: str) -> list[InstalledModel] | None:
        if source == target:
            return []
        found = route(self._models, source, target)
        if found is None:  # installed since this translator started? (`vodray models install`)
            self._models = list_models(self.models_dir)
            found = route(self._models, source, target)
        return found

    def available(self, source: str, target: str) -> bool:
        return self._route(source, target) is not None

    def loaded_pairs(self) -> list[str]:
        return sorted(self._loaded)

    def _load(self, model: InstalledModel) -> _LoadedModel:
        with self._lock:
            if model.pair not in self._loaded:
                self._loaded[model.pair] = _LoadedModel(model, self.threads)
                log.info("translation model %s loaded: %s", model.pair, self.describe(model.pair))
            return self._loaded[model.pair]

    def describe(self, pair: str) -> str:
        """How the loaded ``pair`` translates here: compute type, settings, backend and CPU."""
        compute_type = self._loaded[pair].translator.compute_type
        return f"{compute_type}, {translation_setup(self.batch_cues, self.beam, self.threads)}"

    def _translate_with(self, model: InstalledModel, texts: list[str]) -> list[str]:
        loaded = self._load(model)
        # A cue's line breaks are layout, not sentences: translate the cue as one line. Films
        # repeat short lines ("Yes.", "What?"): each distinct line is translated once.
        lines = [" ".join(text.split()) for text in texts]
        distinct = list(dict.fromkeys(lines))
        tokens = [loaded.tokenizer.encode(line)[:MAX_TOKENS] for line in distinct]
        prefix = [loaded.target_prefix] if loaded.target_prefix else []
        # Every batch is submitted before any is awaited, so the workers translate them side by side.
        pending = []
        for batch in length_batches([len(t) for t in tokens], self.batch_cues):
            bound = decoding_bound(max(len(tokens[i]) for i in batch)) + len(prefix)
            results = loaded.translator.translate_batch(
                [tokens[i] for i in batch],
                target_prefix=[prefix for _ in batch] if prefix else None,
                beam_size=self.beam,
                max_decoding_length=bound,
                asynchronous=True,
                **DECODING,
            )
            pending.append((batch, bound, results))
        translated: dict[str, str] = {}
        for batch, bound, results in pending:
            for i, result in zip(batch, results, strict=True):
                hypothesis = result.result().hypotheses[0]
                self.bounded += len(hypothesis) >= bound
                text = loaded.tokenizer.decode(hypothesis).strip()
                if loaded.target_prefix and text.startswith(loaded.target_prefix):
                    text = text[len(loaded.target_prefix) :].strip()
                translated[distinct[i]] = text
        return [translated[line] for line in lines]

    def translate_texts(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """One output per input, in order; raises ``BadRequest`` if no model route exists."""
        steps = self._route(source, target)
        if steps is None:
            raise BadRequest(f"no translation model from {source} to {target} is installed")
        current = list(texts)
        for model in steps:
            current = self._translate_with(model, current)
        return current

    def translate_cues(self, cues: Sequence[Cue], source: str, target: str) -> list[Cue]:
        """The same cues, same timings, text translated (cut to the catalog's limit, ``fit_text``);
        a cue that comes out empty keeps its source text."""
        texts = self.translate_texts([cue.text for cue in cues], source, target)
        return [
            Cue(cue.start_ms, cue.end_ms, fit_text(text or cue.text))
            for cue, text in zip(cues, texts, strict=True)
        ]


# --- one translator per node (Ray) --------------------------------------------------------


class TranslatorService:
    """The body of the per-node translator actor: a ``CueTranslator`` whose models stay loaded."""

    def __init__(self, models_dir: str, batch_cues: int, beam: int = ARGOS_BEAM, threads: int = 0) -> None:
        self._translator = CueTranslator(Path(models_dir), batch_cues=batch_cues, beam=beam, threads=threads)

    def available(self, source: str, target: str) -> bool:
        return self._translator.available(source, target)

    def translate_cues(self, cues: list[Cue], source: str, target: str) -> list[Cue]:
        return self._translator.translate_cues(cues, source, target)

    def loaded_pairs(self) -> list[str]:
        return self._translator.loaded_pairs()


def translator_for_node(settings: Settings, node_id: str | None = None) -> Any:
    """The translator actor of ``node_id`` (default: this node), started on first use.

    Named per node and detached, so every task on a node shares one copy of each model
    across jobs. No CPU is reserved: an idle translator must not keep a CPU from encoding.
    It runs ``VODRAY_TRANSLATE_THREADS`` workers (default: one per CPU of the node, the CPUs
    CTranslate2 and argostranslate take by default); two calls run at once, so a chunk's
    batches are queued while the last ones of the chunk before it finish.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node_id = node_id or ray.get_runtime_context().get_node_id()
    actor = ray.remote(TranslatorService)
    return actor.options(
        num_cpus=0,
        max_concurrency=2,
        name=f"translator:{node_id}",
        namespace=settings.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote(
        str(settings.subtitles.models_dir),
        settings.subtitles.translate_batch_cues,
        settings.subtitles.translate_beam,
        settings.subtitles.translate_threads,
    )


CHUNK_BATCHES = 8
"""Batches per call to the actor: enough to sort by length and keep every worker busy."""


class TranslatorClient:
    """A node's translator actor as the subtitles step uses it: a video's cues go in chunks of
    ``CHUNK_BATCHES`` batches, all submitted at once so the actor never waits for the caller.
    The actor sorts a chunk's lines by length and its workers translate the batches side by side."""

    def __init__(self, handle: Any, batch_cues: int) -> None:
        self._handle = handle
        self._batch = batch_cues * CHUNK_BATCHES

    def available(self, source: str, target: str) -> bool:
        import ray

        return bool(ray.get(self._handle.available.remote(source, target)))

    def translate_cues(self, cues: Sequence[Cue], source: str, target: str) -> list[Cue]:
        import ray

        batches = [list(cues[i : i + self._batch]) for i in range(0, len(cues), self._batch)]
        refs = [self._handle.translate_cues.remote(batch, source, target) for batch in batches]
        return [cue for batch in ray.get(refs) for cue in batch]
