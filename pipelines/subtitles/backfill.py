"""Backfills over the catalog with Ray Data: translate every ready video into a new language.

From a notebook (with vodray running, or ``address=`` in ``VODRAY_RAY_ADDRESS``)::

    from cluster.settings import load_settings
    from pipelines.subtitles.backfill import backfill_translations

    summary = backfill_translations(load_settings(), "de")

or ``vodray backfill translate --lang de``. Every ready video with cues and no ``de`` track
has the cues of its original track read from the catalog; Ray Data translates them in batches
(``map_batches`` over an autoscaling pool of translator actors, each keeping its models
loaded, with Ray Data's progress bar); then, video by video (a tqdm bar), the WebVTT file and
both manifests are published (``pipelines.subtitles.manifests``), the translated cues go to the
catalog (searchable at once) and the track joins the video's subtitle record.

Safe to re-run: a video that has ``de`` cues already is skipped, and the cues are put last,
so a video interrupted half-way is done again on the next run.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cluster.errors import BadRequest, VodError
from cluster.settings import Settings, parse_languages
from cluster.storage import Storage
from pipelines.subtitles.cues import Cue
from pipelines.subtitles.models import list_models, route
from pipelines.subtitles.publish import add_published_track
from pipelines.subtitles.record import Track
from pipelines.subtitles.translate import CueTranslator

log = logging.getLogger(__name__)


@dataclass
class BackfillSummary:
    lang: str
    translated: list[str] = field(default_factory=list)
    """Videos that got the language in this run."""
    skipped: list[str] = field(default_factory=list)
    """Videos that had it already."""
    unavailable: list[str] = field(default_factory=list)
    """Videos whose original languages no installed model reaches."""
    failed: dict[str, str] = field(default_factory=dict)
    """Videos whose track could not be published, with the reason (the next run tries again)."""
    cues: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        text = (
            f"{self.lang}: {len(self.translated)} video(s) translated ({self.cues} cues),"
            f" {len(self.skipped)} skipped (already there), {len(self.unavailable)} without a model route,"
            f" in {self.seconds:.1f} s"
        )
        if self.failed:
            first, reason = next(iter(self.failed.items()))
            text += f"; {len(self.failed)} failed (video {first}: {reason})"
        return text


class TranslateBatch:
    """The ``map_batches`` callable: one per Ray Data actor, its models loaded once."""

    def __init__(self, models_dir: str, target: str, batch_cues: int, beam: int) -> None:
        self._translator = CueTranslator(Path(models_dir), batch_cues=batch_cues, beam=beam, threads=1)
        self._target = target

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = batch["text"]
        out = np.empty(len(texts), dtype=object)
        for source in np.unique(batch["source_lang"]):  # a batch may span videos of several languages
            rows = np.flatnonzero(batch["source_lang"] == source)
            translated = self._translator.translate_texts(
                [str(t) for t in texts[rows]], str(source), self._target
            )
            out[rows] = [
                text or str(original) for text, original in zip(translated, texts[rows], strict=True)
            ]
        return {"video_id": batch["video_id"], "idx": batch["idx"], "text": out}


def backfill_translations(settings: Settings, lang: str, *, progress: bool = True) -> BackfillSummary:
    """Translate every ready video's cues into ``lang``; see the module's docstring."""
    from catalog.actor import get_catalog, start_catalog
    from cluster.runtime import connect

    target = _one_language(lang)
    models = list_models(settings.subtitles.models_dir)
    if not any(model.to_code == target for model in models):
        raise BadRequest(
            f"no installed translation model translates to {target!r}"
            f" (in {settings.subtitles.models_dir}; install one with `vodray models install PATH|URL`)"
        )
    started = time.perf_counter()
    connect(settings)
    start_catalog(settings)
    catalog = get_catalog(settings)  # its calls are retried while the catalog restarts
    summary = BackfillSummary(target)
    sources: dict[str, str] = {}
    found: dict[str, dict[str, str]] = dict(catalog.cue_languages.remote().result())
    for video_id, languages in sorted(found.items()):
        if target in languages:
            summary.skipped.append(video_id)
            continue
        source = _source_language(languages, target, models)
        if source is None:
            summary.unavailable.append(video_id)
        else:
            sources[video_id] = source
    if sources:
        originals: dict[str, list[dict[str, Any]]] = {
            vid: catalog.get_cues.remote(vid, src).result() for vid, src in sources.items()
        }
        translated = _translate(settings, target, sources, originals, progress)
        storage = Storage(settings.storage)
        for video_id in _bar(sorted(translated), progress, f"publishing {target}"):
            cues = [
                Cue(round(cue["start_s"] * 1000), round(cue["end_s"] * 1000), text)
                for cue, text in zip(originals[video_id], translated[video_id], strict=True)
            ]
            try:
                publish_translation(storage, catalog, video_id, sources[video_id], target, cues)
            except VodError as exc:  # one video's published files gone or refused: the others go on
                log.warning("backfill %s: video %s not published: %s", target, video_id, exc.detail)
                summary.failed[video_id] = exc.detail
                continue
            summary.translated.append(video_id)
            summary.cues += len(cues)
    summary.seconds = time.perf_counter() - started
    log.info("backfill %s", summary)
    return summary


def _one_language(lang: str) -> str:
    try:
        codes = parse_languages(lang)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if len(codes) != 1:
        raise BadRequest(f"give one language code like de or fr, not {lang[:20]!r}")
    return codes[0]


def _source_language(languages: Mapping[str, str], target: str, models: Sequence[Any]) -> str | None:
    """An original track (``lang == source_lang``) with a model route to ``target``, English first."""
    originals = sorted(lang for lang, source in languages.items() if lang == source)
    for lang in sorted(originals, key=lambda code: code != "en"):
        if route(models, lang, target) is not None:
            return lang
    return None


def _translate(
    settings: Settings,
    target: str,
    sources: Mapping[str, str],
    originals: Mapping[str, list[dict[str, Any]]],
    progress: bool,
) -> dict[str, list[str]]:
    """Every video's cue texts in ``target``, in cue order, through Ray Data translator actors."""
    import ray
    import ray.data

    subtitles = settings.subtitles
    rows = [
        {"video_id": vid, "source_lang": sources[vid], "idx": cue["idx"], "text": cue["text"]}
        for vid in sorted(sources)
        for cue in originals[vid]
    ]
    ray.data.DataContext.get_current().enable_progress_bars = progress
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    dataset = ray.data.from_items(rows).map_batches(
        TranslateBatch,
        fn_constructor_kwargs={
            "models_dir": str(subtitles.models_dir),
            "target": target,
            "batch_cues": subtitles.translate_batch_cues,
            "beam": subtitles.translate_beam,
        },
        batch_size=subtitles.translate_batch_cues,
        batch_format="numpy",
        concurrency=(1, min(cpus, max(1, len(rows) // subtitles.translate_batch_cues))),
        num_cpus=1,
    )
    found: dict[str, dict[int, str]] = defaultdict(dict)
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for vid, idx, text in zip(batch["video_id"], batch["idx"], batch["text"], strict=True):
            found[str(vid)][int(idx)] = str(text)
    return {vid: [found[vid][cue["idx"]] for cue in originals[vid]] for vid in sources}


def publish_translation(
    storage: Storage, catalog: Any, video_id: str, source: str, target: str, cues: Sequence[Cue]
) -> None:
    """The track, all or nothing, under the video's lease (``pipelines.subtitles.publish``):
    checked, its WebVTT and both manifests, then its record and cues in one transaction (the
    cues are what a re-run checks)."""
    add_published_track(storage, catalog, video_id, Track.translated(target, source, len(cues)), cues)


def _bar(items: Sequence[str], progress: bool, description: str) -> Any:
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, unit="video")
