"""SIGKILL of each kind of process in the middle of a job: the stack heals.

For the catalog actor, the dispatcher, an API replica (of the two the API runs), a chunk encode
and an upload task on S3: a video is being processed when one process of that kind, found by its
title under this test session's Ray (``ray::CatalogActor``, ``ray::Dispatcher``,
``ray::ServeReplica:vodray:VodrayApi``, ``ray::encode:{id}:...``, ``ray::upload:{id}:...``), gets
SIGKILL. Then the job ends ready, every earlier video is still listed, ready and playable, the
user logs in with the same password and refreshes with the refresh token from before, and the
API answered again within the bound (measured by four pollers sending ``GET /v1/videos`` with a
token one after another: "back in" is from the kill to the end of the last request that got no
200; "slowest" is the longest request answered after the kill, which for the catalog is how long
a request waited for it). The table of what was measured is printed at the end of the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray

from catalog.actor import get_catalog
from cluster.layout import source_key
from cluster.processes import Process, descendants
from cluster.scratch import sweep
from cluster.settings import Settings, StorageSettings
from cluster.storage import Storage
from tests.integration.client import register_user, upload
from tests.integration.s3_proxy import S3Proxy

JOB_TIMEOUT_S = 300.0


@dataclass
class Poll:
    started: float
    ended: float
    status: int  # 0: no answer (connection refused, reset, timed out)
    retry_after: str | None


class ApiWatch:
    """Pollers sending ``GET /v1/videos`` with a token, one request after another each."""

    def __init__(self, base_url: str, headers: dict[str, str], pollers: int = 4) -> None:
        self.polls: list[Poll] = []
        self._halt = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(base_url, headers, i * 0.0125), daemon=True)
            for i in range(pollers)
        ]

    def _poll(self, base_url: str, headers: dict[str, str], offset_s: float) -> None:
        time.sleep(offset_s)
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            while not self._halt.is_set():
                started = time.monotonic()
                try:
                    answer = client.get("/v1/videos", params={"limit": 1})
                    status, retry_after = answer.status_code, answer.headers.get("retry-after")
                except httpx.HTTPError:
                    status, retry_after = 0, None
                self.polls.append(Poll(started, time.monotonic(), status, retry_after))
                time.sleep(0.05)

    def __enter__(self) -> ApiWatch:
        for thread in self._threads:
            thread.start()
        time.sleep(0.5)  # a baseline before anything is killed
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(60)

    def back_in(self, killed_at: float) -> float:
        """Seconds from ``killed_at`` to the end of the last request that got no 200."""
        failed = [p.ended for p in self.polls if p.ended >= killed_at and p.status != 200]
        return max(failed, default=killed_at) - killed_at

    def slowest(self, killed_at: float) -> float:
        """The longest request among those answered after ``killed_at`` (the machine's load shows
        here too: a request on this shared 2-core machine may take a second without any fault)."""
        return max((p.ended - p.started for p in self.polls if p.ended >= killed_at), default=0.0)

    def statuses(self, killed_at: float) -> Counter[int]:
        return Counter(p.status for p in self.polls if p.ended >= killed_at)


@dataclass
class Earlier:
    """What must survive every fault: a user with a login, and every video made before."""

    user: SimpleNamespace
    videos: list[str] = field(default_factory=list)
    table: list[tuple[str, str, str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def earlier(api: httpx.Client, clip: Any, request: pytest.FixtureRequest) -> Iterator[Earlier]:
    state = Earlier(register_user(api))
    vid = upload(api, state.user, clip(seconds=3), title="before the faults").json()["id"]
    assert wait_ready(api, state.user, vid)["status"] == "ready"
    state.videos.append(vid)
    yield state
    # What the killed workers left in the temp dir (a sweep would wait 5 min to be sure).
    sweep(grace_s=0, unowned_after_s=math.inf)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and state.table:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(
                "| process killed (SIGKILL mid-job) | API back in | slowest answer | API answers | job |"
            )
            reporter.write_line("| --- | --- | --- | --- | --- |")
            for row in state.table:
                reporter.write_line("| " + " | ".join(row) + " |")


def wait_ready(api: httpx.Client, user: SimpleNamespace, video_id: str) -> dict[str, Any]:
    """The finished status. A 503 (the catalog restarting, a replica gone) is waited out and must
    say when to retry; a long poll cut by its replica's death is asked again."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            answer = api.get(f"/v1/videos/{video_id}/status", params={"wait": 5}, headers=user.headers)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if answer.status_code == 503:
            assert answer.headers.get("retry-after"), answer.headers
            time.sleep(float(answer.headers["retry-after"]))
            continue
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in ("ready", "failed"):
            return dict(answer.json())
    raise AssertionError(f"video {video_id} did not finish in {JOB_TIMEOUT_S:g} s")


