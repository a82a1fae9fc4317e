"""Adding one subtitle track to a video that is already published, one writer at a time.

A track added late (a sidecar posted to a ready video, a sidecar posted while the job ran, a
backfilled translation) changes three things that must move together: the published files and
manifests (``pipelines.subtitles.manifests``), the video's subtitle record (``videos.subtitles``:
``{"tracks", "unavailable", "skipped", "warnings"}``, first written by the job) and its cues in
the catalog. Each is a read-modify-write, so two writers at once (two API replicas, the
dispatcher, a backfill) could each drop the other's language. ``video_lease`` makes them take
turns, through a lease held by the catalog actor (``catalog.leases``), the one process they all
reach.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from cluster import layout
from cluster.errors import NotFound, Unavailable, VodError
from cluster.settings import SubtitleSettings
from cluster.storage import Storage
from pipelines.subtitles.cues import Cue, normalise, write_vtt
from pipelines.subtitles.languages import label_for
from pipelines.subtitles.manifests import publish_subtitle_tracks
from pipelines.subtitles.step import SIDECAR_NAME, cue_rows

log = logging.getLogger(__name__)

LEASE_TTL_S = 60.0
"""How long a writer may hold a video's lease: a crashed one blocks the video no longer."""
LEASE_WAIT_S = 30.0
"""How long a writer waits for another one to finish before giving up (503)."""
_RETRY_FIRST_S, _RETRY_MAX_S = 0.02, 0.5


def _wait(ref: Any) -> Any:
    """The value of a catalog call, blocking this thread. These functions run in worker threads
    of async actors (the API replica, the dispatcher) as well as in drivers: ``ray.get`` there
    warns that it blocks the event loop, which it does not from another thread."""
    return ref.future().result()


