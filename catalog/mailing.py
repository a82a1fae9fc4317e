"""A user's email address and the events that mail them, as methods of the catalog store.

A new address is unconfirmed until its owner follows the link mailed to it: the mail with that
link is an ``email.confirm`` event in the outbox, written in the transaction that sets the
address, so it is sent (with retries) exactly when the address is saved. Events mail only a
confirmed address (``catalog.outbox.record_event``). Unsubscribing empties the user's choice of
events; the address stays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from catalog.database import CatalogDatabase
from catalog.events import CONFIRM_EMAIL, mail_settings
from catalog.outbox import add_delivery, record_user_event
from cluster.errors import NotFound


class MailingMethods(CatalogDatabase):
    """Part of ``CatalogStore``: email addresses, their confirmation and the events mailed."""

    def set_email(self, user_id: str, email: str | None) -> dict[str, Any]:
        """Set (unconfirmed, and mail the link) or remove the user's address; returns
        ``mail_settings``. The same address again, confirmed, stays confirmed."""
        now = self._now()
        with self._writing() as cur:
            row = cur.execute(
                "SELECT email, email_confirmed_at FROM users WHERE id = ?", [user_id]
            ).fetchone()
            if row is None:
                raise NotFound("the user of this token no longer exists")
            if email is not None and row[0] == email and row[1] is not None:
                pass  # unchanged and confirmed already
            else:
                cur.execute(
                    "UPDATE users SET email = ?, email_confirmed_at = NULL WHERE id = ?", [email, user_id]
                )
                if email is not None:
                    event_id = record_user_event(cur, now, CONFIRM_EMAIL, user_id, {"email": email})
                    add_delivery(cur, now, event_id, "email", user_id, address=email)
        return self.get_mail_settings(user_id)

    def confirm_email(self, user_id: str, email: str) -> bool:
        """Confirm ``email`` if it is still the user's address; False if it is not."""
        now = self._now()
        with self._writing() as cur:
            found = cur.execute(
                "UPDATE users SET email_confirmed_at = coalesce(email_confirmed_at, ?)"
                " WHERE id = ? AND email = ?",
                [now, user_id, email],
            ).fetchone()
        return bool(found and found[0])

    def set_email_events(self, user_id: str, events: Sequence[str]) -> dict[str, Any]:
        with self._writing() as cur:
            found = cur.execute(
                "UPDATE users SET email_events = ? WHERE id = ?", [json.dumps(list(events)), user_id]
            ).fetchone()
            if not found or not found[0]:
                raise NotFound("the user of this token no longer exists")
        return self.get_mail_settings(user_id)

    def get_mail_settings(self, user_id: str) -> dict[str, Any]:
        user = self._one("SELECT email, email_confirmed_at, email_events FROM users WHERE id = ?", [user_id])
        if user is None:
            raise NotFound("the user of this token no longer exists")
        return mail_settings(user)

    def mail_recipient(self, user_id: str) -> dict[str, Any] | None:
        """What the mailer checks before each event mail: the user's name and ``mail_settings``."""
        user = self._one(
            "SELECT username, email, email_confirmed_at, email_events FROM users WHERE id = ?", [user_id]
        )
        return None if user is None else {"username": user["username"], **mail_settings(user)}
