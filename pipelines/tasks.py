"""Thin Ray task wrappers: fetch inputs to a local temp dir, call a step, publish, clean up.

Outputs go to ``work/{vid}/{plan_id}/`` under their deterministic names, written whole or
not at all, so a retried or resumed job skips every output that already exists. The step
functions themselves (``pipelines.media``) know nothing of Ray or storage.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray

from cluster.storage import Storage
from pipelines import media
from pipelines.plan import Plan, Rendition
from pipelines.probe import MediaInfo, probe


class ProgressReporter:
    """Sends one task's progress (0..1) to the dispatcher, at most a few times a second."""

    def __init__(self, dispatcher: Any, video_id: str, part: str, interval_s: float = 0.5) -> None:
        self._dispatcher = dispatcher
        self._video_id = video_id
        self._part = part
        self._interval_s = interval_s
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self._interval_s:
            return
        self._last = now
        self._dispatcher.report.remote(self._video_id, self._part, fraction)


def work_prefix(video_id: str, plan: Plan) -> str:
    return f"work/{video_id}/{plan.plan_id}"


def media_prefix(video_id: str) -> str:
    return f"media/{video_id}"


@contextmanager
def private_source(storage: Storage, source_key: str) -> Iterator[Path]:
    """The upload alone in a fresh temp dir, so no other video's files are relative to it.

    The demuxer allow-list already stops an upload from naming other files; this is the
    second wall. On S3 ``local_copy`` is such a copy already. Locally a symlink is enough:
    ffmpeg resolves relative names against the path it was given, not the link's target,
    and a probe worker killed mid-way (a delete cancels it) leaves behind a dangling link,
    not a second copy of a video its owner deleted.
    """
    with storage.local_copy(source_key) as src:
        if not storage.is_local:
            yield src
            return
        with tempfile.TemporaryDirectory(prefix="vodray-src-") as tmp:
            private = Path(tmp) / "source"
            private.symlink_to(src.resolve())
            yield private


@ray.remote(num_cpus=0.5)
def probe_source(storage: Storage, source_key: str) -> MediaInfo:
    with private_source(storage, source_key) as src:
        return probe(src)


@ray.remote(num_cpus=1)
def encode_rendition(
    storage: Storage,
    source_key: str,
    plan: Plan,
    rendition: Rendition,
    work: str,
    progress: ProgressReporter,
) -> str:
    key = f"{work}/{rendition.name}.mp4"
    if storage.exists(key):
        progress(1.0)
        return key
    with storage.local_copy(source_key) as src, tempfile.TemporaryDirectory(prefix="vodray-enc-") as tmp:
        out = Path(tmp) / f"{rendition.name}.mp4"
        media.encode_rendition(src, out, plan, rendition, on_progress=progress)
        storage.put_file(out, key)
    progress(1.0)
    return key


@ray.remote(num_cpus=1)
def encode_audio(storage: Storage, source_key: str, plan: Plan, work: str) -> dict[str, str]:
    """AAC for the stream and MP3 for download, each from the whole title (chunked audio clicks)."""
    keys = {"aac": f"{work}/audio.m4a", "mp3": f"{work}/audio.mp3"}
    if all(storage.exists(k) for k in keys.values()):
        return keys
    with storage.local_copy(source_key) as src, tempfile.TemporaryDirectory(prefix="vodray-aud-") as tmp:
        aac, mp3 = Path(tmp) / "audio.m4a", Path(tmp) / "audio.mp3"
        media.encode_aac(src, aac, plan)
        media.encode_mp3(src, mp3, plan)
        storage.put_many([(aac, keys["aac"]), (mp3, keys["mp3"])])
    return keys


@ray.remote(num_cpus=0.5)
def make_poster(storage: Storage, source_key: str, plan: Plan, work: str) -> str:
    key = f"{work}/poster.jpg"
    if storage.exists(key):
        return key
    with storage.local_copy(source_key) as src, tempfile.TemporaryDirectory(prefix="vodray-pst-") as tmp:
        out = Path(tmp) / "poster.jpg"
        media.make_poster(src, out, plan)
        storage.put_file(out, key)
    return key


@ray.remote(num_cpus=1)
def package_and_publish(
    storage: Storage,
    plan: Plan,
    renditions: dict[str, str],
    audio: dict[str, str] | None,
    poster_key: str,
    dest: str,
) -> dict[str, Any]:
    """Stitch the renditions into one CMAF set and publish it, manifests last.

    A player that finds a manifest can fetch every segment it names: segments, the MP3 and
    the poster are all in place before the first manifest is written.
    """
    with tempfile.TemporaryDirectory(prefix="vodray-pkg-") as tmp:
        root = Path(tmp)
        inputs = root / "in"
        inputs.mkdir()
        encoded = []
        for rendition in plan.renditions:
            local = inputs / f"{rendition.name}.mp4"
            storage.get_file(renditions[rendition.name], local)
            encoded.append((rendition, local))
        extras: list[tuple[Path, str]] = []
        aac = None
        if audio is not None:
            aac, mp3 = inputs / "audio.m4a", inputs / "audio.mp3"
            storage.get_file(audio["aac"], aac)
            storage.get_file(audio["mp3"], mp3)
            extras.append((mp3, f"{dest}/audio.mp3"))
        poster = inputs / "poster.jpg"
        storage.get_file(poster_key, poster)
        extras.append((poster, f"{dest}/poster.jpg"))

        out = root / "out"
        packaged = media.package(encoded, aac, out, plan)
        files = [(out / rel, f"{dest}/{rel}") for rel in packaged.segment_files] + extras
        published = storage.put_many(files)
        # Media playlists before the top-level manifests that point at them.
        top = {"manifest.mpd", "master.m3u8"}
        for rel in sorted(packaged.manifest_files, key=lambda rel: rel in top):
            storage.put_file(out / rel, f"{dest}/{rel}")
            published += (out / rel).stat().st_size
    return {
        "renditions": [
            {
                "name": r.name,
                "width": r.width,
                "height": r.height,
                "bandwidth": packaged.bitrates[r.name],
                "bytes": packaged.bytes_by_rendition[r.name],
            }
            for r in plan.renditions
        ],
        "duration_s": packaged.duration_s,
        "media_bytes": published,
    }
