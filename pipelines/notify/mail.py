"""Mails: a video ready, failed or with new subtitles, and the link that confirms an address.

Each mail has a plain text part and an HTML part (every text a user wrote, such as a title or a
job's error, is escaped there), the link to the video (its metadata URL until the web pages
have a watch page), the poster embedded in the mail (``cid:``: it shows for a private video
too, with no link that would need a token), and an unsubscribe link that works without signing
in (``pipelines.notify.links``), also as ``List-Unsubscribe`` with one-click POST (RFC 8058).

Sent with aiosmtplib through ``VODRAY_SMTP_HOST``; the notifier retries what failed for a reason
that may pass (the server down, a 4xx answer) and gives up at once on a 5xx refusal.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from cluster import layout
from cluster.settings import AuthSettings, NotifySettings
from pipelines.notify.links import link_url
from pipelines.notify.webhooks import MAX_ERROR_CHARS, Outcome

SUBJECT_TITLE_CHARS = 80


def watch_url(public_url: str, video_id: str) -> str:
    """Where a mail sends its reader: the video's metadata until a watch page exists."""
    return f"{public_url}/v1/videos/{video_id}"


def _one_line(text: str, limit: int) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _what_happened(delivery: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, one sentence) of a video event's mail; the sentence is plain text."""
    video = delivery["video"]
    title = _one_line(video["title"], SUBJECT_TITLE_CHARS)
    kind = delivery["type"]
    if kind == "video.ready":
        return f"Your video “{title}” is ready", f"Your video “{video['title']}” is ready to watch."
    if kind == "video.failed":
        reason = video.get("error") or "no reason was recorded"
        return (
            f"Your video “{title}” could not be processed",
            f"Your video “{video['title']}” could not be processed: {reason}",
        )
    lang = (delivery.get("detail") or {}).get("lang", "?")
    return (
        f"New subtitles ({lang}) for “{title}”",
        f"Your video “{video['title']}” now has subtitles in {lang}.",
    )


def video_mail(
    delivery: Mapping[str, Any],
    recipient: Mapping[str, Any],
    notify: NotifySettings,
    auth: AuthSettings,
    poster: bytes | None,
) -> EmailMessage:
    """The mail of a video event (``catalog.outbox.due_deliveries`` row) to its owner."""
    subject, sentence = _what_happened(delivery)
    video_id = str(delivery["video_id"])
    link = watch_url(notify.public_url, video_id)
    unsubscribe = link_url("unsubscribe", notify.public_url, str(delivery["user_id"]), auth)
    hello = f"Hello {recipient['username']},"
    text = (
        f"{hello}\n\n{sentence}\n\nSee it: {link}\n\n"
        f"You get this mail because you asked vodray to tell you about your videos.\n"
        f"Unsubscribe: {unsubscribe}\n"
    )
    cid = make_msgid(domain="vodray")
    poster_html = f'<p><img src="cid:{html.escape(cid[1:-1])}" alt="" width="320"></p>' if poster else ""
    page = (
        f"<!doctype html><html><body><p>{html.escape(hello)}</p><p>{html.escape(sentence)}</p>"
        f"{poster_html}"
        f'<p><a href="{html.escape(link)}">See it</a></p>'
        '<p style="color:#666">You get this mail because you asked vodray to tell you about your'
        f' videos. <a href="{html.escape(unsubscribe)}">Unsubscribe</a></p></body></html>'
    )
    message = _message(notify, str(delivery["address"]), subject, text)
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.add_alternative(page, subtype="html")
    html_part = message.get_body(preferencelist=("html",))
    if poster and isinstance(html_part, EmailMessage):
        html_part.add_related(poster, "image", "jpeg", cid=cid, filename=layout.POSTER_NAME)
    return message


def confirmation_mail(
    delivery: Mapping[str, Any], notify: NotifySettings, auth: AuthSettings
) -> EmailMessage:
    """The mail with the link that confirms ``address`` for its user."""
    address = str(delivery["address"])
    link = link_url("email-confirm", notify.public_url, str(delivery["user_id"]), auth, email=address)
    text = (
        f"Someone, probably you, asked vodray to send mail about their videos to {address}.\n\n"
        f"Confirm this address: {link}\n\nThe link works for 7 days. If it was not you, ignore this mail.\n"
    )
    page = (
        f"<!doctype html><html><body><p>Someone, probably you, asked vodray to send mail about"
        f" their videos to {html.escape(address)}.</p>"
        f'<p><a href="{html.escape(link)}">Confirm this address</a></p>'
        "<p>The link works for 7 days. If it was not you, ignore this mail.</p></body></html>"
    )
    message = _message(notify, address, "Confirm your email address for vodray", text)
    message.add_alternative(page, subtype="html")
    return message


def _message(notify: NotifySettings, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = notify.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="vodray")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    return message


async def send_mail(message: EmailMessage, notify: NotifySettings, timeout_s: float) -> Outcome:
    """Send ``message`` once; never raises for anything the mail server or network does."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    security = notify.smtp_security
    try:
        _, reply = await aiosmtplib.send(
            message,
            hostname=notify.smtp_host,
            port=notify.smtp_port_or_default,
            username=notify.smtp_user,
            password=notify.smtp_password,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [error.code for error in exc.recipients]
        sentence = "; ".join(f"{error.code} {error.message}" for error in exc.recipients)
        sentence = f"the mail server refused the address: {sentence}"[:MAX_ERROR_CHARS]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return Outcome(max(codes, default=None), sentence, took(), permanent=permanent)
    except aiosmtplib.SMTPResponseException as exc:
        sentence = f"the mail server answered {exc.code} {exc.message}"[:MAX_ERROR_CHARS]
        return Outcome(exc.code, sentence, took(), permanent=exc.code >= 500)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome(None, f"could not reach the mail server: {exc}"[:MAX_ERROR_CHARS], took())
    return Outcome(250, None, took()) if reply is not None else Outcome(None, "no reply", took())
