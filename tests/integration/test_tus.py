"""Resumable uploads (tus 1.0.0 at ``/v1/uploads``) over real HTTP to the Serve app, through
HAProxy, with tuspy as the client where a real client fits and raw requests where the test
needs to break the protocol (or the connection) on purpose. Storage is the suite's ``file://``;
``test_tus_s3.py`` runs the S3 multipart side."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray

from cluster import layout
from cluster.settings import Settings
from cluster.storage import Storage
from tests.integration.client import wait_finished
from tests.integration.tus_steps import (
    TUS,
    create,
    head_offset,
    patch,
    patch_cut_short,
    replica_pid,
    reset_peak_rss,
    rss_kib,
    settled_offset,
    upload_with_tuspy,
)


def sha(name: str, chunk: bytes) -> str:
    return f"{name} {base64.b64encode(hashlib.new(name, chunk).digest()).decode()}"


def test_options_says_what_is_spoken_without_a_token(api: httpx.Client, settings: Settings) -> None:
    answer = api.options("/v1/uploads")
    assert answer.status_code == 204
    assert {name: answer.headers[name] for name in ("tus-resumable", "tus-version", "tus-extension")} == {
        "tus-resumable": "1.0.0",
        "tus-version": "1.0.0",
        "tus-extension": "creation,expiration,termination,checksum",
    }
    assert answer.headers["tus-max-size"] == str(settings.http.max_upload_bytes)
    assert answer.headers["tus-checksum-algorithm"] == "sha1,sha256"
    # A page on another origin (tus-js-client) may send the tus headers and read the answers'.
    preflight = api.options(
        "/v1/uploads/0",
        headers={
            "Origin": "https://pages.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,content-type",
        },
    )
    assert preflight.status_code == 204
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    assert {"tus-resumable", "upload-offset"} <= set(
        preflight.headers["access-control-allow-headers"].split(", ")
    )
    exposed = api.head(f"/v1/uploads/{'0' * 32}", headers={**TUS, "Origin": "https://pages.example"})
    assert {"Upload-Offset", "Location", "Upload-Video-Id", "Tus-Resumable"} <= set(
        exposed.headers["access-control-expose-headers"].split(", ")
    )


def test_tuspy_upload_becomes_the_video_post_would_make(
    base_url: str, api: httpx.Client, new_user: Any, clip: Any, storage: Storage
) -> None:
    user = new_user()
    path = clip(seconds=4)
    uploader = upload_with_tuspy(
        base_url,
        user,
        path,
        chunk_bytes=100_000,
        title="Holiday <b>",
        description="by the sea",
        visibility="public",
        translate_to="es",
        filename="holiday.mp4",
    )
    video_id = uploader.url.rsplit("/", 1)[1]
    assert uploader.request.response_headers["upload-video-id"] == video_id
    assert uploader.request.response_headers["tus-resumable"] == "1.0.0"
    video = api.get(f"/v1/videos/{video_id}", headers=user.headers).json()
    assert (video["title"], video["description"], video["visibility"]) == (
        "Holiday <b>",
        "by the sea",
        "public",
    )
    assert video["translate_to"] == ["es"]
    assert wait_finished(api, user, video_id)["status"] == "ready"
    assert storage.read_bytes(layout.source_key(video_id)) == path.read_bytes()
    assert storage.list(layout.upload_prefix(video_id)) == []
    # A client that lost the last answer learns the video from HEAD.
    again = api.head(uploader.url, headers={**user.headers, **TUS})
    assert again.status_code == 200 and again.headers["upload-video-id"] == video_id
    assert again.headers["upload-offset"] == again.headers["upload-length"] == str(path.stat().st_size)
    assert again.headers["cache-control"] == "no-store"
    assert base64.b64decode(dict(
        pair.split(" ") for pair in again.headers["upload-metadata"].split(",")
    )["filename"]) == b"holiday.mp4"  # fmt: skip


def test_interrupted_at_several_offsets_then_resumed_ends_byte_identical_and_ready(
    base_url: str, api: httpx.Client, new_user: Any, clip: Any, storage: Storage
) -> None:
    user = new_user()
    data = clip(seconds=8).read_bytes()
    created = create(api, user, len(data), title="cut three times")
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    assert url.startswith("/v1/uploads/") and created.headers["tus-resumable"] == "1.0.0"
    offsets = []
    for fraction in (0.2, 0.45, 0.8):
        offset = head_offset(api, user, url)
        cut = int(len(data) * fraction)
        patch_cut_short(base_url, user, url, offset, data[offset:], cut - offset)
        offsets.append(settled_offset(api, user, url))
        # Kept what arrived (all of it, on loopback), never more than was sent.
        assert offset < offsets[-1] <= cut, (offset, offsets[-1], cut)
    print(f"offsets after each cut: {offsets} of {len(data)}")
    uploader = upload_with_tuspy(
        base_url, user, clip(seconds=8), url=f"{base_url}{url}", chunk_bytes=256 * 1024
    )
    video_id = url.rsplit("/", 1)[1]
    assert uploader.request.response_headers["upload-video-id"] == video_id
    assert storage.read_bytes(layout.source_key(video_id)) == data
    assert wait_finished(api, user, video_id)["status"] == "ready"


def test_wrong_checksum_is_460_and_keeps_the_offset(
    api: httpx.Client, new_user: Any, clip: Any, storage: Storage
) -> None:
    user = new_user()
    data = clip(seconds=3).read_bytes()
    url = create(api, user, len(data)).headers["location"]
    first, second, rest = data[:50_000], data[50_000:120_000], data[120_000:]
    assert patch(api, user, url, 0, first, Upload_Checksum=sha("sha1", first)).status_code == 204
    garbled = bytes([second[0] ^ 1]) + second[1:]
    wrong = patch(api, user, url, 50_000, garbled, Upload_Checksum=sha("sha256", second))
    assert wrong.status_code == 460, wrong.text
    assert wrong.json()["detail"].startswith("the chunk's sha256 is not its Upload-Checksum: it was not kept")
    assert wrong.headers["tus-resumable"] == "1.0.0"
    assert head_offset(api, user, url) == 50_000
    right = patch(api, user, url, 50_000, second, Upload_Checksum=sha("sha256", second))
    assert (right.status_code, right.headers["upload-offset"]) == (204, "120000")
    done = patch(api, user, url, 120_000, rest, Upload_Checksum=sha("sha1", rest))
    assert done.status_code == 204 and done.headers["upload-video-id"] == url.rsplit("/", 1)[1]
    assert storage.read_bytes(layout.source_key(done.headers["upload-video-id"])) == data
    again = patch(api, user, url, len(data), b"")  # a retry of the last PATCH: the same video, once
    assert again.status_code == 204 and again.headers["upload-video-id"] == done.headers["upload-video-id"]
    unknown = patch(
        api, user, create(api, user, 10).headers["location"], 0, b"x" * 10, Upload_Checksum="md5 eA=="
    )
    assert (unknown.status_code, unknown.json()["detail"]) == (
        400,
        "Upload-Checksum: 'md5' is not one of sha1, sha256",
    )


def test_protocol_errors_are_the_protocol_statuses(api: httpx.Client, new_user: Any, catalog: Any) -> None:
    user = new_user()
    url = create(api, user, 1000).headers["location"]
    assert patch(api, user, url, 0, b"a" * 300).headers["upload-offset"] == "300"
    stale = patch(api, user, url, 0, b"b" * 10)
    assert stale.status_code == 409 and stale.headers["upload-offset"] == "300"
    assert (
        stale.json()["detail"]
        == "Upload-Offset is 0 but the upload has 300 bytes: send the bytes from 300 on"
    )
    for version in (None, "0.2.2"):
        headers = {**user.headers, "Upload-Offset": "300", "Content-Type": "application/offset+octet-stream"}
        if version:
            headers["Tus-Resumable"] = version
        old = api.patch(url, headers=headers, content=b"c")
        assert (old.status_code, old.headers["tus-version"], old.headers["tus-resumable"]) == (
            412,
            "1.0.0",
            "1.0.0",
        )
        assert old.json()["detail"].startswith("Tus-Resumable is")
    form = api.patch(url, headers={**user.headers, **TUS, "Upload-Offset": "300"}, data={"a": "b"})
    assert form.status_code == 415 and "application/offset+octet-stream" in form.json()["detail"]
    past = patch(api, user, url, 300, b"d" * 701)
    assert past.status_code == 413 and past.json()["detail"].startswith("the chunk goes past Upload-Length")
    assert head_offset(api, user, url) == 300
    refused = [
        (create(api, user, 0), 422, "the uploaded file is empty"),
        (create(api, user, 10**12), 413, "the upload is larger than the limit of 20 MB"),
        (
            api.post("/v1/uploads", headers={**user.headers, **TUS, "Upload-Length": "5"}),
            400,
            "missing metadata key 'title'",
        ),
        (
            create(api, user, 5, visibility="friends"),
            400,
            "metadata key 'visibility' must be 'public' or 'private'",
        ),
        (api.post("/v1/uploads", headers={**user.headers, **TUS}), 400, "Upload-Length is missing"),
        (api.post("/v1/uploads", headers={**TUS, "Upload-Length": "5"}), 401, "missing bearer token"),
    ]
    for answer, status, detail in refused:
        assert answer.status_code == status and answer.json()["detail"].startswith(detail), answer.text
        assert answer.headers["tus-resumable"] == "1.0.0"
    # A refused creation records nothing (and so holds no upload slot).
    assert [row["id"] for row in ray.get(catalog.uploads_of.remote(user.id))] == [url.rsplit("/", 1)[1]]


def test_another_users_upload_is_a_404_for_head_patch_and_delete(
    api: httpx.Client, new_user: Any, storage: Storage
) -> None:
    owner, other = new_user(), new_user()
    url = create(api, owner, 100).headers["location"]
    assert patch(api, owner, url, 0, b"o" * 40).status_code == 204
    unknown = f"/v1/uploads/{'0' * 32}"
    answers = {
        "head": api.head(url, headers={**other.headers, **TUS}),
        "patch": patch(api, other, url, 40, b"x" * 10),
        "delete": api.delete(url, headers={**other.headers, **TUS}),
        "unknown": api.delete(unknown, headers={**owner.headers, **TUS}),
        "path-like": api.delete("/v1/uploads/..%2f..%2fcatalog", headers={**owner.headers, **TUS}),
    }
    for name, answer in answers.items():
        assert answer.status_code == 404, name
    upload_id = url.rsplit("/", 1)[1]
    expected = f"no upload with id {upload_id!r} (it may have expired or been terminated)"
    assert answers["patch"].json()["detail"] == answers["delete"].json()["detail"] == expected
    assert answers["unknown"].json()["detail"] == expected.replace(upload_id, "0" * 32)
    assert head_offset(api, owner, url) == 40  # untouched
    assert storage.read_bytes(layout.upload_data_key(url.rsplit("/", 1)[1])) == b"o" * 40


def test_termination_removes_the_bytes(
    api: httpx.Client, new_user: Any, storage: Storage, catalog: Any
) -> None:
    user = new_user()
    url = create(api, user, 100).headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    assert patch(api, user, url, 0, b"t" * 60).status_code == 204
    gone = api.delete(url, headers={**user.headers, **TUS})
    assert gone.status_code == 204 and gone.headers["tus-resumable"] == "1.0.0"
    assert api.head(url, headers={**user.headers, **TUS}).status_code == 404
    assert storage.list(layout.upload_prefix(upload_id)) == []
    assert ray.get(catalog.get_upload.remote(upload_id)) is None
    finished = create(api, user, 3)
    patch(api, user, finished.headers["location"], 0, b"abc")
    late = api.delete(finished.headers["location"], headers={**user.headers, **TUS})
    assert late.status_code == 409 and "DELETE /v1/videos/" in late.json()["detail"]


# -- limits: slots, expiry and memory, on an app of their own ----------------------------------

PREFIX = "/tus-limits"
EXPIRY_S = 3


@pytest.fixture(scope="module")
def strict(deployment: Any, settings: Settings, base_url: str) -> Iterator[httpx.Client]:
    """The API with one upload in flight per user, uploads that expire after 3 s and a 64 MB
    limit, beside the suite's; the suite's dispatcher sweeps for both (one catalog)."""
    from ray import serve

    from serve.deployment import VodrayApi

    http = dataclasses.replace(settings.http, uploads_in_flight=1, upload_expiry_s=EXPIRY_S, max_upload_mb=64)
    serve.run(
        VodrayApi.bind(dataclasses.replace(settings, http=http)), name="vodray-tus", route_prefix=PREFIX
    )  # type: ignore[attr-defined]
    try:
        with httpx.Client(base_url=f"{base_url}{PREFIX}", timeout=120) as client:
            deadline = time.monotonic() + 60
            while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.25)
            yield client
    finally:
        serve.delete("vodray-tus")


def test_expiry_removes_an_abandoned_upload_and_frees_its_slot(
    strict: httpx.Client, new_user: Any, storage: Storage, catalog: Any
) -> None:
    user = new_user()
    first = create(strict, user, 100)
    assert first.status_code == 201 and first.headers["location"].startswith(f"{PREFIX}/v1/uploads/")
    url = first.headers["location"].removeprefix(PREFIX)
    upload_id = url.rsplit("/", 1)[1]
    assert patch(strict, user, url, 0, b"e" * 30).status_code == 204
    assert storage.list(layout.upload_prefix(upload_id)) == [layout.upload_data_key(upload_id)]
    second = create(strict, user, 100)
    assert second.status_code == 429 and second.json()["detail"].startswith(
        "1 of your uploads are still uploading"
    )
    deadline = time.monotonic() + EXPIRY_S + 20
    while ray.get(catalog.get_upload.remote(upload_id)) is not None and time.monotonic() < deadline:
        time.sleep(0.5)  # the dispatcher sweeps every second
    assert ray.get(catalog.get_upload.remote(upload_id)) is None
    assert storage.list(layout.upload_prefix(upload_id)) == []
    assert strict.head(url, headers={**user.headers, **TUS}).status_code == 404
    assert create(strict, user, 100).status_code == 201  # the slot is free again


def test_a_patch_renews_the_expiry(strict: httpx.Client, new_user: Any) -> None:
    user = new_user()
    url = create(strict, user, 100).headers["location"].removeprefix(PREFIX)
    for offset in range(0, 60, 10):
        time.sleep(1)  # 6 s in all: twice the expiry, but never 3 s without a byte
        answer = patch(strict, user, url, offset, b"r" * 10)
        assert answer.status_code == 204, answer.text
    assert head_offset(strict, user, url) == 60
    assert strict.delete(url, headers={**user.headers, **TUS}).status_code == 204


def test_memory_stays_flat_over_a_48_mb_upload_in_8_mb_patches(
    strict: httpx.Client, new_user: Any, storage: Storage
) -> None:
    user = new_user()
    size, chunk = 48 * 2**20, 8 * 2**20
    data = bytes(range(256)) * (size // 256)
    url = create(strict, user, size).headers["location"].removeprefix(PREFIX)
    pid = replica_pid("vodray-tus")
    reset_peak_rss(pid)
    before = rss_kib(pid, "VmRSS")
    for offset in range(0, size, chunk):
        assert patch(strict, user, url, offset, data[offset : offset + chunk]).status_code == 204
    growth_mib = (rss_kib(pid) - before) / 1024
    print(f"replica peak RSS growth over a 48 MiB upload in 8 MiB PATCHes: {growth_mib:.1f} MiB")
    assert growth_mib < 16, growth_mib
    video_id = url.rsplit("/", 1)[1]
    assert storage.size(layout.source_key(video_id)) == size


def test_a_second_patch_waits_for_the_first_and_never_interleaves(
    base_url: str, api: httpx.Client, new_user: Any, storage: Storage
) -> None:
    user = new_user()
    data = bytes(range(256)) * 4096  # 1 MiB
    url = create(api, user, len(data)).headers["location"]
    parts = httpx.URL(base_url)
    head = (
        f"PATCH {url} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
        f"Authorization: {user.headers['Authorization']}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.host, parts.port), timeout=60) as first:
        first.sendall(head + data[:300_000])  # the first PATCH holds the upload, half sent
        time.sleep(1)
        started = time.monotonic()
        second = patch(api, user, url, 0, b"\xff" * len(data))
        waited = time.monotonic() - started
        assert second.status_code == 423, second.text
        assert second.json()["detail"] == "another request is writing to this upload; retry in a moment"
        assert 9 < waited < 30, waited  # it waited its turn (10 s) before saying so
        first.sendall(data[300_000:])
        answer = first.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 204"), answer
    assert storage.read_bytes(layout.source_key(url.rsplit("/", 1)[1])) == data


def test_an_upload_whose_finish_a_crash_cut_short_is_finished_by_the_next_head(
    api: httpx.Client, new_user: Any, storage: Storage, catalog: Any, clip: Any
) -> None:
    from cluster.upload_lifecycle import expiry

    user = new_user()
    data = clip(seconds=3).read_bytes()
    url = create(api, user, len(data), title="finished late").headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    # What a replica leaves when it dies right after recording the last byte: every byte stored
    # and recorded, no video yet.
    storage.write_bytes(layout.upload_data_key(upload_id), data)
    assert ray.get(catalog.record_upload_progress.remote(upload_id, 0, len(data), {}, expiry(60)))
    assert api.get(f"/v1/videos/{upload_id}", headers=user.headers).status_code == 404
    answer = api.head(url, headers={**user.headers, **TUS})
    assert answer.status_code == 200 and answer.headers["upload-video-id"] == upload_id
    assert storage.read_bytes(layout.source_key(upload_id)) == data
    video = api.get(f"/v1/videos/{upload_id}", headers=user.headers).json()
    assert (video["title"], video["status"] in ("queued", "processing", "ready")) == ("finished late", True)
    assert wait_finished(api, user, upload_id)["status"] == "ready"  # the dispatcher took it
