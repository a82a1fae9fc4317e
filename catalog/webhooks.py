"""Webhook endpoints and their delivery log, as methods of the catalog store.

Each endpoint belongs to one user and hears only of that user's videos (``catalog.outbox``).
Its secret is returned when it is made or rotated and never again; the catalog keeps it to
sign with. A user has at most ``limit`` endpoints, counted in the transaction that adds one, so
racing requests cannot pass it. A disabled endpoint (``410 Gone``, a whole retry schedule
failed) gets no new deliveries until its owner enables it again; the reason stays readable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from catalog.database import CatalogDatabase, dict_rows, to_db
from catalog.events import PING
from catalog.outbox import add_delivery, fail_pending, mark_added, new_id, record_user_event
from cluster.errors import Conflict, NotFound

_PUBLIC_COLUMNS = "id, owner_id, url, events, created_at, disabled_at, disabled_reason"


def _endpoint_view(row: dict[str, Any]) -> dict[str, Any]:
    row["events"] = json.loads(row["events"])
    row["enabled"] = row["disabled_at"] is None
    return row


class WebhookMethods(CatalogDatabase):
    """Part of ``CatalogStore``: webhook endpoints, pings, the delivery log and manual retries."""

    def create_endpoint(
        self, owner_id: str, url: str, events: Sequence[str], secret: str, limit: int
    ) -> dict[str, Any]:
        """A new endpoint with ``secret``; ``Conflict`` if the owner has ``limit`` already. The
        secret is the caller's random one: an endpoint of this owner and URL with it is this very
        call, made again across a catalog restart, and is answered rather than made twice."""
        endpoint_id = new_id("ep")
        with self._writing() as cur:
            made = cur.execute(
                "SELECT id FROM webhook_endpoints WHERE owner_id = ? AND url = ? AND secret = ?",
                [owner_id, url, secret],
            ).fetchone()
            if made is not None:
                endpoint_id = made[0]
            else:
                count = cur.execute(
                    "SELECT count(*) FROM webhook_endpoints WHERE owner_id = ?", [owner_id]
                ).fetchone()
                if count and count[0] >= limit:
                    raise Conflict(
                        f"you have {count[0]} webhook endpoints, the most allowed; delete one first"
                    )
                cur.execute(
                    "INSERT INTO webhook_endpoints (id, owner_id, url, events, secret, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [endpoint_id, owner_id, url, json.dumps(list(events)), secret, self._now()],
                )
        return self.get_endpoint(owner_id, endpoint_id)

    def list_endpoints(self, owner_id: str) -> list[dict[str, Any]]:
        with self._reading() as cur:
            rows = dict_rows(
                cur.execute(
                    f"SELECT {_PUBLIC_COLUMNS} FROM webhook_endpoints WHERE owner_id = ?"
                    " ORDER BY created_at, id",
                    [owner_id],
                )
            )
        return [_endpoint_view(row) for row in rows]

    def get_endpoint(self, owner_id: str, endpoint_id: str) -> dict[str, Any]:
        """The owner's endpoint, without its secret; ``NotFound`` for anyone else's."""
        with self._reading() as cur:
            return _endpoint_view(_owned(cur, owner_id, endpoint_id))

    def update_endpoint(
        self,
        owner_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """Change the fields given; enabling clears the reason it was disabled, disabling fails
        what waits for it."""
        now = self._now()
        with self._writing() as cur:
            _owned(cur, owner_id, endpoint_id)
            if url is not None:
                cur.execute("UPDATE webhook_endpoints SET url = ? WHERE id = ?", [url, endpoint_id])
            if events is not None:
                chosen = json.dumps(list(events))
                cur.execute("UPDATE webhook_endpoints SET events = ? WHERE id = ?", [chosen, endpoint_id])
            if enabled is True:
                cur.execute(
                    "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE id = ?",
                    [endpoint_id],
                )
            elif enabled is False:
                cur.execute(
                    "UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ?"
                    " WHERE id = ? AND disabled_at IS NULL",
                    [now, "disabled by its owner", endpoint_id],
                )
                fail_pending(cur, now, endpoint_id, "the endpoint was disabled by its owner")
        return self.get_endpoint(owner_id, endpoint_id)

    def delete_endpoint(self, owner_id: str, endpoint_id: str) -> None:
        """The endpoint and its delivery log; what waited for it is never sent."""
        with self._writing() as cur:
            _owned(cur, owner_id, endpoint_id)
            mine = "SELECT id FROM deliveries WHERE endpoint_id = ?"
            cur.execute(f"DELETE FROM delivery_attempts WHERE delivery_id IN ({mine})", [endpoint_id])
            cur.execute("DELETE FROM deliveries WHERE endpoint_id = ?", [endpoint_id])
            cur.execute("DELETE FROM webhook_endpoints WHERE id = ?", [endpoint_id])

    def rotate_secret(
        self, owner_id: str, endpoint_id: str, secret: str, previous_until: datetime
    ) -> dict[str, Any]:
        """Sign with ``secret`` from now on, and with the old one too until ``previous_until``.
        ``secret`` in use already is this very call made again: the old one is kept, not lost."""
        with self._writing() as cur:
            _owned(cur, owner_id, endpoint_id)
            current = cur.execute(
                "SELECT secret FROM webhook_endpoints WHERE id = ?", [endpoint_id]
            ).fetchone()
            if current is not None and current[0] == secret:
                return self.get_endpoint(owner_id, endpoint_id)
            cur.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ?,"
                " secret = ? WHERE id = ?",
                [to_db(previous_until), secret, endpoint_id],
            )
        return self.get_endpoint(owner_id, endpoint_id)

    def ping_endpoint(self, owner_id: str, endpoint_id: str) -> dict[str, Any]:
        """A ``webhook.ping`` event for this endpoint alone; returns its delivery."""
        now = self._now()
        with self._writing() as cur:
            endpoint = _owned(cur, owner_id, endpoint_id)
            if endpoint["disabled_at"] is not None:
                raise Conflict(f"the endpoint is disabled ({endpoint['disabled_reason']}); enable it first")
            event_id = record_user_event(cur, now, PING, owner_id, {"endpoint_id": endpoint_id})
            delivery_id = add_delivery(cur, now, event_id, "webhook", owner_id, endpoint_id=endpoint_id)
        return self.get_delivery(owner_id, endpoint_id, delivery_id)

    def list_deliveries(self, owner_id: str, endpoint_id: str, limit: int, offset: int) -> dict[str, Any]:
        """The endpoint's deliveries, newest first, each with its attempts."""
        with self._reading() as cur:
            cur.begin()
            _owned(cur, owner_id, endpoint_id)
            order = "ORDER BY d.created_at DESC, d.id DESC LIMIT ? OFFSET ?"
            rows = _deliveries(cur, f"d.endpoint_id = ? {order}", [endpoint_id, limit, offset])
            total = cur.execute(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = ?", [endpoint_id]
            ).fetchone()
            cur.commit()
        return {"items": rows, "total": total[0] if total else 0}

    def get_delivery(self, owner_id: str, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        with self._reading() as cur:
            _owned(cur, owner_id, endpoint_id)
            rows = _deliveries(cur, "d.endpoint_id = ? AND d.id = ?", [endpoint_id, delivery_id])
        if not rows:
            raise NotFound(f"no delivery {delivery_id[:64]!r} for this endpoint")
        return rows[0]

    def retry_delivery(self, owner_id: str, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        """Try a delivery again now: one more attempt (a failed or delivered one), or its next
        attempt brought forward (a pending one)."""
        now = self._now()
        with self._writing() as cur:
            endpoint = _owned(cur, owner_id, endpoint_id)
            if endpoint["disabled_at"] is not None:
                raise Conflict(f"the endpoint is disabled ({endpoint['disabled_reason']}); enable it first")
            found = cur.execute(
                "UPDATE deliveries SET manual = (state <> 'pending') OR manual, state = 'pending',"
                " next_attempt_at = ?, finished_at = NULL WHERE id = ? AND endpoint_id = ?",
                [now, delivery_id, endpoint_id],
            ).fetchone()
            if not found or not found[0]:
                raise NotFound(f"no delivery {delivery_id[:64]!r} for this endpoint")
            mark_added()
        return self.get_delivery(owner_id, endpoint_id, delivery_id)


def _owned(cur: duckdb.DuckDBPyConnection, owner_id: str, endpoint_id: str) -> dict[str, Any]:
    rows = dict_rows(
        cur.execute(
            f"SELECT {_PUBLIC_COLUMNS} FROM webhook_endpoints WHERE id = ? AND owner_id = ?",
            [endpoint_id, owner_id],
        )
    )
    if not rows:
        raise NotFound(f"no webhook endpoint {endpoint_id[:64]!r}")
    return rows[0]


def _deliveries(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[dict[str, Any]]:
    rows = dict_rows(
        cur.execute(
            "SELECT d.id, d.event_id, e.type AS event_type, e.video_id, d.state, d.next_attempt_at,"
            " d.created_at, d.finished_at, d.last_error"
            f" FROM deliveries d JOIN events e ON e.id = d.event_id WHERE {where}",
            params,
        )
    )
    attempts = dict_rows(
        cur.execute(
            "SELECT delivery_id, attempt, tried_at AS at, status_code, error, duration_ms"
            " FROM delivery_attempts WHERE list_contains(?::VARCHAR[], delivery_id)"
            " ORDER BY delivery_id, attempt",
            [[row["id"] for row in rows]],
        )
    )
    by_delivery: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.pop("delivery_id"), []).append(attempt)
    for row in rows:
        row["attempts"] = by_delivery.get(row["id"], [])
    return rows
