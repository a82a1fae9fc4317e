"""The subtitles step of a job: every text track and sidecar file -> one WebVTT per language,
then translations, and the record the video's metadata shows.

Subtitles never fail a video: an unreadable track, a missing model or a broken translation
becomes a skipped record, an unavailable language or a warning sentence, and the video is
published with whatever languages did work. One track per language is published: sidecar
files (sent on purpose) first, then embedded tracks in stream order; a later track of a
language already taken is reported in the warnings.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import layout
from cluster.errors import VodError
from cluster.settings import Settings, SubtitleSettings
from cluster.storage import Storage
from pipelines.failures import scrub
from pipelines.graph import TaskSpec
from pipelines.subtitles.cues import Cue, read_vtt, write_vtt
from pipelines.subtitles.languages import label_for, normalise_lang
from pipelines.subtitles.models import list_models
from pipelines.subtitles.models import route as route_models
from pipelines.subtitles.tracks import TrackResult, extract_tracks, normalise_file
from pipelines.video.ffmpeg import Source
from pipelines.video.plan import Plan

log = logging.getLogger(__name__)

SIDECAR_NAME = re.compile(r"(\d{2})\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)\.(srt|vtt|ass|ssa)")
"""``layout.sidecar_key``'s file name: ``03.fr.srt``."""
_INTERNAL = "an internal error occurred (the server log has the details)"


@dataclass
class SubtitleRecord:
    """What the metadata shows, and where each published language's WebVTT file is."""

    tracks: list[dict[str, Any]] = field(default_factory=list)
    """``{lang, label, source: embedded|sidecar|translated, origin, cues}`` per language."""
    unavailable: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """``{stream, codec, reason}`` per embedded track that cannot become text."""
    warnings: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "tracks": self.tracks,
            "unavailable": self.unavailable,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


def _reason(exc: BaseException) -> str:
    return exc.detail if isinstance(exc, VodError) else _INTERNAL


def _originals(
    src: Source,
    tracks: Sequence[tuple[int, str, str]],
    sidecars: Sequence[Path],
    out_dir: Path,
    settings: SubtitleSettings,
    duration_s: float | None,
    record: SubtitleRecord,
) -> None:
    results: list[tuple[str, TrackResult]] = []
    for path in sidecars:
        matched = SIDECAR_NAME.fullmatch(path.name)
        if matched is None:
            record.warnings.append(f"the sidecar subtitle file {path.name[:60]!r} has no language: skipped")
            continue
        lang = matched.group(2).lower()
        result = normalise_file(
            path,
            out_dir / f"sidecar-{matched.group(1)}.vtt",
            lang=lang,
            source=f"sidecar:{path.name}",
            settings=settings,
            duration_s=duration_s,
        )
        results.append(("sidecar", result))
    codecs = {f"stream:{index}": codec for index, codec, _ in tracks}
    for result in extract_tracks(src, tracks, out_dir / "embedded", settings, duration_s):
        results.append(("embedded", result))
    for kind, result in results:
        what = f"subtitle {result.source.replace(':', ' ', 1)}"
        if result.status != "ok":
            # ffmpeg's words may name the scratch files: scrubbed like a failed job's reason.
            reason = scrub("; ".join(result.warnings)) or "it cannot be read"
            if kind == "embedded":
                stream = int(result.source.split(":")[1])
                record.skipped.append(
                    {"stream": stream, "codec": codecs.get(result.source), "reason": reason}
                )
            record.warnings.append(f"{what} was skipped: {reason}")
            continue
        if not result.cues:
            record.warnings.append(f"{what} has no readable cue: skipped")
            continue
        if result.lang in record.files:
            record.warnings.append(f"{what} is a second {result.lang} track: only the first one is published")
            continue
        record.warnings += [f"{what}: {warning}" for warning in result.warnings]
        record.files[result.lang] = Path(str(result.vtt))
        record.tracks.append(
            {
                "lang": result.lang,
                "label": label_for(result.lang),
                "source": kind,
                "origin": result.source,
                "cues": result.cues,
            }
        )


def _translations(
    translator: Callable[[], Any],
    models_dir: Path,
    targets: Sequence[str],
    out_dir: Path,
    record: SubtitleRecord,
) -> None:
    originals = list(record.tracks)
    models = list_models(models_dir)
    client = None
    for target in targets:
        if target in record.files:
            continue  # the upload carries it already
        # The translator runs on this node and reads the same models: a language no model
        # reaches is known without starting it.
        route = next((t for t in originals if route_models(models, t["lang"], target) is not None), None)
        if route is None:
            record.unavailable.append(target)
            continue
        try:
            client = client or translator()
            cues = read_vtt(record.files[route["lang"]])
            translated = client.translate_cues(cues, route["lang"], target)
        except Exception as exc:  # noqa: BLE001 - a translation must never fail the video
            log.warning("translating subtitles to %s failed", target, exc_info=True)
            record.warnings.append(f"translating the subtitles to {target} failed: {_reason(exc)}")
            continue
        record.files[target] = write_vtt(translated, out_dir / "translated" / f"{target}.vtt")
        record.tracks.append(
            {
                "lang": target,
                "label": label_for(target),
                "source": "translated",
                "origin": route["lang"],
                "cues": len(translated),
            }
        )


