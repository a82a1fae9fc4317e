"""What a username and a password may be: one copy for the HTTP API and the ``vodray`` CLI.

Hashing stays with the callers (``serve.auth_tokens``): the API runs argon2 on a bounded thread
pool, the CLI once per command.
"""

from __future__ import annotations

import re

from cluster.errors import BadRequest

USERNAME_PATTERN = re.compile(r"[a-z0-9_.-]{3,32}")
USERNAME_SPACE = " \t\r\n"
"""Stripped from around a username; the OpenAPI pattern below says the same."""
USERNAME_SCHEMA_PATTERN = r"^[ \t\r\n]*[A-Za-z0-9_.-]{3,32}[ \t\r\n]*$"
"""What ``normalise_username`` accepts, as the API documents it (JSON Schema, ECMA regex)."""
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256  # argon2 would take more; the cap keeps a login from being a CPU sink


def normalise_username(raw: str) -> str:
    """Usernames are case-insensitive: ``BadRequest`` unless 3..32 of a-z, 0-9, '_', '.', '-'."""
    username = raw.strip(USERNAME_SPACE).lower()
    if not USERNAME_PATTERN.fullmatch(username):
        raise BadRequest("username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'")
    return username


def username_to_look_up(raw: str) -> str:
    """The name a login looks up: case-insensitive like ``normalise_username``, but never refused,
    so a malformed name fails as any unknown one does ("wrong username or password")."""
    return raw.strip().lower()


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None if it is."""
    if len(password) < PASSWORD_MIN_CHARS:
        return f"password must be at least {PASSWORD_MIN_CHARS} characters"
    if len(password) > PASSWORD_MAX_CHARS:
        return f"password must be at most {PASSWORD_MAX_CHARS} characters"
    return None
