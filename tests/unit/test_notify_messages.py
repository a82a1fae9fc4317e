"""What a delivery says and when it is tried again: the Standard Webhooks body and signature,
the retry schedule with jitter and Retry-After, the mails and their signed links."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cluster.errors import BadRequest
from cluster.settings import WEBHOOK_RETRY_SCHEDULE_S, AuthSettings, NotifySettings, load_settings
from pipelines.notify.links import link_token, read_link
from pipelines.notify.mail import confirmation_mail, video_mail
from pipelines.notify.notifier import MAX_RETRY_AFTER_S, retry_delay_s
from pipelines.notify.webhooks import event_body, new_secret, retry_after_s, signed_headers, signing_secrets

AUTH = AuthSettings(jwt_secret="k" * 64)
NOTIFY = NotifySettings(
    public_url="https://vod.example.org", smtp_host="127.0.0.1", mail_from="vodray <v@x.org>"
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def delivery(**overrides: Any) -> dict[str, Any]:
    video = {
        "id": "a" * 32,
        "owner_id": "u1",
        "title": "Holiday <b>&amp;</b>",
        "description": "",
        "visibility": "private",
        "status": "ready",
        "duration_s": 3.0,
        "width": 640,
        "height": 360,
        "renditions": [],
        "has_audio": True,
        "created_at": "2026-03-01T11:59:00Z",
        "ready_at": "2026-03-01T12:00:00Z",
        "error": None,
        "translate_to": [],
        "subtitles": {},
    }
    row = {
        "id": "dlv_1",
        "event_id": "evt_1",
        "type": "video.ready",
        "video_id": video["id"],
        "owner_id": "u1",
        "user_id": "u1",
        "occurred_at": "2026-03-01T12:00:00Z",
        "video": video,
        "detail": {},
        "address": "ana@example.org",
        "secret": new_secret(),
        "previous_secret": None,
        "previous_secret_until": None,
    }
    return row | overrides


def test_the_body_is_standard_webhooks_shaped_and_carries_the_metadata_fields() -> None:
    body = json.loads(event_body(delivery(), "https://vod.example.org"))
    assert set(body) == {"type", "timestamp", "data"}
    assert (body["type"], body["timestamp"]) == ("video.ready", "2026-03-01T12:00:00Z")
    data = body["data"]
    assert (data["event_id"], data["video_id"], data["owner"]) == ("evt_1", "a" * 32, "u1")
    assert data["video"]["hls_url"] == f"https://vod.example.org/media/{'a' * 32}/master.m3u8"
    assert data["video"]["title"] == "Holiday <b>&amp;</b>" and data["video"]["owner"] == "u1"


def test_signatures_verify_with_the_package_and_a_rotated_secret_signs_twice_for_a_while() -> None:
    row = delivery()
    old, new = row["secret"], new_secret()
    now = datetime.now(UTC)
    rotated = row | {"secret": new, "previous_secret": old, "previous_secret_until": now + timedelta(days=1)}
    body = event_body(rotated, "https://vod.example.org")
    headers = signed_headers("evt_1", body, signing_secrets(rotated, now), now)
    assert headers["webhook-id"] == "evt_1" and headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "video.ready"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)
    later = now + timedelta(days=2)  # the grace period is over: the old secret no longer signs
    assert signing_secrets(rotated, later) == [new]


def test_retries_follow_the_schedule_with_jitter_and_honour_retry_after() -> None:
    rng = random.Random(7)
    assert WEBHOOK_RETRY_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    for done in range(1, 10):
        wait = retry_delay_s(WEBHOOK_RETRY_SCHEDULE_S, done, None, rng)
        assert wait is not None
        assert 0.8 * WEBHOOK_RETRY_SCHEDULE_S[done] <= wait <= 1.2 * WEBHOOK_RETRY_SCHEDULE_S[done]
    assert retry_delay_s(WEBHOOK_RETRY_SCHEDULE_S, 10, None, rng) is None  # ten attempts, then no more
    assert retry_delay_s((0, 1), 1, 30.0, rng) == 30.0
    assert retry_delay_s((0, 1), 1, 10**9, rng) == MAX_RETRY_AFTER_S
    assert retry_after_s("120", NOW) == 120.0
    assert retry_after_s("Sun, 01 Mar 2026 12:01:00 GMT", NOW) == 60.0
    assert retry_after_s("soon", NOW) is None and retry_after_s(None, NOW) is None


def test_the_schedule_setting_replaces_the_default() -> None:
    base = {
        "VODRAY_DATA_DIR": "/tmp/vodray-notify-settings",
        "VODRAY_JWT_SECRET": "Q9" * 12 + "zxcvbnmasdfghjkl",
    }
    settings = load_settings(base | {"VODRAY_WEBHOOK_RETRY_SCHEDULE_S": "0, 1.5,3"})
    assert settings.notify.retry_schedule_s == (0.0, 1.5, 3.0)
    with pytest.raises(BadRequest, match="first wait must be 0"):
        load_settings(base | {"VODRAY_WEBHOOK_RETRY_SCHEDULE_S": "5,10"})
    with pytest.raises(BadRequest, match="VODRAY_SMTP_SECURITY"):
        load_settings(base | {"VODRAY_SMTP_SECURITY": "ssl"})
    defaults = load_settings(base | {"VODRAY_HTTP_PORT": "8123"}).notify
    assert defaults.public_url == "http://127.0.0.1:8123" and not defaults.mail_enabled
    assert not defaults.allow_private and defaults.timeout_s == 15.0


def _parts(message: EmailMessage) -> tuple[str, str, list[Any]]:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text = parsed.get_body(preferencelist=("plain",))
    page = parsed.get_body(preferencelist=("html",))
    assert text is not None and page is not None
    images = [part for part in parsed.walk() if part.get_content_type() == "image/jpeg"]
    return str(text.get_content()), str(page.get_content()), images


def test_a_ready_mail_has_both_parts_the_link_the_poster_and_a_working_unsubscribe() -> None:
    message = video_mail(delivery(), {"username": "ana"}, NOTIFY, AUTH, b"\xff\xd8jpeg")
    assert message["Subject"] == "Your video “Holiday <b>&amp;</b>” is ready"
    assert message["To"] == "ana@example.org" and message["From"] == "vodray <v@x.org>"
    text, page, images = _parts(message)
    link = f"https://vod.example.org/v1/videos/{'a' * 32}"
    assert link in text and f'href="{link}"' in page
    assert "Holiday <b>&amp;</b>" in text
    assert "Holiday &lt;b&gt;&amp;amp;&lt;/b&gt;" in page and "<b>" not in page  # escaped in HTML
    assert len(images) == 1 and images[0].get_content() == b"\xff\xd8jpeg"
    assert f'src="cid:{images[0]["Content-ID"][1:-1]}"' in page
    unsubscribe = message["List-Unsubscribe"][1:-1]
    assert unsubscribe.startswith("https://vod.example.org/v1/auth/email/unsubscribe?token=")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert read_link(unsubscribe.split("token=")[1], "unsubscribe", AUTH)["sub"] == "u1"


def test_a_failed_mail_says_why_and_a_confirmation_mail_carries_its_link() -> None:
    video = delivery()["video"] | {"status": "failed", "error": "probe failed: <not a video>"}
    message = video_mail(delivery(type="video.failed", video=video), {"username": "ana"}, NOTIFY, AUTH, None)
    text, page, images = _parts(message)
    assert "could not be processed: probe failed: <not a video>" in text
    assert "probe failed: &lt;not a video&gt;" in page and images == []
    subtitles = delivery(type="video.subtitles.ready", detail={"lang": "pt-BR", "source_lang": "en"})
    message = video_mail(subtitles, {"username": "ana"}, NOTIFY, AUTH, b"\xff\xd8jpeg")
    assert message["Subject"] == "New subtitles (pt-BR) for “Holiday <b>&amp;</b>”"
    assert "now has subtitles in pt-BR" in _parts(message)[0]
    confirm = confirmation_mail(delivery(type="email.confirm", video=None), NOTIFY, AUTH)
    text, page, _ = _parts(confirm)
    link = next(word for word in text.split() if word.startswith("https://"))
    claims = read_link(link.split("token=")[1], "email-confirm", AUTH)
    assert (claims["sub"], claims["email"]) == ("u1", "ana@example.org")


def test_links_are_refused_when_forged_expired_or_of_another_kind() -> None:
    token = link_token("unsubscribe", "u1", AUTH)
    with pytest.raises(BadRequest, match="not valid here"):
        read_link(token, "email-confirm", AUTH)
    with pytest.raises(BadRequest, match="not valid"):
        read_link(token, "unsubscribe", AuthSettings(jwt_secret="z" * 64))
    with pytest.raises(BadRequest, match="not valid"):
        read_link(token[:-3], "unsubscribe", AUTH)
    old = link_token("email-confirm", "u1", AUTH, email="a@b.org", now=NOW - timedelta(days=8))
    with pytest.raises(BadRequest, match="expired"):
        read_link(old, "email-confirm", AUTH)
