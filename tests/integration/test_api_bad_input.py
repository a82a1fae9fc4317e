"""Every wrong way into the API gets a clear JSON answer and leaves no row or file behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray

from cluster.settings import Settings
from cluster.storage import Storage

FORM = {"title": "a title"}
FAKE_MANIFEST = b"<MPD/>\n"
FAKE_SEGMENT = bytes(range(256)) * 6144
MULTIPART = "multipart/form-data; boundary=BOUNDARY"


def post_video(api: httpx.Client, user: SimpleNamespace, **kwargs: Any) -> httpx.Response:
    return api.post("/v1/videos", headers={**user.headers, **kwargs.pop("headers", {})}, **kwargs)


def uploads_of(catalog: Any, user: SimpleNamespace) -> int:
    return int(ray.get(catalog.count_uploads_since.remote(user.id, datetime(2000, 1, 1, tzinfo=UTC))))


@pytest.fixture
def nothing_left(storage: Storage) -> Iterator[None]:
    """Fails the test if it added anything under ``sources/``."""
    before = set(storage.list("sources"))
    yield
    assert set(storage.list("sources")) == before


def publish_fake_video(catalog: Any, storage: Storage, owner_id: str, visibility: str = "public") -> str:
    """A ready video with a manifest and one 1.5 MiB segment, without running the pipeline."""
    vid = uuid.uuid4().hex
    size = len(FAKE_SEGMENT)
    ray.get(catalog.create_video.remote(vid, owner_id, "fake", "", visibility, f"sources/{vid}/source", 1))
    rendition = {"name": "360p", "width": 640, "height": 360, "bandwidth": 800_000, "bytes": size}
    ready = catalog.mark_ready.remote(
        vid, duration_s=2.0, width=640, height=360, renditions=[rendition], has_audio=False, media_bytes=size
    )
    ray.get(ready)
    storage.write_bytes(f"media/{vid}/manifest.mpd", FAKE_MANIFEST)
    storage.write_bytes(f"media/{vid}/360p/seg-00001.m4s", FAKE_SEGMENT)
    return vid


def remove_fake_video(catalog: Any, storage: Storage, vid: str) -> None:
    storage.delete_prefix(f"media/{vid}")
    ray.get(catalog.delete_video.remote(vid))


@pytest.fixture
def fake_video(catalog: Any, storage: Storage, new_user: Any) -> Iterator[str]:
    vid = publish_fake_video(catalog, storage, new_user().id)
    yield vid
    remove_fake_video(catalog, storage, vid)


def test_errors_are_json_everywhere(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert "/v1/videos" in api.get("/schema/openapi.json").json()["paths"]
    missing = api.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json() == {"detail": "nothing here: /v1/nothing"}
    wrong_method = api.put("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "PUT is not allowed on /healthz"}


@pytest.mark.usefixtures("nothing_left")
@pytest.mark.parametrize(
    ("files", "data", "status", "detail"),
    [
        ({"file": ("a.mp4", b"x" * 100)}, {}, 400, "missing form field 'title'"),
        ({"file": ("a.mp4", b"x" * 100)}, {"title": "   "}, 400, "form field 'title' must not be blank"),
        (
            {"file": ("a.mp4", b"x" * 100)},
            {"title": "t" * 201},
            400,
            "form field 'title' must be at most 200 characters",
        ),
        (
            {"file": ("a.mp4", b"x" * 100)},
            {"title": "t", "description": "d" * 5001},
            400,
            "form field 'description' must be at most 5000 characters",
        ),
        (
            {"file": ("a.mp4", b"x" * 100)},
            {"title": "red \x1b[31malert"},
            400,
            "form field 'title' must not contain control characters (found U+001B); "
            "only newline and tab are allowed",
        ),
        (
            {"file": ("a.mp4", b"x" * 100)},
            {"title": "t", "description": "line one\nline\rtwo"},
            400,
            "form field 'description' must not contain control characters (found U+000D); "
            "only newline and tab are allowed",
        ),
        ({"other": ("a.mp4", b"x" * 100)}, FORM, 400, "missing form field 'file'"),
        ({"file": ("a.mp4", b"")}, FORM, 422, "the uploaded file is empty"),
        (
            {"file": ("a.mp4", b"x" * 100)},
            {**FORM, "visibility": "friends"},
            400,
            "form field 'visibility' must be 'public' or 'private', not 'friends'",
        ),
    ],
    ids=[
        "no-title",
        "blank-title",
        "long-title",
        "long-description",
        "escape-in-title",
        "carriage-return-in-description",
        "no-file",
        "empty-file",
        "bad-visibility",
    ],
)
def test_bad_form_is_rejected_and_leaves_nothing(
    api: httpx.Client, new_user: Any, catalog: Any, files: Any, data: Any, status: int, detail: str
) -> None:
    user = new_user()
    response = post_video(api, user, files=files, data=data)
    assert response.status_code == status, response.text
    assert response.json() == {"detail": detail}
    assert uploads_of(catalog, user) == 0


@pytest.mark.usefixtures("nothing_left")
def test_a_body_that_is_not_multipart_is_400(api: httpx.Client, new_user: Any, catalog: Any) -> None:
    user = new_user()
    response = post_video(api, user, json={"title": "t", "file": "AAAA"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "the body must be multipart/form-data with fields 'file' and 'title'"
    }
    cut = b'--BOUNDARY\r\nContent-Disposition: form-data; name="title"\r\n\r\nt\r\n--BOUNDARY\r\n'
    cut += b'Content-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nhalf a file'
    truncated = post_video(api, user, content=cut, headers={"Content-Type": MULTIPART})
    assert truncated.status_code == 400
    assert truncated.json() == {"detail": "the multipart body ended before its closing boundary"}
    assert uploads_of(catalog, user) == 0


@pytest.mark.usefixtures("nothing_left")
def test_over_the_size_limit_is_413(
    api: httpx.Client, new_user: Any, catalog: Any, settings: Settings
) -> None:
    user = new_user()
    limit = settings.http.max_upload_bytes
    detail = f"the upload is larger than the limit of {settings.http.max_upload_mb} MB"
    # Announced: refused from Content-Length before the body is read.
    announced = post_video(api, user, files={"file": ("big.mp4", bytes(limit + 2 * 1024 * 1024))}, data=FORM)
    assert announced.status_code == 413 and announced.json() == {"detail": detail}

    # Not announced (chunked): refused once the file part passes the limit; the partial source goes.
    def chunked() -> Iterator[bytes]:
        yield b'--BOUNDARY\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n--BOUNDARY\r\n'
        yield b'Content-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        block = bytes(1024 * 1024)
        for _ in range(limit // len(block) + 2):
            yield block
        yield b"\r\n--BOUNDARY--\r\n"

    streamed = post_video(api, user, content=chunked(), headers={"Content-Type": MULTIPART})
    assert streamed.status_code == 413 and streamed.json() == {"detail": detail}
    assert uploads_of(catalog, user) == 0


def test_upload_rate_limit_is_429(api: httpx.Client, new_user: Any, catalog: Any, settings: Settings) -> None:
    user = new_user()
    per_hour = settings.http.uploads_per_hour
    # Rows as earlier uploads would leave them, without making the pipeline work for them.
    seeded = [uuid.uuid4().hex for _ in range(per_hour)]
    ray.get(
        [
            catalog.create_video.remote(vid, user.id, "seed", "", "private", f"sources/{vid}/source", 1)
            for vid in seeded
        ]
    )
    try:
        response = post_video(api, user, files={"file": ("a.mp4", b"x" * 100)}, data=FORM)
        assert response.status_code == 429
        assert response.json() == {"detail": f"upload limit reached: {per_hour} uploads per hour"}
        # The seeded uploads leave the hour an hour after they were made, seconds ago.
        assert 3500 < int(response.headers["retry-after"]) <= 3600
        assert uploads_of(catalog, user) == per_hour
    finally:
        ray.get([catalog.delete_video.remote(vid) for vid in seeded])


def test_files_that_are_not_videos_are_accepted_then_fail_in_the_pipeline(
    api: httpx.Client, new_user: Any, clip: Any, tmp_path: Path, storage: Storage
) -> None:
    user = new_user()
    whole = clip(seconds=3).read_bytes()
    for name, content in [
        ("notes.mp4", b"just some text, not a video\n"),
        ("cut.mp4", whole[: len(whole) // 2]),
    ]:
        response = post_video(api, user, files={"file": (name, content)}, data=FORM)
        assert response.status_code == 202, response.text
        vid = response.json()["id"]
        assert storage.read_bytes(f"sources/{vid}/source") == content
        # The failure itself is the pipeline tests' business: free the workers.
        assert api.delete(f"/v1/videos/{vid}", headers=user.headers).status_code == 204
        assert storage.list(f"sources/{vid}") == []


@pytest.mark.parametrize(
    "video_id", ["0" * 32, "abc", "Z" * 32, "0" * 33], ids=["unknown", "short", "not-hex", "too-long"]
)
def test_unknown_and_malformed_ids_are_404(api: httpx.Client, new_user: Any, video_id: str) -> None:
    user = new_user()
    detail = {"detail": f"no video with id {video_id!r}"}
    for method, path in [
        ("GET", f"/v1/videos/{video_id}"),
        ("GET", f"/v1/videos/{video_id}/status"),
        ("GET", f"/media/{video_id}/manifest.mpd"),
        ("DELETE", f"/v1/videos/{video_id}"),
    ]:
        response = api.request(method, path, headers=user.headers)
        assert response.status_code == 404, (method, path)
        assert response.json() == detail, (method, path)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/videos/..%2F..%2Fetc%2Fpasswd",
        "/v1/videos/..%2F..%2Fetc%2Fpasswd/status",
        "/media/..%2F..%2Fetc/passwd",
        f"/media/{'0' * 32}/..%2F..%2F..%2Fcatalog.duckdb",
        f"/media/{'0' * 32}/%2Fetc%2Fpasswd",
        f"/media/{'0' * 32}/manifest.mpd%00.jpg",
    ],
)
def test_path_like_ids_and_files_are_404(api: httpx.Client, new_user: Any, path: str) -> None:
    response = api.get(path, headers=new_user().headers)
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith(("nothing here: ", "no video with id ", "no such media file: ")), detail


def test_another_users_private_video_does_not_exist_for_them(api: httpx.Client, new_user: Any) -> None:
    owner, stranger = new_user(), new_user()
    files = {"file": ("notes.mp4", b"not a video, the pipeline will refuse it\n")}
    private = post_video(api, owner, files=files, data={"title": "mine", "visibility": "private"}).json()[
        "id"
    ]
    public = post_video(api, owner, files=files, data={"title": "ours", "visibility": "public"}).json()["id"]
    try:
        missing = {"detail": f"no video with id {private!r}"}
        for method, path in [
            ("GET", f"/v1/videos/{private}"),
            ("GET", f"/v1/videos/{private}/status"),
            ("GET", f"/media/{private}/manifest.mpd"),
            ("DELETE", f"/v1/videos/{private}"),
        ]:
            for headers in (stranger.headers, {}):
                response = api.request(method, path, headers=headers)
                expected = 401 if method == "DELETE" and not headers else 404
                assert response.status_code == expected, (method, path, headers)
                if expected == 404:
                    assert response.json() == missing
        listed = api.get("/v1/videos", params={"limit": 100}, headers=stranger.headers).json()
        ids = {item["id"] for item in listed["items"]}
        assert public in ids and private not in ids

        assert api.get(f"/v1/videos/{public}", headers=stranger.headers).json()["title"] == "ours"
        refused = api.delete(f"/v1/videos/{public}", headers=stranger.headers)
        assert refused.status_code == 403 and refused.json() == {
            "detail": "only the owner may delete a video"
        }
        mine = api.get("/v1/videos", params={"limit": 100}, headers=owner.headers).json()
        assert {private, public} <= {item["id"] for item in mine["items"]}
    finally:
        for vid in (private, public):
            assert api.delete(f"/v1/videos/{vid}", headers=owner.headers).status_code == 204


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/v1/videos?limit=0", "invalid request: limit: Expected `int` >= 1"),
        ("/v1/videos?limit=101", "invalid request: limit: Expected `int` <= 100"),
        ("/v1/videos?offset=-1", "invalid request: offset: Expected `int` >= 0"),
        ("/v1/videos?limit=many", "invalid request: limit: Expected `int`, got `str`"),
        # Past DuckDB's BIGINT (was a 500), and past Python's int() digit limit.
        ("/v1/videos?offset=9223372036854775808", "invalid request: offset: Expected `int` <= 2147483647"),
        ("/v1/videos?offset=" + "9" * 5000, "invalid request: offset: Integer value out of range"),
        ("/v1/videos?limit=%C2%B2", "invalid request: limit: Expected `int`, got `str`"),
        (f"/v1/videos/{'0' * 32}/status?wait=-1", "invalid request: wait: Expected `float` >= 0.0"),
        (
            f"/v1/videos/{'0' * 32}/status?wait=100000",
            "invalid request: wait: Expected `float` <= {max_wait}.0",
        ),
        (f"/v1/videos/{'0' * 32}/status?wait=nan", "invalid request: wait: Expected `float` >= 0.0"),
    ],
)
def test_bad_query_parameters_are_400(
    api: httpx.Client, new_user: Any, settings: Settings, path: str, detail: str
) -> None:
    response = api.get(path, headers=new_user().headers)
    assert response.status_code == 400
    assert response.json() == {"detail": detail.format(max_wait=settings.http.max_wait_s)}


def test_status_long_poll_returns_after_the_wait(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    vid = post_video(api, user, files={"file": ("n.mp4", b"text")}, data=FORM).json()["id"]
    try:
        # Whatever the job does, the answer comes within the wait (plus one poll and HTTP).
        started = datetime.now(UTC)
        response = api.get(f"/v1/videos/{vid}/status", params={"wait": 1}, headers=user.headers)
        assert response.status_code == 200
        assert datetime.now(UTC) - started < timedelta(seconds=3)
        body = response.json()
        assert body["id"] == vid and body["status"] in ("queued", "processing", "failed")
        assert set(body) == {
            "id", "status", "step", "progress", "chunks_done", "chunks_total", "error", "updated_at",
        }  # fmt: skip
    finally:
        api.delete(f"/v1/videos/{vid}", headers=user.headers)


def test_a_large_upload_is_stored_byte_for_byte(
    api: httpx.Client, new_user: Any, storage: Any, tmp_path: Any
) -> None:
    """Many body chunks, and bytes that look like the start of a multipart boundary, arrive intact."""
    import hashlib
    import os

    data = os.urandom(6 * 1024 * 1024) + b"\r\n--" * 5000 + os.urandom(1024 * 1024)
    path = tmp_path / "noise.mp4"
    path.write_bytes(data)
    user = new_user()
    with path.open("rb") as body:
        response = api.post(
            "/v1/videos",
            headers=user.headers,
            files={"file": ("noise.mp4", body, "video/mp4")},
            data={"title": "noise"},
        )
    assert response.status_code == 202, response.text
    vid = response.json()["id"]
    stored = storage.read_bytes(f"sources/{vid}/source")
    assert len(stored) == len(data)
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    assert api.delete(f"/v1/videos/{vid}", headers=user.headers).status_code == 204


def test_readiness_tells_anyone_counts_never_video_ids(
    api: httpx.Client, new_user: Any, settings: Settings
) -> None:
    user = new_user()
    private = post_video(api, user, files={"file": ("n.mp4", b"not a video")}, data=FORM).json()["id"]
    try:
        ready = api.get("/readyz")  # anonymous, right after a private upload was queued
        assert ready.status_code == 200
        body = ready.json()
        assert set(body) == {"status", "dispatcher"} and body["status"] == "ok"
        counts = body["dispatcher"]
        assert set(counts) == {"running", "queued", "slots"}
        assert all(isinstance(value, int) for value in counts.values()), counts
        assert counts["slots"] == settings.pipeline.jobs_in_flight
        assert private not in ready.text
    finally:
        api.delete(f"/v1/videos/{private}", headers=user.headers)


@pytest.mark.parametrize(
    ("range_header", "status", "body_slice", "content_range"),
    [
        (b"bytes=0-9", 206, slice(0, 10), "bytes 0-9/1572864"),
        (b"bytes=1572860-", 206, slice(1572860, None), "bytes 1572860-1572863/1572864"),
        (b"bytes=\xb2-", 200, slice(None), None),  # '\xb2' is '²' in latin-1: isdigit() said yes
        (b"bytes=0-" + b"9" * 5000, 200, slice(None), None),  # int() refuses 5000 digits
        (b"bytes=5-3", 200, slice(None), None),  # invalid range: ignored, as RFC 9110 says
        (b"bytes=" + b"9" * 19 + b"-", 416, None, "bytes */1572864"),
    ],
    ids=["first-ten", "tail", "superscript-two", "5000-digits", "backwards", "past-the-end"],
)
def test_odd_ranges_get_the_file_or_a_416_never_a_500(
    api: httpx.Client,
    fake_video: str,
    range_header: bytes,
    status: int,
    body_slice: slice | None,
    content_range: str | None,
) -> None:
    response = api.get(f"/media/{fake_video}/360p/seg-00001.m4s", headers={"Range": range_header})
    assert response.status_code == status, response.text[:200]
    assert response.headers.get("content-range") == content_range
    if body_slice is None:
        assert response.json() == {"detail": "the requested range is outside the file (1572864 bytes)"}
    else:
        assert response.content == FAKE_SEGMENT[body_slice]


@pytest.mark.parametrize("path", ["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"])
def test_a_json_body_over_the_limit_is_413(api: httpx.Client, path: str) -> None:
    body = b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x", "refresh_token": "x"}'
    response = api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is too large"}
