"""Publishing a packaged title: every segment first, in parallel batches, then the manifests.

A player that finds a manifest must be able to fetch every file it names, so nothing here
writes a manifest until every segment is confirmed in storage: media playlists next, then
``master.m3u8`` and ``manifest.mpd`` last, each only after the one before it landed.

On S3 each PUT waits a round trip (tens of milliseconds) and does almost no work, so the
segments go up as Ray tasks named ``upload:{video_id}:{batch:05d}``, each publishing one batch
with ``upload_concurrency`` PUTs in flight over one warm connection pool per worker process
(``cluster.storage.s3_client``), and ``upload_tasks`` of them at once. The tasks run on the
node that calls ``publish``, where the packaged files are (the caller's temp dir), and take no
CPU from the encoders: they wait on the network. Keys are final names and a PUT replaces a
whole object, so a retried PUT, batch or job writes the same bytes again.

On ``file://`` storage the segments are copied in this process (still ``upload_concurrency``
at a time). A copy has no round trip to hide and takes well under a millisecond, less than
scheduling one Ray task costs, and the files never leave the node that holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from cluster.layout import TOP_MANIFESTS
from cluster.storage import Storage


def publish(
    storage: Storage,
    segments: Sequence[tuple[Path, str]],
    manifests: Sequence[tuple[Path, str]],
    *,
    video_id: str,
) -> int:
    """Write ``(local, key)`` segments, then manifests in a safe order; returns the bytes written.

    ``segments`` is every file a manifest may name (init and media segments, audio, MP3,
    poster, subtitles). Raises if any file could not be written; no manifest is written then.
    """
    written = publish_segments(storage, segments, video_id=video_id)
    for local, key in manifest_order(manifests):
        storage.put_file(local, key)
        written += Path(local).stat().st_size
    return written


def manifest_order(manifests: Sequence[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Media playlists first, then the top-level manifests in ``TOP_MANIFESTS`` order."""

    def rank(pair: tuple[Path, str]) -> int:
        name = pair[1].rsplit("/", 1)[-1]
        return TOP_MANIFESTS.index(name) + 1 if name in TOP_MANIFESTS else 0

    return sorted(manifests, key=rank)


def publish_segments(storage: Storage, segments: Sequence[tuple[Path, str]], *, video_id: str) -> int:
    """Every segment in place, or an error: returns only once all of them are confirmed."""
    if not segments:
        return 0
    if storage.is_local or not ray.is_initialized():
        return storage.put_many(segments)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    size = storage.settings.upload_batch_files
    batches = [list(segments[start : start + size]) for start in range(0, len(segments), size)]
    running: list[Any] = []
    written = 0
    try:
        for index, batch in enumerate(batches):
            if len(running) >= storage.settings.upload_tasks:
                done, running = ray.wait(running, num_returns=1)
                written += ray.get(done[0])
            task = upload_batch.options(name=f"upload:{video_id}:{index:05d}", scheduling_strategy=here)
            running.append(task.remote(storage, batch))
        written += sum(ray.get(running))
    except BaseException:
        for ref in running:  # the caller's temp dir is about to go: stop reading from it
            ray.cancel(ref)
        raise
    return written


# No CPU: the task waits on the network, and a title being packaged must not queue its
# upload behind other titles' encodes. Ray retries it if its worker dies: PUTs are idempotent.
@ray.remote(num_cpus=0, max_retries=3)
def upload_batch(storage: Storage, batch: list[tuple[Path, str]]) -> int:
    return storage.put_many(batch)
