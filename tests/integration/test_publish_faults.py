"""Publishing through an S3 endpoint that throttles, drops connections and stalls.

A loopback proxy (``s3_proxy.S3Proxy``) in front of moto's server fails a fifth of all PUTs
(503 SlowDown, a connection dropped before S3 sees the request, or dropped after S3 stored the
object) and slows another fifth. Publishing must still put every file in place with its bytes
and content type, and no manifest may appear while a segment is missing.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import ray

from cluster.runtime import connect
from cluster.settings import Settings, StorageSettings
from cluster.storage import Storage
from pipelines.video.publish import publish
from tests.integration.s3_proxy import FAULTS, S3Proxy

RENDITIONS = ("180p", "360p", "720p")
SEGMENTS_PER_RENDITION = 40
MANIFEST_SUFFIXES = (".m3u8", ".mpd")


def packaged_title(root: Path, video_id: str) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Files shaped like a packaged title: (segments, manifests) as (local, key) pairs."""

    def file(relative: str, size: int) -> tuple[Path, str]:
        local = root / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(os.urandom(size))
        return local, f"media/{video_id}/{relative}"

    segments = [file("audio.mp3", 30_000), file("poster.jpg", 9_000), file("subtitles/en.vtt", 700)]
    manifests = [file("manifest.mpd", 2_000), file("master.m3u8", 600)]
    for index, name in enumerate(RENDITIONS):
        segments.append(file(f"{name}/init.mp4", 800))
        segments += [
            file(f"{name}/seg-{n:05d}.m4s", 3_000 * (index + 1) + n)
            for n in range(1, SEGMENTS_PER_RENDITION + 1)
        ]
        manifests.append(file(f"{name}.m3u8", 1_500))
    return segments, manifests


@pytest.mark.s3
def test_publish_survives_throttling_and_dropped_connections(
    settings: Settings, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    connect(settings, start=True)  # the session's local Ray: batches run as Ray tasks
    video_id = uuid.uuid4().hex
    segments, manifests = packaged_title(tmp_path, video_id)
    segment_objects = {f"vod/{key}" for _, key in segments}
    direct = boto3.client("s3", endpoint_url=s3_endpoint)  # behind the proxy: no faults

    missing_when_manifest_appeared: dict[str, set[str]] = {}
    lock = threading.Lock()

    def look_at_bucket(stored: str) -> None:
        if not stored.endswith(MANIFEST_SUFFIXES):
            return
        listed = set()
        for page in direct.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="vod/"):
            listed |= {item["Key"] for item in page.get("Contents", [])}
        with lock:
            missing_when_manifest_appeared[stored] = segment_objects - listed

    proxy = S3Proxy(
        s3_endpoint,
        latency_s=0.005,
        put_failure_share=0.2,
        slow_put_share=0.2,
        slow_put_s=0.3,
        seed=6,
        on_stored=look_at_bucket,
    )
    storage = Storage(
        StorageSettings(
            url=f"s3://{s3_bucket}/vod",
            s3_endpoint_url=proxy.start(),
            upload_concurrency=4,
            upload_batch_files=25,
            upload_tasks=3,
            upload_attempts=8,
        )
    )
    try:
        # From inside a task, as the package task does: the batches are tasks it starts.
        written = ray.get(publish_in_task.remote(storage, segments, manifests, video_id))
    finally:
        proxy.stop()

    everything = segments + manifests
    assert written == sum(local.stat().st_size for local, _ in everything)
    # The faults really happened, all three kinds, and were all retried to success.
    assert sum(proxy.faults[kind] for kind in FAULTS) >= 0.1 * len(everything), proxy.faults
    assert all(proxy.faults[kind] > 0 for kind in FAULTS), proxy.faults
    for local, key in everything:
        obj: Any = direct.get_object(Bucket=s3_bucket, Key=f"vod/{key}")
        assert obj["Body"].read() == local.read_bytes(), key
        assert obj["ContentType"] == expected_content_type(key), key

    # Every manifest appeared with every segment already listed, and after the last segment PUT.
    manifest_objects = {f"{s3_bucket}/vod/{key}" for _, key in manifests}
    segment_puts = {f"{s3_bucket}/{name}" for name in segment_objects}
    assert set(missing_when_manifest_appeared) == manifest_objects
    assert all(not missing for missing in missing_when_manifest_appeared.values())
    order = proxy.stored
    last_segment = max(i for i, key in enumerate(order) if key in segment_puts)
    first_manifest = min(i for i, key in enumerate(order) if key in manifest_objects)
    assert last_segment < first_manifest
    # Top-level manifests last, after the media playlists they point at.
    tops = [key.rsplit("/", 1)[-1] for key in order[first_manifest:]][-2:]
    assert tops == ["master.m3u8", "manifest.mpd"]
    # Bounded concurrency: several PUTs overlapped, never more than tasks x PUTs per task.
    assert 1 < proxy.max_in_flight <= storage.settings.upload_tasks * storage.settings.upload_concurrency


@ray.remote(num_cpus=1)
def publish_in_task(storage: Storage, segments: Any, manifests: Any, video_id: str) -> int:
    return publish(storage, segments, manifests, video_id=video_id)


def expected_content_type(key: str) -> str:
    return {
        ".m4s": "video/iso.segment",
        ".mp4": "video/mp4",
        ".m3u8": "application/vnd.apple.mpegurl",
        ".mpd": "application/dash+xml",
        ".mp3": "audio/mpeg",
        ".jpg": "image/jpeg",
        ".vtt": "text/vtt",
    }[Path(key).suffix]


def test_publish_on_local_storage_writes_everything_manifests_last(tmp_path: Path) -> None:
    storage = Storage(StorageSettings(url=(tmp_path / "store").as_uri(), upload_concurrency=4))
    video_id = uuid.uuid4().hex
    segments, manifests = packaged_title(tmp_path / "packaged", video_id)

    written = publish(storage, segments, manifests, video_id=video_id)

    everything = segments + manifests
    assert written == sum(local.stat().st_size for local, _ in everything)
    assert storage.list(f"media/{video_id}") == sorted(key for _, key in everything)
    for local, key in everything:
        assert storage.read_bytes(key) == local.read_bytes()
    # Written in order: a top-level manifest is never older than a segment.
    mtimes = {key: Path(storage.path(key)).stat().st_mtime_ns for _, key in everything}
    newest_segment = max(mtimes[key] for _, key in segments)
    assert mtimes[f"media/{video_id}/master.m3u8"] >= newest_segment
    assert mtimes[f"media/{video_id}/manifest.mpd"] >= mtimes[f"media/{video_id}/master.m3u8"]
