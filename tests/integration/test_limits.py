"""Limits that hold under concurrency, over real HTTP: uploads per hour, login and registration
throttles. They run against a second Serve application of the same API with strict limits
(``/limits``), beside the suite's lenient one; both share the one catalog actor. Clients of
their own come from loopback addresses of their own (Linux routes all of 127.0.0.0/8 to lo), as
far apart as real ones: through HAProxy, like everyone. Also: the catalog's files are owner-only."""

from __future__ import annotations

import dataclasses
import random
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from cluster.settings import Settings

PREFIX = "/limits"
UPLOADS_PER_HOUR = 30
ATTEMPTS_PER_USERNAME = 3
ATTEMPTS_PER_ADDRESS = 6
WINDOW_S = 120
SIDECAR_POSTS_PER_HOUR = 4


@pytest.fixture(scope="module")
def strict(deployment: Any, settings: Settings, base_url: str) -> Iterator[httpx.Client]:
    from ray import serve

    from serve.deployment import VodrayApi

    strict_settings = dataclasses.replace(
        settings,
        http=dataclasses.replace(settings.http, uploads_per_hour=UPLOADS_PER_HOUR, uploads_in_flight=1000),
        auth=dataclasses.replace(
            settings.auth,
            attempts_per_username=ATTEMPTS_PER_USERNAME,
            attempts_per_address=ATTEMPTS_PER_ADDRESS,
            attempts_window_s=WINDOW_S,
        ),
        subtitles=dataclasses.replace(settings.subtitles, sidecar_posts_per_hour=SIDECAR_POSTS_PER_HOUR),
    )
    serve.run(VodrayApi.bind(strict_settings), name="vodray-limits", route_prefix=PREFIX)  # type: ignore[attr-defined]
    try:
        with httpx.Client(base_url=f"{base_url}{PREFIX}", timeout=120) as client:
            deadline = time.monotonic() + 60
            while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.25)
            yield client
    finally:
        serve.delete("vodray-limits")


