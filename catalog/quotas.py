"""Limits checked and recorded in one transaction: upload slots and login/registration attempts.

The catalog actor is the single writer, so "count, then record" inside one of its write
transactions cannot be raced by another replica: of 40 uploads started at once against a limit
of 30, exactly 30 get a reservation. A refusal says when the limit frees up: the moment the
oldest counted entry leaves the sliding window (``retry_after_s``, rounded up).

Upload reservations are a ledger: reserved before the body is read (``streaming``), marked
``created`` with the video row, or ``abandoned`` if the upload failed before that (interrupted,
too large, a bad form). Every reservation counts against the hourly limit, whatever happened to
its video later (deleted, failed, abandoned): each one cost a stream of bytes to storage. Only
uploads still streaming (for at most the window; a resumable upload for as long as it lives,
until it is finished, terminated or expires) or whose video is queued or processing count as in
flight.

Functions take the cursor of an open write transaction and the store's ``now`` (naive UTC).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

UPLOAD_WINDOW = timedelta(hours=1)
IN_FLIGHT_RETRY_S = 30
"""Retry hint when the in-flight cap refuses: the time a job of one upload takes is unknown."""


@dataclass(frozen=True)
class Refusal:
    """Why a limit said no, and in how many seconds it will say yes (for ``Retry-After``)."""

    reason: str
    retry_after_s: int


def _free_in(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    window: timedelta,
    limit: int,
    where: str,
    params: list[object],
) -> int | None:
    """Seconds until one more entry fits under ``limit``, or None if one fits now."""
    since = now - window
    row = cur.execute(f"SELECT count(*) FROM {where} AND moment > ?", [*params, since]).fetchone()
    count = row[0] if row else 0
    if count < limit:
        return None
    # The (count - limit + 1)th oldest must leave the window before one more fits.
    oldest = cur.execute(
        f"SELECT moment FROM {where} AND moment > ? ORDER BY moment LIMIT 1 OFFSET ?",
        [*params, since, count - limit],
    ).fetchone()
    assert oldest is not None
    return max(1, math.ceil((oldest[0] + window - now).total_seconds()))


def reserve_upload(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    upload_id: str,
    owner_id: str,
    per_hour: int,
    in_flight: int,
) -> Refusal | None:
    """Reserve an upload slot for ``owner_id`` (``upload_id`` becomes the video id), or say why not.

    ``upload_id`` reserved already for ``owner_id``: the same call made again, reserved."""
    mine = cur.execute(
        "SELECT count(*) FROM upload_reservations WHERE id = ? AND owner_id = ?", [upload_id, owner_id]
    ).fetchone()
    if mine and mine[0]:
        return None
    ledger = "(SELECT started_at AS moment FROM upload_reservations WHERE owner_id = ?) AS ledger"
    wait_s = _free_in(cur, now, UPLOAD_WINDOW, per_hour, f"{ledger} WHERE TRUE", [owner_id])
    if wait_s is not None:
        return Refusal(f"upload limit reached: {per_hour} uploads per hour", wait_s)
    row = cur.execute(
        "SELECT count(*) FROM upload_reservations r LEFT JOIN videos v ON v.id = r.id"
        " WHERE r.owner_id = ? AND ((r.state = 'streaming' AND r.started_at > ?)"
        " OR (r.state = 'streaming' AND r.id IN (SELECT id FROM uploads WHERE finished_at IS NULL))"
        " OR (r.state = 'created' AND v.status IN ('queued', 'processing')))",
        [owner_id, now - UPLOAD_WINDOW],
    ).fetchone()
    if row and row[0] >= in_flight:
        return Refusal(
            f"{row[0]} of your uploads are still uploading or processing (the limit is {in_flight});"
            " try again when one has finished",
            IN_FLIGHT_RETRY_S,
        )
    cur.execute("INSERT INTO upload_reservations VALUES (?, ?, ?, 'streaming')", [upload_id, owner_id, now])
    return None


def settle_upload(cur: duckdb.DuckDBPyConnection, now: datetime, upload_id: str, owner_id: str) -> None:
    """The upload became a video: its reservation is ``created`` (made here if it had none)."""
    cur.execute(
        "INSERT INTO upload_reservations VALUES (?, ?, ?, 'created')"
        " ON CONFLICT (id) DO UPDATE SET state = 'created'",
        [upload_id, owner_id, now],
    )


def abandon_upload(cur: duckdb.DuckDBPyConnection, upload_id: str) -> None:
    """The upload failed before its video row existed: no longer in flight, still counted."""
    cur.execute(
        "UPDATE upload_reservations SET state = 'abandoned' WHERE id = ? AND state = 'streaming'", [upload_id]
    )


def take_attempts(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    window: timedelta,
    keys: list[tuple[str, str, int]],
    attempt_ids: list[str] | None = None,
) -> Refusal | list[str]:
    """Record one attempt under every ``(scope, key, limit)``, or none if any is at its limit.

    Returns the ids of the recorded attempts (``release_attempts`` takes one back), or the
    refusal that frees up last. Attempts that leave the window are deleted here. With
    ``attempt_ids`` (one per key) already recorded, this is the same call made again: it
    records nothing more and answers them.
    """
    if attempt_ids is not None:
        if len(attempt_ids) != len(keys):
            raise ValueError("one attempt id per key")
        found = cur.execute("SELECT count(*) FROM auth_attempts WHERE list_contains(?, id)", [attempt_ids])
        if (found.fetchone() or (0,))[0] == len(attempt_ids):
            return list(attempt_ids)
    waits: list[tuple[int, str]] = []
    for scope, key, limit in keys:
        cur.execute(
            "DELETE FROM auth_attempts WHERE scope = ? AND key = ? AND tried_at <= ?",
            [scope, key, now - window],
        )
        where = (
            "(SELECT tried_at AS moment FROM auth_attempts WHERE scope = ? AND key = ?) AS tries WHERE TRUE"
        )
        wait_s = _free_in(cur, now, window, limit, where, [scope, key])
        if wait_s is not None:
            waits.append((wait_s, scope))
    if waits:
        wait_s, scope = max(waits)
        # Scopes may say what is attempted ("login:username"); the client is told what is counted.
        return Refusal(
            f"too many attempts for this {scope.rpartition(':')[2]}; try again in {wait_s} s", wait_s
        )
    ids = list(attempt_ids) if attempt_ids is not None else [uuid.uuid4().hex for _ in keys]
    for attempt_id, (scope, key, _) in zip(ids, keys, strict=True):
        cur.execute("INSERT INTO auth_attempts VALUES (?, ?, ?, ?)", [attempt_id, scope, key, now])
    return ids


def release_attempts(cur: duckdb.DuckDBPyConnection, attempt_ids: list[str]) -> None:
    """Take back attempts that should not count (a login that succeeded, for its username)."""
    for attempt_id in attempt_ids:
        cur.execute("DELETE FROM auth_attempts WHERE id = ?", [attempt_id])
