"""Pure parts of publishing: the order manifests go up in, content types, what is retried."""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from cluster.storage import content_type, is_transient
from pipelines.video.publish import manifest_order


def test_media_playlists_first_then_master_then_mpd() -> None:
    given = [
        (Path("a"), "media/v/manifest.mpd"),
        (Path("b"), "media/v/master.m3u8"),
        (Path("c"), "media/v/360p.m3u8"),
        (Path("d"), "media/v/720p.m3u8"),
    ]
    assert [key for _, key in manifest_order(given)] == [
        "media/v/360p.m3u8",
        "media/v/720p.m3u8",
        "media/v/master.m3u8",
        "media/v/manifest.mpd",
    ]


def test_content_types_of_published_files() -> None:
    assert content_type("media/v/720p/seg-00001.m4s") == "video/iso.segment"
    assert content_type("media/v/720p/init.mp4") == "video/mp4"
    assert content_type("media/v/master.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("media/v/manifest.mpd") == "application/dash+xml"
    assert content_type("media/v/audio.mp3") == "audio/mpeg"
    assert content_type("media/v/poster.jpg") == "image/jpeg"
    assert content_type("media/v/subtitles/en.vtt") == "text/vtt"
    assert content_type("sources/v/source") == "application/octet-stream"


def _client_error(status: int, code: str) -> ClientError:
    response = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


def test_throttling_server_errors_and_broken_connections_are_retried() -> None:
    assert is_transient(_client_error(503, "SlowDown"))
    assert is_transient(_client_error(500, "InternalError"))
    assert is_transient(ConnectionClosedError(endpoint_url="http://s3"))
    assert is_transient(EndpointConnectionError(endpoint_url="http://s3"))


def test_client_mistakes_are_not_retried() -> None:
    assert not is_transient(_client_error(403, "AccessDenied"))
    assert not is_transient(_client_error(404, "NoSuchBucket"))
    assert not is_transient(FileNotFoundError("seg-00001.m4s"))
