"""Logins and their refresh tokens, each change one transaction on the store's writer cursor.

A login is a session: one refresh-token family with an absolute end (``expires_at``) that
refreshing never moves. Rotation checks the presented token and stores its successor in the
same transaction, so of racing refreshes of one token exactly one gets a successor, and the
others (seeing it used) revoke the session, successor included. A revoked session stays
revoked: no later rotation adds a live token to it.

Functions take the cursor of an open write transaction and the store's ``now`` (naive UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import duckdb

RefreshStatus = Literal["ok", "reused", "revoked", "expired", "ended", "unknown"]
"""``ended``: the login reached its absolute lifetime; ``revoked``: logged out, password changed,
or a reuse was seen."""


def _rows(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    names = [column[0] for column in cur.execute(sql, params).description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def start(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    family_id: str,
    user_id: str,
    session_expires_at: datetime,
    jti: str,
    token_expires_at: datetime,
) -> None:
    """A new login and its first refresh token."""
    # Both ids are the caller's random ones: a row there already is this call, made again.
    cur.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, NULL) ON CONFLICT DO NOTHING",
        [family_id, user_id, session_expires_at],
    )
    cur.execute(
        "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        [jti, user_id, family_id, min(token_expires_at, session_expires_at)],
    )


def rotate(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    jti: str,
    family_id: str,
    user_id: str,
    new_jti: str,
    new_expires_at: datetime,
) -> tuple[RefreshStatus, datetime | None]:
    """Use token ``jti`` of that family and user once, and record ``new_jti`` as its successor.

    Returns the status and, when ``ok``, the successor's expiry (capped at the session's end).
    """
    tokens = _rows(cur, "SELECT * FROM refresh_tokens WHERE jti = ?", [jti])
    sessions = _rows(cur, "SELECT * FROM sessions WHERE family_id = ?", [family_id])
    if not tokens or not sessions:
        return "unknown", None
    token, session = tokens[0], sessions[0]
    if token["family_id"] != family_id or token["user_id"] != user_id or session["user_id"] != user_id:
        return "unknown", None
    if session["revoked_at"] is not None or token["revoked_at"] is not None:
        return "revoked", None
    if token["used_at"] is not None:
        successor = _rows(cur, "SELECT * FROM refresh_tokens WHERE jti = ?", [new_jti])
        if successor and successor[0]["family_id"] == family_id and successor[0]["user_id"] == user_id:
            # ``new_jti`` is the caller's fresh id: this rotation, made again after it committed.
            return "ok", successor[0]["expires_at"]
        revoke(cur, now, family_id)
        return "reused", None
    if session["expires_at"] <= now:
        return "ended", None
    if token["expires_at"] <= now:
        return "expired", None
    cur.execute("UPDATE refresh_tokens SET used_at = ? WHERE jti = ?", [now, jti])
    expires_at = min(new_expires_at, session["expires_at"])
    cur.execute(
        "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at) VALUES (?, ?, ?, ?)",
        [new_jti, user_id, family_id, expires_at],
    )
    return "ok", expires_at


def check(
    cur: duckdb.DuckDBPyConnection, now: datetime, jti: str, family_id: str, user_id: str
) -> RefreshStatus:
    """Whether token ``jti`` of that family and user is live, without using it up (``ok``). A
    token already used is a reuse, as in ``rotate``: the whole session is revoked."""
    tokens = _rows(cur, "SELECT * FROM refresh_tokens WHERE jti = ?", [jti])
    sessions = _rows(cur, "SELECT * FROM sessions WHERE family_id = ?", [family_id])
    if not tokens or not sessions:
        return "unknown"
    token, session = tokens[0], sessions[0]
    if token["family_id"] != family_id or token["user_id"] != user_id or session["user_id"] != user_id:
        return "unknown"
    if session["revoked_at"] is not None or token["revoked_at"] is not None:
        return "revoked"
    if token["used_at"] is not None:
        revoke(cur, now, family_id)
        return "reused"
    if session["expires_at"] <= now:
        return "ended"
    if token["expires_at"] <= now:
        return "expired"
    return "ok"


def revoke(cur: duckdb.DuckDBPyConnection, now: datetime, family_id: str, user_id: str | None = None) -> bool:
    """End one login (only if it is ``user_id``'s, when given); False if there was none to end."""
    owner = "" if user_id is None else " AND user_id = ?"
    params: list[Any] = [now, family_id] + ([] if user_id is None else [user_id])
    ended = cur.execute(
        f"UPDATE sessions SET revoked_at = ? WHERE family_id = ?{owner} AND revoked_at IS NULL", params
    ).fetchone()
    cur.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL"
        " AND family_id IN (SELECT family_id FROM sessions WHERE revoked_at IS NOT NULL)",
        [now, family_id],
    )
    return bool(ended and ended[0])


def revoke_all(cur: duckdb.DuckDBPyConnection, now: datetime, user_id: str) -> int:
    """End every login of ``user_id``; returns how many were still open."""
    ended = cur.execute(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [now, user_id]
    ).fetchone()
    cur.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [now, user_id]
    )
    return int(ended[0]) if ended else 0