@pytest.fixture
def client_from(base_url: str) -> Iterator[Callable[[str], httpx.Client]]:
    """``client_from(address)``: a client of the strict app whose connections come from ``address``."""
    clients: list[httpx.Client] = []

    def connect(address: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        clients.append(httpx.Client(base_url=f"{base_url}{PREFIX}", timeout=120, transport=transport))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


def new_address() -> str:
    """A loopback address no other test uses (the suite's own clients come from 127.0.0.1)."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def assert_throttled(response: httpx.Response, detail_start: str, at_most_s: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["detail"].startswith(detail_start)
    assert 0 < int(response.headers["retry-after"]) <= at_most_s


def test_forty_concurrent_uploads_against_a_limit_of_thirty(strict: httpx.Client, new_user: Any) -> None:
    user = new_user()
    start = threading.Barrier(40)
    began = time.monotonic()

    def upload(i: int) -> httpx.Response:
        start.wait()
        return strict.post(
            "/v1/videos",
            headers=user.headers,
            files={"file": (f"{i}.mp4", b"not a video, fails at probe" * 100, "video/mp4")},
            data={"title": f"upload {i}"},
        )

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(upload, range(40)))
    elapsed = time.monotonic() - began

    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert (len(accepted), len(refused)) == (30, 10), [
        a.text for a in answers if a.status_code not in (202, 429)
    ]
    for answer in refused:
        assert answer.json() == {"detail": "upload limit reached: 30 uploads per hour"}
        # The truth: the oldest of the 30 reservations, made seconds ago, leaves the hour then.
        assert 3600 - elapsed - 2 <= int(answer.headers["retry-after"]) <= 3600

    # Deleting the uploads frees nothing: the ledger counts every upload started this hour.
    for answer in accepted:
        assert strict.delete(f"/v1/videos/{answer.json()['id']}", headers=user.headers).status_code == 204
    again = strict.post(
        "/v1/videos", headers=user.headers, files={"file": ("x.mp4", b"x")}, data={"title": "t"}
    )
    assert again.status_code == 429 and again.json() == {
        "detail": "upload limit reached: 30 uploads per hour"
    }
    listed = strict.get("/v1/videos", headers=user.headers, params={"limit": 100}).json()
    assert [v for v in listed["items"] if v["owner"] == user.id] == []


def test_uploads_refused_before_their_video_existed_still_count(strict: httpx.Client, new_user: Any) -> None:
    user = new_user()
    for i in range(UPLOADS_PER_HOUR):  # streamed, then refused: no title
        refused = strict.post("/v1/videos", headers=user.headers, files={"file": (f"{i}.mp4", b"x" * 1000)})
        assert refused.status_code == 400 and refused.json() == {"detail": "missing form field 'title'"}

    blocked = strict.post(
        "/v1/videos", headers=user.headers, files={"file": ("a.mp4", b"x")}, data={"title": "t"}
    )

    assert blocked.status_code == 429 and blocked.json() == {
        "detail": "upload limit reached: 30 uploads per hour"
    }
    listed = strict.get("/v1/videos", headers=user.headers, params={"limit": 100}).json()["items"]
    assert [v for v in listed if v["owner"] == user.id] == []  # 30 slots used, no video made


def test_failed_logins_are_throttled_per_username(
    strict: httpx.Client, client_from: Callable[[str], httpx.Client], new_user: Any
) -> None:
    user = new_user()
    wrong = {"username": user.username, "password": "not the password"}
    for _ in range(ATTEMPTS_PER_USERNAME):
        assert client_from(new_address()).post("/v1/auth/login", json=wrong).status_code == 401

    # From anywhere, even with the right password, until the oldest failure leaves the window.
    right = {"username": user.username, "password": user.password}
    blocked = client_from(new_address()).post("/v1/auth/login", json=right)
    assert_throttled(blocked, "too many attempts for this username; try again in ", WINDOW_S)
    assert blocked.json()["detail"].endswith(f" {blocked.headers['retry-after']} s")
    assert "access_token" not in blocked.text


def test_successful_logins_do_not_use_up_the_username(
    strict: httpx.Client, client_from: Callable[[str], httpx.Client], new_user: Any
) -> None:
    user = new_user()
    right = {"username": user.username, "password": user.password}
    for _ in range(ATTEMPTS_PER_USERNAME + 2):
        assert client_from(new_address()).post("/v1/auth/login", json=right).status_code == 200


def test_logins_and_registrations_are_throttled_per_address_even_in_parallel(
    strict: httpx.Client, client_from: Callable[[str], httpx.Client]
) -> None:
    client = client_from(new_address())
    start = threading.Barrier(10)

    def attempt(i: int) -> httpx.Response:
        start.wait()
        if i % 2:
            body = {"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "whatever password"}
            return client.post("/v1/auth/login", json=body)
        body = {"username": f"r{uuid.uuid4().hex[:10]}", "password": "a good password"}
        return client.post("/v1/auth/register", json=body)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(attempt, range(10)))

    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 10 - ATTEMPTS_PER_ADDRESS, [a.text for a in answers]
    assert all(a.status_code in (201, 401) for a in answers if a.status_code != 429)
    for answer in refused:
        assert_throttled(answer, "too many attempts for this address; try again in ", WINDOW_S)
    # Another client is not affected.
    other = {"username": f"r{uuid.uuid4().hex[:10]}", "password": "a good password"}
    assert client_from(new_address()).post("/v1/auth/register", json=other).status_code == 201


def test_clients_are_throttled_by_their_own_address_whatever_header_they_send(
    strict: httpx.Client, client_from: Callable[[str], httpx.Client]
) -> None:
    first, second = new_address(), new_address()
    from_first, from_second = client_from(first), client_from(second)

    def login(client: httpx.Client, **headers: str) -> httpx.Response:
        body = {"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "whatever password"}
        return client.post("/v1/auth/login", json=body, headers=headers)

    for _ in range(ATTEMPTS_PER_ADDRESS):
        wrong = login(from_first)
        assert wrong.status_code == 401 and wrong.json() == {"detail": "wrong username or password"}
    assert_throttled(login(from_first), "too many attempts for this address; try again in ", WINDOW_S)
    # Claiming to forward for someone else, even for the other real client, changes nothing:
    # HAProxy adds the address the connection came from after whatever the client sent.
    for claimed in ("203.0.113.7", second, f"198.51.100.4, {second}"):
        spoofed = login(from_first, **{"X-Forwarded-For": claimed})
        assert_throttled(spoofed, "too many attempts for this address; try again in ", WINDOW_S)

    # The other client still has all its attempts, whoever it claims to be.
    name = f"r{uuid.uuid4().hex[:10]}"
    registered = from_second.post(
        "/v1/auth/register",
        json={"username": name, "password": "a good password"},
        headers={"X-Forwarded-For": first},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["username"] == name
    tokens = from_second.post("/v1/auth/login", json={"username": name, "password": "a good password"})
    assert tokens.status_code == 200 and tokens.json()["access_token"]
    for _ in range(ATTEMPTS_PER_ADDRESS - 2):  # a registration and a login taken so far
        assert login(from_second).status_code == 401
    assert_throttled(login(from_second), "too many attempts for this address; try again in ", WINDOW_S)


def test_catalog_files_are_owner_only(catalog: Any, settings: Settings, new_user: Any) -> None:
    new_user()  # something written since the catalog opened
    path = settings.catalog.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    assert stat.S_IMODE((settings.data_dir / "jwt-secret").stat().st_mode) == 0o600


def test_subtitle_files_per_user_per_hour_on_every_replica(
    strict: httpx.Client, new_user: Any, catalog: Any, storage: Any
) -> None:
    """Counted by the catalog, so two replicas cannot double a user's budget; counted before the
    file is read: a refused post keeps nothing."""
    import ray

    from cluster import layout

    user = new_user()
    vid = uuid.uuid4().hex
    ray.get(catalog.create_video.remote(vid, user.id, "queued", "", "private", f"sources/{vid}/source", 1))
    srt = b"1\n00:00:00,500 --> 00:00:01,000\nhello\n"
    try:
        codes = []
        for take in range(SIDECAR_POSTS_PER_HOUR + 2):
            answer = strict.post(
                f"/v1/videos/{vid}/subtitles",
                headers=user.headers,
                data={"lang": "fr"},
                files={"file": (f"take{take}.srt", srt)},
            )
            codes.append(answer.status_code)
            if answer.status_code == 429:
                assert_throttled(
                    answer, f"subtitle file limit reached: {SIDECAR_POSTS_PER_HOUR} per hour", 3600
                )
        assert codes == [201] * SIDECAR_POSTS_PER_HOUR + [429, 429]
        stored = storage.list(layout.sidecar_prefix(vid))
        assert stored == [layout.sidecar_key(vid, SIDECAR_POSTS_PER_HOUR - 1, "fr", "srt")]
    finally:
        storage.delete_prefix(layout.sidecar_prefix(vid))
        ray.get(catalog.delete_video.remote(vid))
