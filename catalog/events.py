"""Event types and who hears of them: names only, no database, so the API (which loads no
database engine) and the notifier share them with the outbox (``catalog.outbox``)."""

from __future__ import annotations

import json
from typing import Any

VIDEO_EVENTS = ("video.created", "video.ready", "video.failed", "video.deleted", "video.subtitles.ready")
"""What a webhook endpoint may subscribe to."""
MAIL_EVENTS = ("video.ready", "video.failed", "video.subtitles.ready")
"""What a user may choose to be mailed about."""
DEFAULT_MAIL_EVENTS = ("video.ready", "video.failed")
PING = "webhook.ping"
"""Sent to one endpoint when its owner asks (``POST /v1/webhooks/{id}/ping``)."""
CONFIRM_EMAIL = "email.confirm"
"""The mail with the link that confirms a new address."""
NOTIFIER_ACTOR = "vodray-notifier"
"""The actor that delivers the outbox (``pipelines.notify.notifier``), nudged after a commit."""


def mail_settings(user: dict[str, Any]) -> dict[str, Any]:
    """``email``, ``email_confirmed`` and ``email_events`` of a ``users`` row."""
    return {
        "email": user.get("email"),
        "email_confirmed": user.get("email_confirmed_at") is not None,
        "email_events": json.loads(user.get("email_events") or "[]"),
    }
