"""Mail end to end: a real SMTP server (aiosmtpd) on the session's VODRAY_SMTP_PORT, real Ray and
real HTTP. An address is confirmed by following the mailed link with a plain GET; a ready video
mails its owner (both parts, the link, the poster, a working unsubscribe link); a mail server
that is down delays the mail, never the job, and the mail arrives once it is back."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.integration.client import upload, wait_finished


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
        return "250 OK"

    def wait_for(self, to: str, subject: str, timeout_s: float = 60.0) -> EmailMessage:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.messages:
                    if message["To"] == to and subject in str(message["Subject"]):
                        return message
            time.sleep(0.1)
        raise AssertionError(f"no mail to {to} about {subject!r} in {timeout_s:g} s")

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [message for message in self.messages if message["To"] == address]


@contextmanager
def smtp_server(settings: Any, inbox: Inbox) -> Iterator[None]:
    controller = Controller(inbox, hostname="127.0.0.1", port=settings.notify.smtp_port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    text, page = message.get_body(preferencelist=("plain",)), message.get_body(preferencelist=("html",))
    assert text is not None and page is not None
    return str(text.get_content()), str(page.get_content())


def confirm_address(api: httpx.Client, user: SimpleNamespace, inbox: Inbox) -> str:
    address = f"{user.username}@example.org"
    answer = api.patch("/v1/auth/me", headers=user.headers, json={"email": address})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["email"], answer.json()["email_confirmed"]) == (address, False)
    text, page = text_and_html(inbox.wait_for(address, "Confirm your email address"))
    link = re.search(r"https?://\S+/v1/auth/email/confirm\?token=\S+", text)
    assert link is not None, text
    assert link.group(0).replace("&", "&amp;") in page
    followed = httpx.get(link.group(0), timeout=30)  # a plain GET, as from the mail: no token
    assert followed.status_code == 200 and followed.headers["content-type"].startswith("text/html")
    assert "Address confirmed" in followed.text and address in followed.text
    me = api.get("/v1/auth/me", headers=user.headers).json()
    assert (me["email_confirmed"], me["email_events"]) == (True, ["video.ready", "video.failed"])
    return address


def test_a_confirmed_address_gets_the_ready_mail_and_can_unsubscribe(
    api: httpx.Client, new_user: Any, clip: Any, settings: Any, base_url: str, inbox: Inbox
) -> None:
    user = new_user()
    with smtp_server(settings, inbox):
        address = confirm_address(api, user, inbox)
        title = f"Cliffs <&> {uuid.uuid4().hex[:6]}"
        source = clip(seconds=2, width=320, height=180, audio=False, subtitles=False)
        vid = upload(api, user, source, title=title).json()["id"]
        assert wait_finished(api, user, vid)["status"] == "ready"
        mail = inbox.wait_for(address, "is ready")
        assert mail["Subject"] == f"Your video “{title}” is ready"
        text, page = text_and_html(mail)
        link = f"{base_url}/v1/videos/{vid}"
        assert link in text and f'href="{link}"' in page
        assert title in text and "Cliffs &lt;&amp;&gt;" in page and "<&>" not in page
        images = [part for part in mail.walk() if part.get_content_type() == "image/jpeg"]
        assert len(images) == 1 and images[0].get_content()[:2] == b"\xff\xd8"  # the poster, a JPEG
        poster = api.get(f"/media/{vid}/poster.jpg", headers=user.headers)
        assert images[0].get_content() == poster.content
        unsubscribe = mail["List-Unsubscribe"][1:-1]
        assert f'<a href="{unsubscribe.replace("&", "&amp;")}">Unsubscribe</a>' in page
        followed = httpx.get(unsubscribe, timeout=30)  # no sign-in
        assert followed.status_code == 200 and "Unsubscribed" in followed.text
        assert api.get("/v1/auth/me", headers=user.headers).json()["email_events"] == []
        one_click = httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        assert one_click.status_code == 200
        forged = httpx.get(unsubscribe[:-4] + "abcd", timeout=30)
        assert forged.status_code == 400 and "not valid" in forged.json()["detail"]
        api.delete(f"/v1/videos/{vid}", headers=user.headers)


def test_with_the_mail_server_down_the_job_is_ready_and_the_mail_arrives_once_it_is_back(
    api: httpx.Client, new_user: Any, clip: Any, settings: Any, inbox: Inbox
) -> None:
    user = new_user()
    with smtp_server(settings, inbox):
        address = confirm_address(api, user, inbox)
    # Down: nothing listens on the SMTP port now.
    source = clip(seconds=2, width=320, height=180, audio=False, subtitles=False)
    vid = upload(api, user, source, title="while the mail server was down").json()["id"]
    assert wait_finished(api, user, vid)["status"] == "ready"  # the job never waits for mail
    time.sleep(1.5)  # the first attempt has failed by now
    assert inbox.to(address)[1:] == []
    with smtp_server(settings, inbox):
        mail = inbox.wait_for(address, "is ready", timeout_s=40)
    assert "while the mail server was down" in str(mail["Subject"])
    api.delete(f"/v1/videos/{vid}", headers=user.headers)


def test_email_settings_are_checked(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    for bad in (
        "not an address",
        "a@b",
        "ana@example.org\r\nBcc: x@y.org",
        "é@example.org",
        "a" * 250 + "@x.org",
    ):
        answer = api.patch("/v1/auth/me", headers=user.headers, json={"email": bad})
        assert answer.status_code == 400, (bad, answer.text)
    answer = api.patch("/v1/auth/me", headers=user.headers, json={"email_events": ["video.subtitles.ready"]})
    assert answer.status_code == 200 and answer.json()["email_events"] == ["video.subtitles.ready"]
    assert (
        api.patch("/v1/auth/me", headers=user.headers, json={"email_events": ["video.deleted"]}).status_code
        == 400
    )
    set_ = api.patch("/v1/auth/me", headers=user.headers, json={"email": "x@example.org"}).json()
    assert (set_["email"], set_["email_confirmed"]) == ("x@example.org", False)
    removed = api.patch("/v1/auth/me", headers=user.headers, json={"email": None}).json()
    assert removed["email"] is None
    assert api.patch("/v1/auth/me", json={"email": None}).status_code == 401
    bad_link = httpx.get(f"{api.base_url}/v1/auth/email/confirm", params={"token": "x"}, timeout=30)
    assert bad_link.status_code == 400 and "not valid" in bad_link.json()["detail"]
