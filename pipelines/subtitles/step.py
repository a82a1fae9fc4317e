"""The subtitles step of a job: every text track and sidecar file -> one WebVTT per language,
then translations, and the record the video's metadata shows.

Subtitles never fail a video: an unreadable track, a missing model or a broken translation
becomes a skipped record, an unavailable language or a warning sentence, and the video is
published with whatever languages did work. One track per language is published: sidecar
files (sent on purpose) first, then embedded tracks in stream order; a later track of a
language already taken is reported in the warnings. Every track is checked against the
catalog's rule for cues (``catalog.validation.check_cues``) before it is kept, so a track the
catalog would refuse is dropped with a warning here, never published without its cues.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from catalog.validation import check_cues
from cluster import layout
from cluster.errors import NotFound, VodError
from cluster.scratch import scratch_dir
from cluster.settings import Settings, SubtitleSettings
from cluster.storage import Storage
from pipelines.failures import scrub
from pipelines.graph import TaskSpec
from pipelines.subtitles.cues import Cue, read_vtt, write_vtt
from pipelines.subtitles.languages import normalise_lang
from pipelines.subtitles.models import list_models
from pipelines.subtitles.models import route as route_models
from pipelines.subtitles.record import SIDECAR_NAME, Skipped, SubtitleRecord, Track
from pipelines.subtitles.tracks import TrackResult, extract_tracks, normalise_file
from pipelines.video.ffmpeg import Source
from pipelines.video.plan import Plan

log = logging.getLogger(__name__)

_INTERNAL = "an internal error occurred (the server log has the details)"
CueRows = list[dict[str, Any]]
"""Cues as the catalog's ``put_cues`` takes them: ``{"start_s", "end_s", "text"}`` each."""


@dataclass
class _Found:
    """What the step has found so far; ``made`` turns it into the record."""

    tracks: list[Track] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def keep(self, track: Track, cues: Sequence[Cue], vtt: Path, what: str) -> bool:
        """Keep ``track`` if the catalog would take its cues; else a warning naming it."""
        try:
            check_cues(cue_rows(cues))
        except VodError as exc:
            self.warnings.append(f"{what} was not published: {exc.detail}")
            return False
        self.tracks.append(track)
        self.files[track.lang] = vtt
        return True


@dataclass(frozen=True)
class MadeSubtitles:
    record: SubtitleRecord
    files: dict[str, Path]
    """Language -> its WebVTT file, for every published track."""


def _reason(exc: BaseException) -> str:
    return exc.detail if isinstance(exc, VodError) else _INTERNAL


def _originals(
    src: Source,
    tracks: Sequence[tuple[int, str, str]],
    sidecars: Sequence[Path],
    out_dir: Path,
    settings: SubtitleSettings,
    duration_s: float | None,
    found: _Found,
) -> None:
    results: list[tuple[str, TrackResult]] = []
    for path in sidecars:
        matched = SIDECAR_NAME.fullmatch(path.name)
        if matched is None:
            found.warnings.append(f"the sidecar subtitle file {path.name[:60]!r} has no language: skipped")
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
                found.skipped.append(Skipped(_stream(result), codecs.get(result.source), reason))
            found.warnings.append(f"{what} was skipped: {reason}")
            continue
        if not result.cues:
            found.warnings.append(f"{what} has no readable cue: skipped")
            continue
        if result.lang in found.files:
            found.warnings.append(f"{what} is a second {result.lang} track: only the first one is published")
            continue
        vtt = Path(str(result.vtt))
        if kind == "sidecar":
            track = Track.sidecar(result.lang, result.source.removeprefix("sidecar:"), result.cues)
        else:
            track = Track.embedded(result.lang, _stream(result), result.cues)
        if found.keep(track, read_vtt(vtt), vtt, what):
            found.warnings += [f"{what}: {warning}" for warning in result.warnings]


def _stream(result: TrackResult) -> int:
    return int(result.source.removeprefix("stream:"))


