"""The outbox: events written in the transaction of the change they report, and their deliveries.

``record_event(cur, ...)`` is called inside the transaction that makes the change (a video
created, ready, failed, deleted, a subtitle language published after it was ready), so the
event exists exactly when the change does: a crash before the commit loses both, a crash after
it loses neither. The same transaction adds one delivery per recipient: each webhook endpoint
of the video's owner that subscribes to the type and is enabled, and the owner's confirmed
email address if they chose mail for it. Events go to the owner's recipients only, public
videos included: an endpoint says "tell me about my videos", never about other people's.

The notifier (``pipelines.notify.notifier``) reads due deliveries here and records every
attempt, so the state of each retry lives in the catalog and outlives the notifier's process.
Delivery is at least once: an attempt that crashed before it was recorded is made again, with
the same ``webhook-id`` (the event id), by which receivers dedupe.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import msgspec

from catalog.database import CatalogDatabase, dict_rows, from_db, to_db

_added = threading.local()

_VIDEO_JSON_COLUMNS = ("renditions", "translate_to", "subtitles", "storyboard")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def snapshot_video(cur: duckdb.DuckDBPyConnection, video_id: str) -> dict[str, Any] | None:
    """The video's row as the transaction sees it, its JSON columns parsed: what an event keeps
    (``serve.routes.videos.video_view`` renders it as the metadata route does)."""
    rows = dict_rows(cur.execute("SELECT * FROM videos WHERE id = ?", [video_id]))
    if not rows:
        return None
    row = rows[0]
    for column in _VIDEO_JSON_COLUMNS:
        row[column] = json.loads(row[column]) if row.get(column) else None
    row["renditions"] = row["renditions"] or []
    row["translate_to"] = row["translate_to"] or []
    row["subtitles"] = row["subtitles"] or {}
    return row


def status_of(cur: duckdb.DuckDBPyConnection, video_id: str) -> str | None:
    """The video's status in the transaction (before a change, to tell whether it is one)."""
    row = cur.execute("SELECT status FROM videos WHERE id = ?", [video_id]).fetchone()
    return None if row is None else str(row[0])


def record_event(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    event_type: str,
    video: Mapping[str, Any],
    detail: Mapping[str, Any] | None = None,
) -> str:
    """Write a video's event and its deliveries in the caller's transaction; returns its id.

    ``video``: the row (``snapshot_video``) as the event should show it."""
    event_id = new_id("evt")
    owner_id = str(video["owner_id"])
    cur.execute(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
        [event_id, event_type, video["id"], owner_id, now]
        + [msgspec.json.encode(dict(video)).decode(), json.dumps(dict(detail or {}))],
    )
    endpoints = cur.execute(
        "SELECT id, events FROM webhook_endpoints WHERE owner_id = ? AND disabled_at IS NULL ORDER BY id",
        [owner_id],
    ).fetchall()
    for endpoint_id, events in endpoints:
        if event_type in json.loads(events):
            add_delivery(cur, now, event_id, "webhook", owner_id, endpoint_id=endpoint_id)
    mail = cur.execute(
        "SELECT email, email_events FROM users WHERE id = ? AND email_confirmed_at IS NOT NULL", [owner_id]
    ).fetchone()
    if mail and mail[0] and event_type in json.loads(mail[1] or "[]"):
        add_delivery(cur, now, event_id, "email", owner_id, address=mail[0])
    return event_id


def record_video_event(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    event_type: str,
    video_id: str,
    detail: Mapping[str, Any] | None = None,
) -> str | None:
    """``record_event`` for the video as it is now in the transaction (None if it is gone)."""
    video = snapshot_video(cur, video_id)
    return None if video is None else record_event(cur, now, event_type, video, detail)


def record_user_event(
    cur: duckdb.DuckDBPyConnection, now: datetime, event_type: str, owner_id: str, detail: Mapping[str, Any]
) -> str:
    """An event that is about no video (a ping, an address to confirm); its deliveries are the
    caller's to add."""
    event_id = new_id("evt")
    cur.execute(
        "INSERT INTO events VALUES (?, ?, NULL, ?, ?, NULL, ?)",
        [event_id, event_type, owner_id, now, json.dumps(dict(detail))],
    )
    return event_id


def add_delivery(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    event_id: str,
    channel: str,
    user_id: str,
    *,
    endpoint_id: str | None = None,
    address: str | None = None,
) -> str:
    """A delivery due at once (the first wait of every schedule is 0)."""
    mark_added()
    delivery_id = new_id("dlv")
    cur.execute(
        "INSERT INTO deliveries (id, event_id, channel, endpoint_id, user_id, address, state, attempts,"
        " manual, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, false, ?, ?)",
        [delivery_id, event_id, channel, endpoint_id, user_id, address, now, now],
    )
    return delivery_id


def mark_added() -> None:
    """A delivery became due in this thread's transaction: nudge the notifier after the commit."""
    _added.any = True


