"""Thin Ray task wrappers: one per step, each running one ``TaskSpec``.

A task skips its spec when every output already exists (outputs are written whole or not
at all, under keys that name the plan), reads the source by range (the file itself on
``file://``, a presigned URL ffmpeg seeks in on S3: never a whole-source download), runs a
step function over local paths (``pipelines.video``, ``pipelines.subtitles``), publishes, and
cleans up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import ray

from cluster import layout, scratch
from cluster.errors import NotFound
from cluster.scratch import scratch_dir
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines.graph import TaskSpec
from pipelines.subtitles import manifests
from pipelines.video import encode, package, probe, storyboard
from pipelines.video.ffmpeg import Source
from pipelines.video.media_info import MediaInfo
from pipelines.video.plan import Plan
from pipelines.video.publish import publish

log = logging.getLogger(__name__)


def _results(spec: TaskSpec, *, reused: bool) -> dict[str, dict[str, Any]]:
    """What a step returns per output key: made now or found from an earlier run, and where."""
    # Outside Ray (benchmarks/scaling.py times the steps one by one) there is no node.
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    return {key: {"reused": reused, "node": node} for key in spec.outputs}


@contextmanager
def source_input(storage: Storage, key: str) -> Iterator[Source]:
    """Where ffmpeg reads ``key`` from: the file itself locally, a presigned URL on S3."""
    if storage.is_local:
        with storage.local_copy(key) as path:
            yield path
        return
    if not storage.exists(key):
        raise NotFound(f"no such file: {key}")
    url = storage.presign(key)
    assert url is not None
    yield url


def _all_exist(storage: Storage, spec: TaskSpec) -> bool:
    return all(storage.exists(key) for key in spec.outputs)


@contextmanager
def private_source(storage: Storage, source_key: str) -> Iterator[Path]:
    """A local upload alone in a fresh temp dir, so no other video's files are relative to it.

    The demuxer allow-list already stops an upload from naming other files; this is the
    second wall. A symlink is enough: ffmpeg resolves relative names against the path it was
    given, not the link's target, and a probe worker killed mid-way (a delete cancels it)
    leaves behind a dangling link, not a second copy of a video its owner deleted. (On S3 an
    upload is read through a presigned URL: nothing else is relative to it.)
    """
    with storage.local_copy(source_key) as src, scratch_dir("src") as tmp:
        private = Path(tmp) / "source"
        private.symlink_to(src.resolve())
        yield private


@ray.remote(num_cpus=0.5)
def probe_source(storage: Storage, source_key: str) -> MediaInfo:
    """The upload described; on S3 read by range through a presigned URL, like the encodes."""
    if storage.is_local:
        with private_source(storage, source_key) as src:
            return probe.probe(src)
    with source_input(storage, source_key) as url:
        return probe.probe_upload(
            url, storage.size(source_key), lambda: storage.read_range(source_key, 0, probe.HEAD_BYTES)
        )


def encode_chunk(storage: Storage, plan: Plan, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    """One chunk in the spec's renditions (one decode for all of them)."""
    if _all_exist(storage, spec):
        return _results(spec, reused=True)
    assert spec.chunk is not None
    threads = max(1, round(spec.num_cpus))
    with (
        source_input(storage, spec.inputs[0]) as src,
        scratch_dir("enc") as tmp,
    ):
        outputs = [(plan.rendition(name), Path(tmp) / f"{name}.mp4") for name in spec.renditions]
        encode.encode_chunk(src, outputs, plan, spec.chunk, threads)
        for (_, local), key in zip(outputs, spec.outputs, strict=True):
            storage.put_file(local, key)
    return _results(spec, reused=False)