def _translations(
    translator: Callable[[], Any],
    models_dir: Path,
    targets: Sequence[str],
    out_dir: Path,
    found: _Found,
) -> None:
    originals = list(found.tracks)
    models = list_models(models_dir)
    client = None
    for target in targets:
        if target in found.files:
            continue  # the upload carries it already
        # The translator runs on this node and reads the same models: a language no model
        # reaches is known without starting it.
        route = next((t for t in originals if route_models(models, t.lang, target) is not None), None)
        if route is None:
            found.unavailable.append(target)
            continue
        try:
            client = client or translator()
            translated = client.translate_cues(read_vtt(found.files[route.lang]), route.lang, target)
        except Exception as exc:  # noqa: BLE001 - a translation must never fail the video
            log.warning("translating subtitles to %s failed", target, exc_info=True)
            found.warnings.append(f"translating the subtitles to {target} failed: {_reason(exc)}")
            continue
        vtt = write_vtt(translated, out_dir / "translated" / f"{target}.vtt")
        found.keep(
            Track.translated(target, route.lang, len(translated)),
            translated,
            vtt,
            f"the {target} translation",
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
) -> MadeSubtitles:
    """Every subtitle language of a video as WebVTT files under ``out_dir``, and its record.

    ``tracks``: ``MediaInfo.subtitle_tracks``; ``sidecars``: local copies of the sidecar files
    (named as ``layout.sidecar_key`` names them); ``translator()`` returns a
    ``TranslatorClient`` (or a ``CueTranslator``), called only if there is something to translate.
    """
    found = _Found()
    try:
        _originals(src, tracks, sidecars, out_dir, settings, duration_s, found)
    except Exception as exc:  # noqa: BLE001 - subtitles must never fail the video
        log.warning("reading the subtitles failed", exc_info=True)
        found.warnings.append(f"reading the subtitles failed: {_reason(exc)}")
    _translations(translator, settings.models_dir, [normalise_lang(t) for t in targets], out_dir, found)
    record = SubtitleRecord(
        tracks=tuple(found.tracks),
        unavailable=tuple(found.unavailable),
        skipped=tuple(found.skipped),
        warnings=tuple(found.warnings),
    )
    return MadeSubtitles(record, dict(found.files))


def cue_rows(cues: Sequence[Cue]) -> CueRows:
    """Cues as the catalog's ``put_cues`` takes them."""
    return [{"start_s": c.start_ms / 1000, "end_s": c.end_ms / 1000, "text": c.text} for c in cues]


def catalog_tracks(
    video_id: str, record: SubtitleRecord, cues: Mapping[str, CueRows]
) -> list[tuple[str, str, str, CueRows]]:
    """``put_many_cues`` tracks: ``(video_id, lang, source_lang, cues)`` per published language."""
    return [(video_id, t.lang, t.source_lang, list(cues.get(t.lang, []))) for t in record.tracks]


def translate_targets(video: Mapping[str, Any], settings: SubtitleSettings) -> tuple[str, ...]:
    """The configured languages, then those the upload asked for (``translate_to``), each once."""
    return tuple(dict.fromkeys([*settings.translate_to, *(video.get("translate_to") or [])]))


def _translator(settings: Settings) -> Callable[[], Any]:
    def start() -> Any:
        # Imported here: CTranslate2 loads only where something is translated.
        from pipelines.subtitles.translate import TranslatorClient, translator_for_node

        return TranslatorClient(translator_for_node(settings), settings.subtitles.translate_batch_cues)

    return start


def _fetch_sidecars(storage: Storage, video_id: str, folder: Path) -> list[Path]:
    """Local copies of the video's sidecar files; one removed meanwhile (replaced by a newer
    one of its language) is passed over."""
    folder.mkdir(parents=True, exist_ok=True)
    found = []
    for key in storage.list(layout.sidecar_prefix(video_id)):
        local = folder / key.rsplit("/", 1)[-1]
        try:
            storage.get_file(key, local)
        except NotFound:
            continue
        found.append(local)
    return found


def run_step(
    storage: Storage, plan: Plan, spec: TaskSpec, settings: Settings, video_id: str, src: Source
) -> dict[str, Any]:
    """The ``subtitles:{vid}`` task's work: read the sidecars, extract and translate, put every
    language's WebVTT in the work dir, then the record (last: it marks the step done).

    Returns ``{"subtitles": record JSON, "cues": {lang: rows}}`` for the job."""
    assert spec.subtitles is not None
    work = layout.work_prefix(video_id, plan.plan_id)
    with scratch_dir("sub") as tmp:
        root = Path(tmp)
        sidecars = _fetch_sidecars(storage, video_id, root / "sidecars")
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
        record = replace(made.record, sidecars=tuple(sorted(p.name for p in sidecars)))
        storage.write_bytes(spec.output, json.dumps(record.to_json()).encode())
        cues = {lang: cue_rows(read_vtt(path)) for lang, path in made.files.items()}
    return {"subtitles": record.to_json(), "cues": cues}


def reuse_step(storage: Storage, plan: Plan, spec: TaskSpec, video_id: str) -> dict[str, Any]:
    """What ``run_step`` returned, from the files an earlier run of the same plan left."""
    work = layout.work_prefix(video_id, plan.plan_id)
    record = SubtitleRecord.from_json(storage.read_bytes(spec.output))
    with scratch_dir("sub") as tmp:
        cues = {}
        for track in record.tracks:
            local = Path(tmp) / f"{track.lang}.vtt"
            storage.get_file(layout.subtitle_work_key(work, track.lang), local)
            cues[track.lang] = cue_rows(read_vtt(local))
    return {"subtitles": record.to_json(), "cues": cues}
