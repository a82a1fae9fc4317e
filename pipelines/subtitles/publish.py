"""Adding one subtitle track to a video that is already published: all of it, or nothing.

A track added late (a sidecar posted to a ready video, a sidecar posted while the job ran, a
backfilled translation) changes three things that must move together: the published files and
manifests (``pipelines.subtitles.manifests``), the video's subtitle record and its cues in the
catalog. The order makes it all or nothing:

1. the cues are checked by the catalog's own rule (``catalog.validation.check_cues``, what
   ``put_cues`` applies) before anything changes: a refused track leaves the video exactly as
   it was, its files, manifests, record and search;
2. the WebVTT file and both manifests are published (files first, manifests last);
3. the record and the cues go to the catalog in one transaction (``put_subtitles``), so the
   metadata and search change together.

Each step is a read-modify-write, so two writers at once (two API replicas, the dispatcher, a
backfill) could each drop the other's language. ``video_lease`` makes them take turns, through
a lease held by the catalog actor (``catalog.leases``), the one process they all reach.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from catalog.client import CatalogCall
from catalog.validation import check_cues
from cluster import layout
from cluster.errors import NotFound, Unavailable, VodError
from cluster.scratch import scratch_dir
from cluster.settings import SubtitleSettings
from cluster.storage import Storage
from pipelines.subtitles.cues import Cue, write_vtt
from pipelines.subtitles.manifests import publish_subtitle_tracks
from pipelines.subtitles.parse import parse_subtitles
from pipelines.subtitles.record import SIDECAR_NAME, SubtitleRecord, Track
from pipelines.subtitles.step import cue_rows

log = logging.getLogger(__name__)

LEASE_TTL_S = 60.0
"""How long a writer may hold a video's lease: a crashed one blocks the video no longer."""
LEASE_WAIT_S = 30.0
"""How long a writer waits for another one to finish before giving up (503)."""
_RETRY_FIRST_S, _RETRY_MAX_S = 0.02, 0.5


def _wait(ref: Any) -> Any:
    """The value of a catalog call, blocking this thread. These functions run in worker threads
    of async actors (the API replica, the dispatcher) as well as in drivers: ``ray.get`` there
    warns that it blocks the event loop, which it does not from another thread. A call through
    ``catalog.client.CatalogClient`` is retried while the catalog restarts."""
    return ref.result() if isinstance(ref, CatalogCall) else ref.future().result()


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


def _record_of(catalog: Any, video_id: str) -> SubtitleRecord:
    video = _wait(catalog.get_video.remote(video_id))
    if video is None:
        raise NotFound(f"no video with id {video_id!r}")
    return SubtitleRecord.from_json(video.get("subtitles"))


def add_published_track(
    storage: Storage, catalog: Any, video_id: str, track: Track, cues: Sequence[Cue]
) -> bool:
    """Publish ``track`` of a ready video, all or nothing (see the module's docstring): checked,
    then its WebVTT file and both manifests, then its record and cues in one catalog
    transaction (searchable at once).

    Blocking: run it in a thread. Under the video's lease. Raises ``BadRequest`` (changing
    nothing) if the catalog's rule refuses the cues. Returns False, changing nothing, if a newer
    sidecar of the language is published already (its writer overtook this one)."""
    rows = cue_rows(cues)
    check_cues(rows)
    with video_lease(catalog, video_id):
        record = _record_of(catalog, video_id)
        if record.newer_sidecar_than(track):
            return False
        with scratch_dir("track") as scratch:
            vtt = write_vtt(cues, Path(scratch) / f"{track.lang}.vtt")
            publish_subtitle_tracks(storage, video_id, {track.lang: vtt}, {track.lang: track.label})
        tracks = [(video_id, track.lang, track.source_lang, rows)]
        _wait(catalog.put_subtitles.remote(video_id, record.with_track(track).to_json(), tracks))
    return True


def publish_sidecar(storage: Storage, catalog: Any, video_id: str, key: str, cues: Sequence[Cue]) -> bool:
    """Publish the stored sidecar ``key`` (``layout.sidecar_key``), whose cues are ``cues``, as
    its language's track of a ready video: the one path for every sidecar added after the job
    published the video, whoever notices it (the API or the job)."""
    name = PurePosixPath(key).name
    matched = SIDECAR_NAME.fullmatch(name)
    if matched is None:
        raise ValueError(f"not a sidecar key: {key!r}")
    track = Track.sidecar(matched.group(2).lower(), name, len(cues))
    return add_published_track(storage, catalog, video_id, track, cues)


def late_sidecars(storage: Storage, video_id: str, read: Sequence[str]) -> list[str]:
    """Sidecar keys stored after the job's subtitles step listed them (``read``: file names),
    oldest first."""
    seen = set(read)
    keys = [
        key for key in storage.list(layout.sidecar_prefix(video_id)) if PurePosixPath(key).name not in seen
    ]
    return sorted(keys, key=lambda key: _index_of(key))


def _index_of(key: str) -> int:
    matched = SIDECAR_NAME.fullmatch(PurePosixPath(key).name)
    return int(matched.group(1)) if matched else -1


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
            SubtitleRecord.from_json(value["subtitles"]).sidecars
            for value in results.values()
            if isinstance(value, Mapping) and "sidecars" in (value.get("subtitles") or {})
        ),
        None,
    )
    if read is None:  # the step failed (its sidecars were never published) or predates the list
        return []
    published = []
    for key in late_sidecars(storage, video_id, read):
        name = PurePosixPath(key).name
        try:
            data = storage.read_bytes(key)
            cues = parse_subtitles(data, name, settings, duration_s=duration_s).cues
            if cues and publish_sidecar(storage, catalog, video_id, key, cues):
                published.append(key)
        except NotFound:
            continue  # replaced by a newer file of its language meanwhile
        except Exception as exc:  # noqa: BLE001 - the video is ready: a late track must not fail it
            log.warning(
                "video %s: sidecar %s posted while the job ran was not published",
                video_id,
                name,
                exc_info=True,
            )
            reason = exc.detail if isinstance(exc, VodError) else "an internal error occurred"
            record_warning(
                catalog, video_id, f"a subtitle file added during processing was not published: {reason}"
            )
    return published


def record_warning(catalog: Any, video_id: str, sentence: str) -> None:
    """Add ``sentence`` to the video's subtitle warnings (its metadata shows them); never raises."""
    with contextlib.suppress(Exception), video_lease(catalog, video_id):
        record = _record_of(catalog, video_id).with_warnings([sentence])
        _wait(catalog.set_subtitles.remote(video_id, record.to_json()))