def record_with_track(record: Any, track: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` (JSON text, a dict or None) with ``track`` added, replacing one of the same
    language, which is no longer listed as unavailable."""
    found = json.loads(record) if isinstance(record, str) else dict(record or {})
    lang = track["lang"]
    return {
        "tracks": [t for t in found.get("tracks", []) if t.get("lang") != lang] + [dict(track)],
        "unavailable": [code for code in found.get("unavailable", []) if code != lang],
        "skipped": list(found.get("skipped", [])),
        "warnings": list(found.get("warnings", [])),
    }


@contextlib.contextmanager
def video_lease(catalog: Any, video_id: str, *, wait_s: float = LEASE_WAIT_S) -> Iterator[None]:
    """Hold the lease on changing ``video_id``'s published tracks; blocking (run it in a thread).

    Raises ``Unavailable`` if another writer holds it for more than ``wait_s``."""
    name, holder = f"subtitles:{video_id}", uuid.uuid4().hex
    deadline, pause = time.monotonic() + wait_s, _RETRY_FIRST_S
    while not _wait(catalog.acquire_lease.remote(name, holder, LEASE_TTL_S)):
        if time.monotonic() > deadline:
            raise Unavailable(f"another change to video {video_id}'s subtitles is still running; try again")
        time.sleep(pause)
        pause = min(pause * 2, _RETRY_MAX_S)
    try:
        yield
    finally:
        _wait(catalog.release_lease.remote(name, holder))


def _record_of(video: Mapping[str, Any]) -> dict[str, Any]:
    found = video.get("subtitles")
    return json.loads(found) if isinstance(found, str) else dict(found or {})


def add_published_track(
    storage: Storage,
    catalog: Any,
    video_id: str,
    track: Mapping[str, Any],
    cues: Sequence[Cue],
    source_lang: str,
) -> bool:
    """Publish ``track`` (``{lang, label, source, origin, cues}``) of a ready video: its WebVTT
    file and both manifests, then the subtitle record, then the cues (searchable at once).

    Blocking: run it in a thread. Under the video's lease. Returns False, changing nothing, if
    a newer sidecar of the language is published already (its writer overtook this one)."""
    lang = track["lang"]
    with video_lease(catalog, video_id):
        video = _wait(catalog.get_video.remote(video_id))
        if video is None:
            raise NotFound(f"no video with id {video_id!r}")
        record = _record_of(video)
        if newer_sidecar_published(record, track):
            return False
        with tempfile.TemporaryDirectory(prefix="vodray-track-") as scratch:
            vtt = write_vtt(cues, Path(scratch) / f"{lang}.vtt")
            publish_subtitle_tracks(storage, video_id, {lang: vtt}, {lang: track["label"]})
        _wait(catalog.set_subtitles.remote(video_id, record_with_track(record, track)))
        _wait(catalog.put_cues.remote(video_id, lang, source_lang, cue_rows(cues)))
    return True


def _sidecar_index(track: Mapping[str, Any]) -> int | None:
    if track.get("source") != "sidecar":
        return None
    matched = SIDECAR_NAME.fullmatch(str(track.get("origin", "")).removeprefix("sidecar:"))
    return int(matched.group(1)) if matched else None


def newer_sidecar_published(record: Mapping[str, Any], track: Mapping[str, Any]) -> bool:
    """Whether ``record`` lists a sidecar of ``track``'s language sent after ``track`` (a sidecar)."""
    mine = _sidecar_index(track)
    if mine is None:
        return False
    theirs = [_sidecar_index(t) for t in record.get("tracks", []) if t.get("lang") == track["lang"]]
    return any(index is not None and index > mine for index in theirs)


def publish_sidecar(storage: Storage, catalog: Any, video_id: str, key: str, cues: Sequence[Cue]) -> bool:
    """Publish the stored sidecar ``key`` (``layout.sidecar_key``), whose cues are ``cues``, as
    its language's track of a ready video: the one path for every sidecar added after the job
    published the video, whoever notices it (the API or the job)."""
    name = PurePosixPath(key).name
    matched = SIDECAR_NAME.fullmatch(name)
    if matched is None:
        raise ValueError(f"not a sidecar key: {key!r}")
    lang = matched.group(2).lower()
    track = {
        "lang": lang,
        "label": label_for(lang),
        "source": "sidecar",
        "origin": f"sidecar:{name}",
        "cues": len(cues),
    }
    return add_published_track(storage, catalog, video_id, track, cues, lang)


def late_sidecars(storage: Storage, video_id: str, read: Sequence[str]) -> list[str]:
    """Sidecar keys stored after the job's subtitles step listed them (``read``: file names)."""
    seen = set(read)
    keys = storage.list(layout.sidecar_prefix(video_id))
    return sorted(key for key in keys if PurePosixPath(key).name not in seen)


def publish_late_sidecars(
    storage: Storage,
    catalog: Any,
    settings: SubtitleSettings,
    video_id: str,
    results: Mapping[str, Any],
    duration_s: float,
) -> list[str]:
    """After the job marked the video ready: publish every sidecar posted while it ran, after
    its subtitles step had listed them (a post after ``ready`` is published by the API).

    ``results``: the job's results by output key; the subtitles step's record names the sidecar
    files it read. Never raises (the video is ready and plays): a failure is logged and becomes
    a warning in the video's subtitle record. Blocking. Returns the keys published."""
    read = next(
        (
            value["subtitles"]["sidecars"]
            for value in results.values()
            if isinstance(value, Mapping) and "sidecars" in (value.get("subtitles") or {})
        ),
        None,
    )
    if read is None:  # the step failed (its sidecars were never published) or predates the list
        return []
    published = []
    try:
        for key in late_sidecars(storage, video_id, read):
            data = storage.read_bytes(key)
            cues = normalise(data, max_cues=settings.max_cues, duration_s=duration_s).cues
            if cues and publish_sidecar(storage, catalog, video_id, key, cues):
                published.append(key)
    except Exception as exc:  # noqa: BLE001 - the video is ready: a late track must not fail it
        log.warning("video %s: a sidecar posted while the job ran was not published", video_id, exc_info=True)
        reason = exc.detail if isinstance(exc, VodError) else "an internal error occurred"
        _warn(catalog, video_id, f"a subtitle file added during processing was not published: {reason}")
    return published


def _warn(catalog: Any, video_id: str, sentence: str) -> None:
    with contextlib.suppress(Exception), video_lease(catalog, video_id):
        video = _wait(catalog.get_video.remote(video_id))
        if video is not None:
            found = _record_of(video)
            record = {
                key: list(found.get(key, [])) for key in ("tracks", "unavailable", "skipped", "warnings")
            }
            record["warnings"].append(sentence)
            _wait(catalog.set_subtitles.remote(video_id, record))