def take_added() -> bool:
    """Whether this thread added a delivery since it last asked (``CatalogActor`` asks after
    every commit, to nudge the notifier)."""
    added = getattr(_added, "any", False)
    _added.any = False
    return bool(added)


def fail_pending(cur: duckdb.DuckDBPyConnection, now: datetime, endpoint_id: str, reason: str) -> None:
    """Every delivery still waiting for ``endpoint_id`` fails with ``reason`` (it was disabled)."""
    cur.execute(
        "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, finished_at = ?, last_error = ?"
        " WHERE endpoint_id = ? AND state = 'pending'",
        [now, reason, endpoint_id],
    )


def disable_endpoint(cur: duckdb.DuckDBPyConnection, now: datetime, endpoint_id: str, reason: str) -> None:
    cur.execute(
        "UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ?"
        " WHERE id = ? AND disabled_at IS NULL",
        [now, reason, endpoint_id],
    )
    fail_pending(cur, now, endpoint_id, f"the endpoint was disabled: {reason}")


_DUE = """
SELECT d.id, d.event_id, d.channel, d.endpoint_id, d.user_id, d.address, d.attempts, d.manual,
       d.next_attempt_at, e.type, e.video_id, e.owner_id, e.occurred_at, e.video, e.detail,
       w.url, w.secret, w.previous_secret, w.previous_secret_until
FROM deliveries d
JOIN events e ON e.id = d.event_id
LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id
WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND NOT list_contains(?::VARCHAR[], d.id)
QUALIFY row_number() OVER (
    PARTITION BY coalesce(d.endpoint_id, d.channel) ORDER BY d.next_attempt_at, d.id
) <= ?
ORDER BY d.next_attempt_at, d.id
LIMIT ?
"""


class OutboxMethods(CatalogDatabase):
    """Part of ``CatalogStore``: what the notifier reads and writes."""

    def due_deliveries(self, exclude: Sequence[str], per_recipient: int, limit: int) -> dict[str, Any]:
        """Deliveries due now, at most ``per_recipient`` per endpoint (and per channel for mail)
        so one busy endpoint never fills the batch, with their event and endpoint; and
        ``next_due_at``, the earliest ``next_attempt_at`` of the others still pending."""
        now = self._now()
        with self._reading() as cur:
            cur.begin()
            rows = dict_rows(cur.execute(_DUE, [now, list(exclude), per_recipient, limit]))
            found = cur.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'"
                " AND NOT list_contains(?::VARCHAR[], id) AND NOT list_contains(?::VARCHAR[], id)",
                [list(exclude), [row["id"] for row in rows]],
            ).fetchone()
            cur.commit()
        for row in rows:
            row["video"] = json.loads(row["video"]) if row["video"] else None
            row["detail"] = json.loads(row["detail"])
        return {"due": rows, "next_due_at": from_db(found[0]) if found else None}

    def record_attempt(
        self,
        delivery_id: str,
        attempt: int,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: datetime | None,
        delivered: bool = False,
        disable_reason: str | None = None,
    ) -> None:
        """One attempt's result: delivered, due again at ``next_attempt_at``, or failed for good
        (neither). ``disable_reason`` disables the delivery's endpoint (410 Gone, a whole
        schedule failed) and fails what else waits for it. The same attempt recorded twice (a
        call retried across a catalog restart) counts once."""
        now = self._now()
        with self._writing() as cur:
            row = cur.execute(
                "SELECT attempts, endpoint_id FROM deliveries WHERE id = ?", [delivery_id]
            ).fetchone()
            if row is None or row[0] >= attempt:
                return  # gone (its endpoint was deleted) or recorded already
            cur.execute(
                "INSERT INTO delivery_attempts VALUES (?, ?, ?, ?, ?, ?)",
                [delivery_id, attempt, now, status_code, error, duration_ms],
            )
            state = "delivered" if delivered else ("pending" if next_attempt_at is not None else "failed")
            cur.execute(
                "UPDATE deliveries SET attempts = ?, state = ?, next_attempt_at = ?, last_error = ?,"
                " finished_at = ? WHERE id = ?",
                [attempt, state, to_db(next_attempt_at) if next_attempt_at else None, error]
                + [None if state == "pending" else now, delivery_id],
            )
            if disable_reason and row[1]:
                disable_endpoint(cur, now, row[1], disable_reason)

    def purge_deliveries(self, older_than_s: float) -> int:
        """Remove finished deliveries (and their attempts and events) older than that; returns how many."""
        cutoff = self._now() - timedelta(seconds=older_than_s)
        with self._writing() as cur:
            old = "SELECT id FROM deliveries WHERE state <> 'pending' AND created_at < ?"
            cur.execute(f"DELETE FROM delivery_attempts WHERE delivery_id IN ({old})", [cutoff])
            found = cur.execute(
                "DELETE FROM deliveries WHERE state <> 'pending' AND created_at < ?", [cutoff]
            ).fetchone()
            cur.execute(
                "DELETE FROM events WHERE occurred_at < ? AND id NOT IN (SELECT event_id FROM deliveries)",
                [cutoff],
            )
        return int(found[0]) if found else 0