def wait_encoding(api: httpx.Client, user: SimpleNamespace, video_id: str) -> None:
    """Until at least one chunk is encoded and the job is still encoding: the middle of the job."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status = api.get(f"/v1/videos/{video_id}/status", headers=user.headers).json()
        assert status["status"] in ("queued", "processing"), f"finished before the kill: {status}"
        if status["step"] == "encode" and (status.get("chunks_done") or 0) >= 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"video {video_id} never got to encoding")


def titled(prefix: str) -> list[Process]:
    """Processes of this test session's Ray whose title starts with ``prefix``."""
    return [p for p in descendants(os.getpid()) if p.argv and p.argv[0].startswith(prefix)]


def kill_one(prefix: str, timeout_s: float = 120, ready: Any = None) -> float:
    """SIGKILL the first process titled ``prefix`` that shows up (once ``ready()`` says so, if
    given); returns when (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = titled(prefix)
        if found and (ready is None or ready()):
            os.kill(found[0].pid, signal.SIGKILL)
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"no process titled {prefix!r} appeared")


def assert_kept(api: httpx.Client, state: Earlier) -> None:
    """The login, its refresh token and every earlier video survived."""
    user = state.user
    login = api.post("/v1/auth/login", json={"username": user.username, "password": user.password})
    assert login.status_code == 200, login.text
    refreshed = api.post("/v1/auth/refresh", json={"refresh_token": user.refresh})
    assert refreshed.status_code == 200, refreshed.text
    user.refresh = refreshed.json()["refresh_token"]
    user.headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    listed = api.get("/v1/videos", params={"limit": 100}, headers=user.headers).json()["items"]
    by_id = {item["id"]: item for item in listed}
    for vid in state.videos:
        assert by_id[vid]["status"] == "ready", by_id.get(vid)
        playlist = api.get(f"/media/{vid}/master.m3u8", headers=user.headers)
        assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U"), vid


def record(state: Earlier, process: str, watch: ApiWatch, killed_at: float, outcome: str) -> float:
    back, slowest = watch.back_in(killed_at), watch.slowest(killed_at)
    seen = ", ".join(f"{n}x {code or 'no answer'}" for code, n in sorted(watch.statuses(killed_at).items()))
    state.table.append((process, f"{back:.1f} s", f"{slowest:.1f} s", seen, outcome))
    return back


def fault_mid_encode(
    api: httpx.Client, base_url: str, settings: Settings, state: Earlier, clip: Any, prefix: str
) -> tuple[str, ApiWatch, float, dict[str, Any]]:
    """Upload a 20 s 720p clip, SIGKILL a process titled ``prefix`` (``{id}`` filled in) mid-encode,
    wait for the job; returns the video id, the watch, when it was killed and the catalog's row."""
    source = clip(seconds=20, width=1280, height=720, fps=25, audio=True, subtitles=False)
    vid = upload(api, state.user, source, title=f"fault {prefix}").json()["id"]
    wait_encoding(api, state.user, vid)
    with ApiWatch(base_url, state.user.headers) as watch:
        killed_at = kill_one(prefix.format(id=vid))
        finished = wait_ready(api, state.user, vid)
        time.sleep(1.0)  # the pollers see the API settled
    assert finished["status"] == "ready", finished
    video = get_catalog(settings).get_video.remote(vid).result()
    return vid, watch, killed_at, video


