"""Translate one ready video's subtitles into one more language, when its owner asks (the watch
page's "Translate" button, ``POST /v1/videos/{id}/translations``).

The same path as the backfill, for one video: the original track's cues come from the catalog,
go through the node's translator actor (models loaded once), and the new track is published
whole or not at all (``pipelines.subtitles.publish``). It runs as a Ray task named
``translate:{vid}:{lang}``, so the API answers at once; the page watches the video's metadata
for the language, or for a warning saying why it did not come.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import ray

from cluster.errors import VodError
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines.subtitles.cues import Cue
from pipelines.subtitles.models import InstalledModel, route
from pipelines.subtitles.publish import add_published_track, record_warning
from pipelines.subtitles.record import SubtitleRecord, Track

log = logging.getLogger(__name__)


def reachable_languages(models: Sequence[InstalledModel]) -> dict[str, list[str]]:
    """Every language the installed models translate into, with the languages they start from
    (directly, or through English when X->en and en->Y are both installed)."""
    sources = {m.from_code for m in models} | {m.to_code for m in models}
    found: dict[str, list[str]] = {}
    for target in sorted({m.to_code for m in models}):
        found[target] = sorted(s for s in sources if s != target and route(models, s, target) is not None)
    return found


def source_for(record: SubtitleRecord, target: str, models: Sequence[InstalledModel]) -> str | None:
    """The language of an original (not translated) track with a model route to ``target``,
    English first; None if there is none."""
    originals = sorted(
        {t.lang for t in record.tracks if t.source != "translated"}, key=lambda c: (c != "en", c)
    )
    return next((lang for lang in originals if route(models, lang, target) is not None), None)


def translate_video(settings: Settings, catalog: Any, video_id: str, source: str, target: str) -> int:
    """Translate ``video_id``'s ``source`` cues into ``target`` and publish them; the cue count.
    Blocking (a Ray task, or a thread). ``catalog``: a ``catalog.client.CatalogClient``."""
    # Here, not at the top: the API imports this module to submit the task, and loads no CTranslate2.
    from pipelines.subtitles.translate import TranslatorClient, translator_for_node

    rows: list[Mapping[str, Any]] = catalog.get_cues.remote(video_id, source).result()
    cues = [Cue(round(row["start_s"] * 1000), round(row["end_s"] * 1000), row["text"]) for row in rows]
    client = TranslatorClient(translator_for_node(settings), settings.subtitles.translate_batch_cues)
    translated = client.translate_cues(cues, source, target)
    track = Track.translated(target, source, len(translated))
    add_published_track(Storage(settings.storage), catalog, video_id, track, translated)
    return len(translated)


@ray.remote(num_cpus=0, max_retries=0)
def translate_video_task(settings: Settings, catalog: Any, video_id: str, source: str, target: str) -> int:
    """``translate:{vid}:{lang}``. The translator actor does the work (and holds the CPU); this
    waits for it. A failure becomes a warning on the video the owner reads on its page."""
    try:
        return translate_video(settings, catalog, video_id, source, target)
    except Exception as exc:  # noqa: BLE001 - the owner must learn why, not find nothing
        log.warning("video %s: translating %s to %s failed", video_id, source, target, exc_info=True)
        reason = exc.detail if isinstance(exc, VodError) else "an internal error occurred"
        record_warning(catalog, video_id, f"translating the subtitles to {target} failed: {reason}")
        return 0


def submit_translation(settings: Settings, catalog: Any, video_id: str, source: str, target: str) -> Any:
    """Start ``translate:{vid}:{lang}``; answers its ObjectRef (the caller need not wait)."""
    task = translate_video_task.options(name=f"translate:{video_id}:{target}")
    return task.remote(settings, catalog, video_id, source, target)