def encode_audio(storage: Storage, plan: Plan, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    """AAC for the stream (step ``audio``) or MP3 for download (step ``mp3``), each from the
    whole title: chunked audio clicks at the seams."""
    if _all_exist(storage, spec):
        return _results(spec, reused=True)
    encode_audio_file, name = (
        (encode.encode_aac, layout.AAC_NAME) if spec.step == "audio" else (encode.encode_mp3, layout.MP3_NAME)
    )
    with (
        source_input(storage, spec.inputs[0]) as src,
        scratch_dir("aud") as tmp,
    ):
        out = encode_audio_file(src, Path(tmp) / name, plan)
        storage.put_file(out, spec.output)
    return _results(spec, reused=False)


def make_poster(storage: Storage, plan: Plan, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    if _all_exist(storage, spec):
        return _results(spec, reused=True)
    with (
        source_input(storage, spec.inputs[0]) as src,
        scratch_dir("pst") as tmp,
    ):
        out = Path(tmp) / layout.POSTER_NAME
        encode.make_poster(src, out, plan)
        storage.put_file(out, spec.output)
    return _results(spec, reused=False)


def make_storyboard(storage: Storage, plan: Plan | None, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    """The seek-bar previews, published beside the manifests: the sheet, then the WebVTT that
    names it. ``plan`` is unused (the spec holds the grid): a backfill has none."""
    board = spec.storyboard
    assert board is not None
    if not _all_exist(storage, spec):
        with (
            source_input(storage, spec.inputs[0]) as src,
            scratch_dir("sb") as tmp,
        ):
            made = storyboard.make_storyboard(src, Path(tmp), board)
            for local, key in zip(made, spec.outputs, strict=True):
                storage.put_file(local, key)
        results = _results(spec, reused=False)
    else:
        results = _results(spec, reused=True)
    results[spec.output]["storyboard"] = board.to_json()
    return results


@ray.remote
def make_subtitle_tracks(
    storage: Storage, plan: Plan, spec: TaskSpec, settings: Settings, video_id: str
) -> dict[str, dict[str, Any]]:
    """Every subtitle language as WebVTT in the work dir, the record of what was found, and
    each language's cues for the catalog (``pipelines.subtitles.step.run_step``)."""
    # Imported here: CTranslate2 is for this step only, not for every encode worker.
    from pipelines.subtitles.step import reuse_step, run_step

    reused = _all_exist(storage, spec)
    if reused:
        found = reuse_step(storage, plan, spec, video_id)
    else:
        with source_input(storage, spec.inputs[0]) as src:
            found = run_step(storage, plan, spec, settings, video_id, src)
    results = _results(spec, reused=reused)
    results[spec.output].update(found)
    return results


@ray.remote
def package_and_publish(storage: Storage, plan: Plan, spec: TaskSpec, video_id: str) -> dict[str, Any]:
    """Stitch each rendition's chunks, package one CMAF set, publish it with the manifests last.

    Runs once every spec it reads from is done. ``pipelines.video.publish`` puts the segments, the
    MP3 and the poster up (in parallel batches on S3) before any manifest, so a player that
    finds a manifest can fetch every file it names.
    """
    work = layout.work_prefix(video_id, plan.plan_id)
    dest = layout.media_prefix(video_id)
    with scratch_dir("pkg") as tmp, ExitStack() as chunks_in:
        root = Path(tmp)
        inputs = root / "in"
        inputs.mkdir()
        encoded = []
        for rendition in plan.renditions:
            # Read where they are on file:// (no copy: on a long title the copies were most
            # of this serial step); fetched once each on S3.
            chunk_files = [
                chunks_in.enter_context(storage.local_copy(chunk.key(work, rendition.name)))
                for chunk in plan.chunks
            ]
            encoded.append((rendition, package.stitch(chunk_files, plan, inputs / rendition.name)))
        extras: list[tuple[Path, str]] = []
        aac = None
        if plan.has_audio:
            aac, mp3 = inputs / layout.AAC_NAME, inputs / layout.MP3_NAME
            storage.get_file(layout.aac_key(work), aac)
            storage.get_file(layout.mp3_key(work), mp3)
            extras.append((mp3, layout.media_key(video_id, layout.MP3_NAME)))
        poster = inputs / layout.POSTER_NAME
        storage.get_file(layout.poster_key(work), poster)
        extras.append((poster, layout.media_key(video_id, layout.POSTER_NAME)))

        out = root / "out"
        packaged = package.package(encoded, aac, out, plan)
        vtts, playlists, subtitle_warnings = manifests.add_step_tracks(storage, work, inputs, out)
        segments = [(out / rel, f"{dest}/{rel}") for rel in [*packaged.segment_files, *vtts]] + extras
        manifest_files = [*playlists, *packaged.manifest_files]  # top manifests stay last
        manifest_pairs = [(out / rel, f"{dest}/{rel}") for rel in manifest_files]
        published = publish(storage, segments, manifest_pairs, video_id=video_id)
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
        "subtitle_warnings": subtitle_warnings,
    }


MEDIA_STEPS: dict[str, Callable[[Storage, Plan, TaskSpec], dict[str, dict[str, Any]]]] = {
    "encode": encode_chunk,
    "audio": encode_audio,
    "mp3": encode_audio,
    "poster": make_poster,
    "storyboard": make_storyboard,
}


@ray.remote
def run_media_step(storage: Storage, plan: Plan, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    """Every encode, audio, MP3, poster and storyboard task runs through this one remote function.

    Ray queues tasks by function and resources, and starts one queue's tasks in the order
    they were submitted: one function (and one CPU each) means the job's order holds, the
    longest encodes first and the short tasks filling the last wave (``graph.job_specs``).
    """
    return MEDIA_STEPS[spec.step](storage, plan, spec)


RUNNERS: dict[str, Any] = {**dict.fromkeys(MEDIA_STEPS, run_media_step), "subtitles": make_subtitle_tracks}
"""Step -> the remote function running a spec of it (``package`` takes its upstream results;
``subtitles`` takes the settings too, for the translator)."""


# No CPU, no retries: it reads a directory listing, and the next sweep covers a lost one.
@ray.remote(num_cpus=0, max_retries=0)
def sweep_scratch(grace_s: float) -> list[str]:
    """Remove this node's scratch dirs of processes that are gone (``cluster.scratch``)."""
    return [str(path) for path in scratch.sweep(grace_s=grace_s)]