@pytest.mark.parametrize(
    ("process", "prefix", "attempts", "bound_s"),
    [
        ("catalog actor", "ray::CatalogActor", 1, 15.0),
        ("dispatcher", "ray::Dispatcher", 2, 2.0),
        ("API replica (one of 2)", "ray::ServeReplica:vodray:VodrayApi", 1, 2.0),
        ("chunk encode task", "ray::encode:{id}:", 1, 2.0),
    ],
)
def test_a_killed_process_heals(
    api: httpx.Client,
    base_url: str,
    settings: Settings,
    earlier: Earlier,
    clip: Any,
    process: str,
    prefix: str,
    attempts: int,
    bound_s: float,
) -> None:
    vid, watch, killed_at, video = fault_mid_encode(api, base_url, settings, earlier, clip, prefix)
    back = record(earlier, process, watch, killed_at, f"ready, attempts {video['job']['attempts']}")

    assert video["status"] == "ready" and video["job"]["attempts"] == attempts, video["job"]
    statuses = watch.statuses(killed_at)
    if process == "catalog actor":
        # While it restarts a request waits for it (VODRAY_CATALOG_API_WAIT_S), or answers 503 with
        # Retry-After: never a 500.
        assert set(statuses) <= {200, 503}, statuses
        assert all(p.retry_after for p in watch.polls if p.status == 503)
        assert watch.slowest(killed_at) <= settings.catalog.api_wait_s + 5
    assert back <= bound_s, (back, statuses)
    earlier.videos.append(vid)
    assert_kept(api, earlier)


@pytest.mark.s3
def test_a_killed_upload_task_on_s3_heals(
    api: httpx.Client,
    base_url: str,
    settings: Settings,
    earlier: Earlier,
    catalog: Any,
    clip: Any,
    s3_endpoint: str,
    s3_bucket: str,
) -> None:
    from pipelines.job import Job

    # Every PUT slowed down, two at a time: the upload task runs for seconds, long enough to kill.
    with S3Proxy(s3_endpoint, slow_put_share=1.0, slow_put_s=0.4) as proxy:
        storage = Storage(
            StorageSettings(
                url=f"s3://{s3_bucket}/vod", s3_endpoint_url=proxy.url, upload_concurrency=2, upload_tasks=1
            )
        )
        s3_settings = dataclasses.replace(settings, storage=storage.settings)
        vid = uuid.uuid4().hex
        storage.put_file(clip(seconds=6), source_key(vid))
        ray.get(catalog.create_video.remote(vid, earlier.user.id, "on s3", "", "private", source_key(vid), 1))

        def media_put() -> bool:  # killed while its batch is half put (a segment of it landed;
            # the storyboard task puts its two files itself, outside the upload batches)
            return any(f"/media/{vid}/" in key and key.endswith(".m4s") for key in proxy.stored)

        with ApiWatch(base_url, earlier.user.headers) as watch:
            loop = asyncio.new_event_loop()
            try:
                job = loop.create_task(Job(vid, s3_settings, catalog).run())
                killer = loop.run_in_executor(None, kill_one, f"ray::upload:{vid}:", JOB_TIMEOUT_S, media_put)
                summary, killed_at = loop.run_until_complete(asyncio.gather(job, killer))
            finally:
                loop.close()
        puts = sum(1 for key in proxy.stored if f"/media/{vid}/" in key)

    video = get_catalog(settings).get_video.remote(vid).result()
    record(earlier, "upload task (S3)", watch, killed_at, f"ready, attempts {video['job']['attempts']}")
    assert summary is not None and video["status"] == "ready" and video["job"]["attempts"] == 1
    direct = Storage(dataclasses.replace(storage.settings, s3_endpoint_url=s3_endpoint))
    published = set(direct.list(f"media/{vid}"))
    assert {f"media/{vid}/master.m3u8", f"media/{vid}/manifest.mpd"} <= published
    assert sum(1 for key in published if key.endswith(".m4s")) >= 6
    assert puts > len(published), "the killed batch was put again"
    assert watch.back_in(killed_at) <= 2.0
    assert_kept(api, earlier)
