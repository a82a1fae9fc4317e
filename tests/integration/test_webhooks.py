"""Webhooks end to end: real Ray (catalog, dispatcher, notifier), real HTTP to the API, a real
receiver on loopback, and every delivery verified with the standardwebhooks package's verifier.

The session retries on ``0,1,2,4,8,16`` (six attempts in about 31 s) and lets webhooks reach
loopback only (``VODRAY_WEBHOOK_ALLOW_PRIVATE=1``, ``VODRAY_WEBHOOK_NETWORKS=127.0.0.0/8,::1/128``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray

from tests.integration.client import upload, wait_finished
from tests.webhook_receiver import Answer, Receiver, receiver

SRT = b"1\n00:00:00,200 --> 00:00:01,200\nbonjour\n"


def register(
    api: httpx.Client, user: SimpleNamespace, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url} | ({"events": events} if events else {})
    answer = api.post("/v1/webhooks", headers=user.headers, json=body)
    assert answer.status_code == 201, answer.text
    created = dict(answer.json())
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    return created


def deliveries(api: httpx.Client, user: SimpleNamespace, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=user.headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def wait_until(check: Any, timeout_s: float = 60.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {timeout_s:g} s")


def ping(api: httpx.Client, user: SimpleNamespace, endpoint: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(f"/v1/webhooks/{endpoint['id']}/ping", headers=user.headers)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def test_every_event_of_a_video_life_arrives_signed_and_only_at_its_owners_endpoint(
    api: httpx.Client, new_user: Any, clip: Any, tmp_path: Path
) -> None:
    owner, other = new_user(), new_user()
    with receiver() as mine, receiver() as theirs:
        endpoint = register(api, owner, mine.url)
        register(api, other, theirs.url)  # every event type, but of its own user's videos only
        source = clip(seconds=2, width=320, height=180, audio=False, subtitles=False)
        answer = upload(api, owner, source, title="Harbour <at> dawn", visibility="public")
        assert answer.status_code == 202, answer.text
        vid = answer.json()["id"]
        assert wait_finished(api, owner, vid)["status"] == "ready"
        files = {"file": ("fr.srt", SRT)}
        added = api.post(
            f"/v1/videos/{vid}/subtitles", headers=owner.headers, data={"lang": "fr"}, files=files
        )
        assert added.status_code == 201, added.text
        shown = api.get(f"/v1/videos/{vid}", headers=owner.headers).json()
        assert api.delete(f"/v1/videos/{vid}", headers=owner.headers).status_code == 204
        broken = tmp_path / "not-a-video.mp4"
        broken.write_text("this is text, not a video\n" * 100)
        failed = upload(api, owner, broken, title="broken").json()["id"]
        assert wait_finished(api, owner, failed)["status"] == "failed"

        secret = endpoint["secret"]
        wanted = ["video.created", "video.ready", "video.subtitles.ready", "video.deleted", "video.failed"]
        wait_until(lambda: set(wanted) <= {*mine.types(secret)}, 60, "every event")
        events = {}
        for item in mine.received:
            body = item.verified(secret)  # raises unless the signature is good
            assert item.headers["webhook-id"] == body["data"]["event_id"]
            assert item.headers["content-type"] == "application/json"
            video_id = body["data"].get("video_id")
            if video_id in (vid, failed):
                events[(video_id, body["type"])] = body
        happened = sorted((body["timestamp"], t) for (v, t), body in events.items() if v == vid)
        assert [t for _, t in happened] == wanted[:4]  # each once, timed in the order they happened
        assert events[(vid, "video.created")]["data"]["video"]["status"] == "queued"
        ready = events[(vid, "video.ready")]["data"]
        assert ready["owner"] == owner.id and ready["video_id"] == vid
        before_subtitles = {k: v for k, v in shown.items() if not k.startswith("subtitles")}
        assert {k: v for k, v in ready["video"].items() if not k.startswith("subtitles")} == before_subtitles
        subtitles = events[(vid, "video.subtitles.ready")]["data"]
        assert subtitles["lang"] == "fr" and [t["lang"] for t in subtitles["video"]["subtitles"]] == ["fr"]
        assert subtitles["video"] == shown  # the same fields as the metadata route, at that moment
        deleted = events[(vid, "video.deleted")]["data"]["video"]
        assert (deleted["title"], deleted["status"]) == ("Harbour <at> dawn", "ready")  # its last fields
        broken_video = events[(failed, "video.failed")]["data"]["video"]
        assert broken_video["status"] == "failed" and broken_video["error"]
        time.sleep(2)
        assert theirs.received == []  # another user's endpoint hears of none of it
        log = deliveries(api, owner, endpoint)
        assert {d["event_type"] for d in log} >= set(wanted)
        assert all(d["state"] == "delivered" and d["attempts"][-1]["status_code"] == 200 for d in log)


def test_a_receiver_failing_three_times_gets_it_the_fourth_time(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    with receiver(Answer(500), Answer(502), Answer(503)) as hook:
        endpoint = register(api, user, hook.url)
        delivery = ping(api, user, endpoint)
        arrived = hook.wait_for(4, timeout_s=60)
        ids = {item.headers["webhook-id"] for item in arrived}
        assert ids == {delivery["event_id"]}  # the same id at every attempt: receivers dedupe by it
        for item in arrived:
            assert item.verified(endpoint["secret"])["type"] == "webhook.ping"
        gaps = [later.at - earlier.at for earlier, later in zip(arrived, arrived[1:], strict=False)]
        assert gaps[0] >= 0.7 and gaps[1] >= 1.5 and gaps[2] >= 3.0, gaps  # 1, 2, 4 s with jitter
        done = wait_until(
            lambda: [d for d in deliveries(api, user, endpoint) if d["state"] == "delivered"], 20, "delivered"
        )
        assert [a["status_code"] for a in done[0]["attempts"]] == [500, 502, 503, 200]
        assert done[0]["next_attempt_at"] is None and len(hook.received) == 4


def test_410_gone_disables_the_endpoint(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    with receiver(Answer(410)) as hook:
        endpoint = register(api, user, hook.url)
        ping(api, user, endpoint)
        shown = wait_until(
            lambda: (
                (e := api.get(f"/v1/webhooks/{endpoint['id']}", headers=user.headers).json())["enabled"]
                is False
                and e
            ),
            30,
            "the endpoint disabled",
        )
        assert shown["disabled_reason"] == "the receiver answered 410 Gone"
        assert "secret" not in shown
        [log] = deliveries(api, user, endpoint)
        assert log["state"] == "failed" and [a["status_code"] for a in log["attempts"]] == [410]
        refused = api.post(f"/v1/webhooks/{endpoint['id']}/ping", headers=user.headers)
        assert refused.status_code == 409 and "disabled" in refused.json()["detail"]
        time.sleep(2)
        assert len(hook.received) == 1  # no retry after 410
        enabled = api.patch(f"/v1/webhooks/{endpoint['id']}", headers=user.headers, json={"enabled": True})
        assert enabled.status_code == 200 and enabled.json()["disabled_reason"] is None
        retried = api.post(
            f"/v1/webhooks/{endpoint['id']}/deliveries/{log['id']}/retry", headers=user.headers
        )
        assert retried.status_code == 202, retried.text
        hook.wait_for(2)
        again = wait_until(
            lambda: deliveries(api, user, endpoint)[0]["state"] == "delivered", 20, "redelivered"
        )
        assert again


def test_an_endpoint_failing_its_whole_schedule_is_disabled_and_says_why(
    api: httpx.Client, new_user: Any
) -> None:
    user = new_user()
    with receiver(*[Answer(500)] * 6) as hook:
        endpoint = register(api, user, hook.url)
        ping(api, user, endpoint)
        hook.wait_for(6, timeout_s=60)
        shown = wait_until(
            lambda: (
                (e := api.get(f"/v1/webhooks/{endpoint['id']}", headers=user.headers).json())["enabled"]
                is False
                and e
            ),
            20,
            "the endpoint disabled",
        )
        assert shown["disabled_reason"].startswith("all 6 attempts of delivery dlv_")
        assert "the receiver answered 500" in shown["disabled_reason"]
        [log] = deliveries(api, user, endpoint)
        assert log["state"] == "failed" and len(log["attempts"]) == 6


def test_a_killed_notifier_still_delivers_the_event_waiting_for_its_retry(
    api: httpx.Client, new_user: Any, notifier: Any
) -> None:
    """The first attempt gets 503 with Retry-After: 8; the notifier is SIGKILLed while the
    delivery waits; Ray restarts it, and the retry comes when it is due (not before)."""
    user = new_user()
    with receiver(Answer(503, {"Retry-After": "8"})) as hook:
        endpoint = register(api, user, hook.url)
        delivery = ping(api, user, endpoint)
        first = hook.wait_for(1)[0]
        wait_until(lambda: deliveries(api, user, endpoint)[0]["attempts"], 20, "the attempt recorded")
        [waiting] = deliveries(api, user, endpoint)
        assert waiting["state"] == "pending" and waiting["attempts"][0]["status_code"] == 503
        pid = ray.get(notifier.stats.remote())["pid"]
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        assert title.startswith(b"ray::Notifier"), title
        os.kill(pid, signal.SIGKILL)
        arrived = hook.wait_for(2, timeout_s=60)
        second = arrived[1]
        assert second.headers["webhook-id"] == delivery["event_id"] == first.headers["webhook-id"]
        assert second.verified(endpoint["secret"])["type"] == "webhook.ping"
        assert second.at - first.at >= 7.5  # Retry-After honoured across the crash
        assert ray.get(notifier.stats.remote())["pid"] != pid  # a new process delivered it
        done = wait_until(lambda: deliveries(api, user, endpoint)[0]["state"] == "delivered", 20, "recorded")
        assert done
        time.sleep(1.5)
        assert len(hook.received) == 2


def test_a_slow_receiver_never_delays_another_endpoint(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    with receiver(*[Answer(200, delay_s=6)] * 4) as slow, receiver() as quick:
        slow_endpoint = register(api, user, slow.url)
        quick_endpoint = register(api, user, quick.url)
        for _ in range(4):
            ping(api, user, slow_endpoint)
        slow.wait_for(2)  # its two slots (VODRAY_WEBHOOK_CONCURRENCY_PER_ENDPOINT) are busy
        sent = time.monotonic()
        ping(api, user, quick_endpoint)
        [arrived] = quick.wait_for(1, timeout_s=10)
        assert arrived.at - sent < 4.0  # not behind the slow endpoint's 6 s answers
        assert len(slow.received) == 2  # the slow one never had more than its two requests at once


def test_rotating_the_secret_signs_with_both_for_a_while(
    api: httpx.Client, new_user: Any, hook: Receiver
) -> None:
    user = new_user()
    endpoint = register(api, user, hook.url)
    rotated = api.post(f"/v1/webhooks/{endpoint['id']}/secret/rotate", headers=user.headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    ping(api, user, endpoint)
    [item] = hook.wait_for(1)
    assert item.verified(new_secret) == item.verified(endpoint["secret"])
    listed = api.get("/v1/webhooks", headers=user.headers).json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]


def test_endpoints_are_private_limited_and_checked(api: httpx.Client, new_user: Any, settings: Any) -> None:
    user, other = new_user(), new_user()
    endpoint = register(api, user, "http://127.0.0.1:9/hook", ["video.ready"])
    assert endpoint["events"] == ["video.ready"]
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/ping"), ("GET", "/deliveries")]:
        answer = api.request(method, f"/v1/webhooks/{endpoint['id']}{path}", headers=other.headers)
        assert answer.status_code == 404, (method, path, answer.text)
    assert api.get("/v1/webhooks", headers=other.headers).json() == {"items": []}
    assert api.get("/v1/webhooks").status_code == 401
    refused = api.post("/v1/webhooks", headers=user.headers, json={"url": "http://10.0.0.1/"})
    assert refused.status_code == 400 and "outside VODRAY_WEBHOOK_NETWORKS" in refused.json()["detail"]
    bad_event = api.post(
        "/v1/webhooks", headers=user.headers, json={"url": "http://127.0.0.1/", "events": ["x"]}
    )
    assert bad_event.status_code == 400
    for n in range(settings.notify.webhooks_per_user - 1):
        register(api, user, f"http://127.0.0.1:9/{n}")
    over = api.post("/v1/webhooks", headers=user.headers, json={"url": "http://127.0.0.1:9/over"})
    assert over.status_code == 409 and "the most allowed" in over.json()["detail"]
    assert api.delete(f"/v1/webhooks/{endpoint['id']}", headers=user.headers).status_code == 204
    assert api.get(f"/v1/webhooks/{endpoint['id']}", headers=user.headers).status_code == 404


def test_the_webhook_body_is_json_with_the_standard_shape(
    api: httpx.Client, new_user: Any, hook: Receiver
) -> None:
    user = new_user()
    endpoint = register(api, user, hook.url)
    ping(api, user, endpoint)
    [item] = hook.wait_for(1)
    body = json.loads(item.body)
    assert set(body) == {"type", "timestamp", "data"} and body["data"]["endpoint_id"] == endpoint["id"]
    assert abs(int(item.headers["webhook-timestamp"]) - time.time()) < 60
