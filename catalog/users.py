"""Users, their logins and refresh tokens, and the login and registration attempt limits.

The rules for what a username and a password may be are in ``catalog.credentials``; how a
login's refresh tokens rotate is in ``catalog.sessions``; how attempts are counted is in
``catalog.quotas``. This module runs them in the store's transactions.

Every write may be made twice with the same arguments (``catalog.client`` repeats a call the
catalog's restart interrupted, and cannot know whether it ran): the second changes nothing and
answers as the first did. The caller's random ids (and the salted password hash of a new user)
are what tells a repeated call from a new one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import duckdb

from catalog import quotas, sessions
from catalog.database import CatalogDatabase, dict_rows, from_db, to_db
from catalog.sessions import RefreshStatus
from cluster.errors import Conflict


class UserMethods(CatalogDatabase):
    """Part of ``CatalogStore``: users, logins, refresh tokens and attempt limits."""

    def create_user(self, username: str, password_hash: str) -> dict[str, Any]:
        """A new user; ``Conflict`` if the name is taken, except by this very call made again (the
        same salted hash: no two registrations share one), which answers the user it made."""
        user_id = uuid.uuid4().hex
        try:
            with self._writing() as cur:
                cur.execute(
                    "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    [user_id, username, password_hash, self._now()],
                )
        except duckdb.ConstraintException as exc:
            existing = self.get_user_by_name(username)
            if existing is not None and existing["password_hash"] == password_hash:
                return existing
            raise Conflict(f"username {username!r} is taken") from exc
        user = self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM users WHERE id = ?", [user_id])

    def get_user_by_name(self, username: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM users WHERE username = ?", [username])

    # -- logins and refresh tokens (rules in catalog.sessions) --------------------------------

    def start_session(
        self, family_id: str, user_id: str, session_expires_at: datetime, jti: str, token_expires_at: datetime
    ) -> None:
        """Record a new login that ends at ``session_expires_at``, and its first refresh token."""
        with self._writing() as cur:
            sessions.start(
                cur,
                self._now(),
                family_id,
                user_id,
                to_db(session_expires_at),
                jti,
                to_db(token_expires_at),
            )

    def rotate_refresh_token(
        self, jti: str, family_id: str, user_id: str, new_jti: str, new_expires_at: datetime
    ) -> tuple[RefreshStatus, datetime | None]:
        """Use a refresh token once and record its successor, in one transaction.

        Returns ``("ok", successor's expiry)`` or the reason it was refused; a token used
        twice revokes its whole login.
        """
        with self._writing() as cur:
            status, expires_at = sessions.rotate(
                cur, self._now(), jti, family_id, user_id, new_jti, to_db(new_expires_at)
            )
        return status, from_db(expires_at)

    def check_refresh_token(self, jti: str, family_id: str, user_id: str) -> RefreshStatus:
        """``ok`` if the refresh token is live, without using it up (the pages' refresh between
        two rotations); a token already used revokes its whole login, as in rotation."""
        with self._writing() as cur:
            return sessions.check(cur, self._now(), jti, family_id, user_id)

    def revoke_family(self, family_id: str, user_id: str | None = None) -> bool:
        """End one login (only ``user_id``'s, when given); False if it was not open."""
        with self._writing() as cur:
            return sessions.revoke(cur, self._now(), family_id, user_id)

    def change_password(self, user_id: str, password_hash: str) -> int:
        """Set a new password hash and end every login of the user, together; returns logins ended."""
        with self._writing() as cur:
            cur.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, user_id])
            return sessions.revoke_all(cur, self._now(), user_id)

    def refresh_tokens_of(self, family_id: str) -> list[dict[str, Any]]:
        """Every refresh token of one login, oldest expiry first (for operators and tests)."""
        with self._reading() as cur:
            return dict_rows(
                cur.execute(
                    "SELECT * FROM refresh_tokens WHERE family_id = ? ORDER BY expires_at, jti", [family_id]
                )
            )

    # -- login and registration attempts (rules in catalog.quotas) ------------------------------

    def take_auth_attempts(
        self, keys: list[tuple[str, str, int]], window_s: int, attempt_ids: list[str] | None = None
    ) -> tuple[str, int] | list[str]:
        """An attempt under every ``(scope, key, limit)``: their ids, or ``(reason, retry_after_s)``.

        ``attempt_ids`` (one per key, the caller's): the same call made again counts nothing more."""
        with self._writing() as cur:
            taken = quotas.take_attempts(cur, self._now(), timedelta(seconds=window_s), keys, attempt_ids)
        return (taken.reason, taken.retry_after_s) if isinstance(taken, quotas.Refusal) else taken

    def release_auth_attempts(self, attempt_ids: list[str]) -> None:
        with self._writing() as cur:
            quotas.release_attempts(cur, attempt_ids)