def make_subtitles(
    src: Source,
    tracks: Sequence[tuple[int, str, str]],
    sidecars: Sequence[Path],
    out_dir: Path,
    settings: SubtitleSettings,
    *,
    targets: Sequence[str],
    translator: Callable[[], Any],
    duration_s: float | None = None,
) -> SubtitleRecord:
    """Every subtitle language of a video as WebVTT files under ``out_dir``, and its record.

    ``tracks``: ``MediaInfo.subtitle_tracks``; ``sidecars``: local copies of the sidecar files
    (named as ``layout.sidecar_key`` names them); ``translator()`` returns a
    ``TranslatorClient`` (or a ``CueTranslator``), called only if there is something to translate.
    """
    record = SubtitleRecord()
    try:
        _originals(src, tracks, sidecars, out_dir, settings, duration_s, record)
    except Exception as exc:  # noqa: BLE001 - subtitles must never fail the video
        log.warning("reading the subtitles failed", exc_info=True)
        record.warnings.append(f"reading the subtitles failed: {_reason(exc)}")
    _translations(translator, settings.models_dir, [normalise_lang(t) for t in targets], out_dir, record)
    return record


def cue_rows(cues: Sequence[Cue]) -> list[dict[str, Any]]:
    """Cues as the catalog's ``put_cues`` takes them."""
    return [{"start_s": c.start_ms / 1000, "end_s": c.end_ms / 1000, "text": c.text} for c in cues]


def catalog_tracks(video_id: str, record: dict[str, Any], cues: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """``put_many_cues`` tracks: ``(video_id, lang, source_lang, cues)`` per published language."""
    return [
        (
            video_id,
            track["lang"],
            track["origin"] if track["source"] == "translated" else track["lang"],
            cues.get(track["lang"], []),
        )
        for track in record.get("tracks", [])
    ]


def translate_targets(video: Mapping[str, Any], settings: SubtitleSettings) -> tuple[str, ...]:
    """The configured languages, then those the upload asked for (``translate_to``), each once."""
    asked = video.get("translate_to") or []
    if isinstance(asked, str):
        asked = json.loads(asked)
    return tuple(dict.fromkeys([*settings.translate_to, *asked]))


def published_record(record: Mapping[str, Any] | None, warnings: Sequence[str]) -> dict[str, Any]:
    """The record the metadata shows: the step's (or an empty one if it failed), plus
    ``warnings`` from later steps. Warnings from packaging mean no track was published."""
    found = dict(record or {})
    result = {key: list(found.get(key, [])) for key in ("tracks", "unavailable", "skipped", "warnings")}
    if warnings:
        result["tracks"] = []
        result["warnings"] += warnings
    return result


def _translator(settings: Settings) -> Callable[[], Any]:
    def start() -> Any:
        # Imported here: CTranslate2 loads only where something is translated.
        from pipelines.subtitles.translate import TranslatorClient, translator_for_node

        return TranslatorClient(translator_for_node(settings), settings.subtitles.translate_batch_cues)

    return start


def run_step(
    storage: Storage, plan: Plan, spec: TaskSpec, settings: Settings, video_id: str, src: Source
) -> dict[str, Any]:
    """The ``subtitles:{vid}`` task's work: read the sidecars, extract and translate, put every
    language's WebVTT in the work dir, then the record (last: it marks the step done).

    Returns ``{"subtitles": record, "cues": {lang: rows}}`` for the job."""
    assert spec.subtitles is not None
    work = layout.work_prefix(video_id, plan.plan_id)
    with tempfile.TemporaryDirectory(prefix="vodray-sub-") as tmp:
        root = Path(tmp)
        sidecars = []
        for key in storage.list(layout.sidecar_prefix(video_id)):
            local = root / "sidecars" / key.rsplit("/", 1)[-1]
            local.parent.mkdir(exist_ok=True)
            storage.get_file(key, local)
            sidecars.append(local)
        made = make_subtitles(
            src,
            spec.subtitles.tracks,
            sidecars,
            root / "out",
            settings.subtitles,
            targets=spec.subtitles.translate_to,
            translator=_translator(settings),
            duration_s=plan.duration_s,
        )
        storage.put_many([(path, layout.subtitle_work_key(work, lang)) for lang, path in made.files.items()])
        # The sidecars read: one posted after this list is published once the video is ready.
        record = made.as_json() | {"sidecars": sorted(p.name for p in sidecars)}
        storage.write_bytes(spec.output, json.dumps(record).encode())
        cues = {lang: cue_rows(read_vtt(path)) for lang, path in made.files.items()}
    return {"subtitles": record, "cues": cues}


def reuse_step(storage: Storage, plan: Plan, spec: TaskSpec, video_id: str) -> dict[str, Any]:
    """What ``run_step`` returned, from the files an earlier run of the same plan left."""
    work = layout.work_prefix(video_id, plan.plan_id)
    record = json.loads(storage.read_bytes(spec.output))
    with tempfile.TemporaryDirectory(prefix="vodray-sub-") as tmp:
        cues = {}
        for track in record["tracks"]:
            local = Path(tmp) / f"{track['lang']}.vtt"
            storage.get_file(layout.subtitle_work_key(work, track["lang"]), local)
            cues[track["lang"]] = cue_rows(read_vtt(local))
    return {"subtitles": record, "cues": cues}
