"""The same storage code and job graph against a real S3 endpoint on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import ray

from cluster.errors import InvalidMedia, NotFound
from cluster.settings import Settings, StorageSettings
from cluster.storage import Storage
from pipelines.ingest import source_key
from pipelines.video.ffmpeg import run as ffmpeg_run
from tests.integration.s3_proxy import S3Proxy


@pytest.fixture
def s3_storage(s3_endpoint: str, s3_bucket: str) -> Storage:
    return Storage(
        StorageSettings(url=f"s3://{s3_bucket}/vod", s3_endpoint_url=s3_endpoint, upload_concurrency=4)
    )


def test_storage_roundtrip_on_s3(
    s3_storage: Storage, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    files = []
    for i in range(12):
        local = tmp_path / f"seg-{i:05d}.m4s"
        local.write_bytes(bytes([i]) * (1000 + i))
        files.append((local, f"media/v1/360p/seg-{i:05d}.m4s"))
    written = s3_storage.put_many(files)
    assert written == sum(1000 + i for i in range(12))
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"]
    ]
    assert sorted(keys) == sorted(f"vod/{key}" for _, key in files)
    assert s3_storage.list("media/v1") == sorted(key for _, key in files)
    assert s3_storage.read_range("media/v1/360p/seg-00003.m4s", 10, 20) == bytes([3]) * 10
    assert s3_storage.size("media/v1/360p/seg-00011.m4s") == 1011
    with s3_storage.local_copy("media/v1/360p/seg-00002.m4s") as local:
        assert local.read_bytes() == bytes([2]) * 1002
    url = s3_storage.presign("media/v1/360p/seg-00001.m4s", ttl_s=60)
    assert url is not None and httpx.get(url).content == bytes([1]) * 1001
    with pytest.raises(NotFound):
        s3_storage.read_bytes("media/v1/missing")
    s3_storage.delete_prefix("media/v1")
    assert s3_storage.list("media/v1") == []


def test_job_publishes_to_s3(
    settings: Settings, deployment: Any, catalog: Any, s3_storage: Storage, clip: Any, new_user: Any
) -> None:
    from pipelines.job import Job

    s3_settings = dataclasses.replace(settings, storage=s3_storage.settings)
    user = new_user()
    vid = uuid.uuid4().hex
    s3_storage.put_file(clip(seconds=3), source_key(vid))
    ray.get(catalog.create_video.remote(vid, user.id, "on s3", "", "public", source_key(vid), 1))

    summary = asyncio.run(Job(vid, s3_settings, catalog).run())
    assert summary is not None
    published = s3_storage.list(f"media/{vid}")
    assert f"media/{vid}/manifest.mpd" in published and f"media/{vid}/master.m3u8" in published
    assert f"media/{vid}/audio.mp3" in published and f"media/{vid}/poster.jpg" in published
    assert sum(1 for key in published if key.endswith(".m4s")) >= 4
    assert s3_storage.list(f"work/{vid}") == []
    video = ray.get(catalog.get_video.remote(vid))
    assert video["status"] == "ready"
    # The storyboard task read the upload through a presigned URL and published beside the manifests.
    assert video["storyboard"]["tiles"] == 2
    bucket, prefix = s3_storage.settings.url.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=s3_storage.settings.s3_endpoint_url)
    for name, media_type in (("storyboard.jpg", "image/jpeg"), ("storyboard.vtt", "text/vtt")):
        head = client.head_object(Bucket=bucket, Key=f"{prefix}/media/{vid}/{name}")
        assert head["ContentType"] == media_type and head["ContentLength"] > 0


def test_probe_on_s3_reads_the_upload_by_range_not_whole(
    deployment: Any, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    from pipelines import tasks
    from pipelines.video.probe import probe

    # Raw video in Matroska: 40 MB made in a moment, and every frame is a lot of bytes.
    source = tmp_path / "raw.mkv"
    ffmpeg_run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25",
            "-t",
            "56",
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "matroska",
            str(source),
        ]  # fmt: skip
    )
    size = source.stat().st_size
    with S3Proxy(s3_endpoint) as proxy:
        storage = Storage(StorageSettings(url=f"s3://{s3_bucket}/vod", s3_endpoint_url=proxy.url))
        storage.put_file(source, "sources/raw/source")
        info = ray.get(tasks.probe_source.remote(storage, "sources/raw/source"))
        read = proxy.sent[f"{s3_bucket}/vod/sources/raw/source"]
    local = probe(source)
    assert (info.duration_s, info.width, info.height, info.fps) == (56.0, 160, 120, 25.0)
    assert info == local
    # ffprobe reads the header and the first seconds (plus what the sockets buffer).
    assert 0 < read < size * 0.4, f"{read} of {size} bytes read"


def test_a_playlist_on_s3_fails_at_probe_with_the_sentence(
    deployment: Any, s3_storage: Storage, tmp_path: Path
) -> None:
    from pipelines import tasks

    playlist = tmp_path / "list.m3u8"
    playlist.write_text("#EXTM3U\n#EXTINF:4,\nhttp://127.0.0.1:1/media/other/seg-00000.m4s\n#EXT-X-ENDLIST\n")
    s3_storage.put_file(playlist, "sources/evil/source")
    with pytest.raises(ray.exceptions.RayTaskError) as failure:
        ray.get(tasks.probe_source.remote(s3_storage, "sources/evil/source"))
    assert isinstance(failure.value.cause, InvalidMedia)
    assert (
        str(failure.value.cause) == "the file is a playlist (M3U8), not a video: upload the video file itself"
    )
