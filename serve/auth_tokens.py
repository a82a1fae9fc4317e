"""Passwords and tokens, as pure functions: no HTTP, no Ray, no database.

Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile).
Tokens: HS256 JWTs with ``iss``, ``aud``, ``sub``, ``iat``, ``exp``, ``jti`` and ``typ``
("access" or "refresh"; refresh tokens also carry ``fam``, the rotation family: one login).
Decoding accepts only ``JWT_ALGORITHM``, so a token that names ``none`` or another algorithm is
refused before its signature is even looked at, and only this issuer and audience, so a token
another service signed with a shared key is not taken for ours. Every refusal is
``Unauthorized`` with a detail a client can show.

Hashing runs in threads, at most ``AuthSettings.hash_workers`` at once per process, so a login
flood queues behind its own limiter instead of taking the threads uploads and media use. What a
username and a password may be is ``catalog.credentials``, shared with the ``vodray`` CLI.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import anyio
import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cluster.errors import Unauthorized
from cluster.settings import JWT_ALGORITHM, AuthSettings

TokenType = Literal["access", "refresh"]

CLOCK_SKEW_S = 5
"""Seconds of clock difference between nodes tolerated on ``exp`` and ``iat``."""
JWT_ISSUER = "vodray"
JWT_AUDIENCE = "vodray-api"

_REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "typ", "iss", "aud"]
_hasher = PasswordHasher()  # argon2id


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _hash_limiter(workers: int) -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(workers)


async def hash_password_bounded(password: str, auth: AuthSettings) -> str:
    """``hash_password`` off the event loop, at most ``auth.hash_workers`` at once."""
    limiter = _hash_limiter(auth.hash_workers)
    return await anyio.to_thread.run_sync(hash_password, password, limiter=limiter)


async def verify_password_bounded(password_hash: str, password: str, auth: AuthSettings) -> bool:
    """``verify_password`` off the event loop, at most ``auth.hash_workers`` at once."""
    limiter = _hash_limiter(auth.hash_workers)
    return await anyio.to_thread.run_sync(verify_password, password_hash, password, limiter=limiter)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; False for a wrong password or a hash that is not argon2."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _utc_second(moment: datetime | None) -> datetime:
    # JWT times are whole seconds: truncate first so the returned expiry equals the ``exp`` claim.
    moment = datetime.now(UTC) if moment is None else moment
    # A naive time is UTC, as everywhere in vodray.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0)


def _issue(
    user_id: str,
    token_type: TokenType,
    ttl_s: int,
    auth: AuthSettings,
    now: datetime | None,
    *,
    jti: str | None = None,
    not_after: datetime | None = None,
    **extra: str,
) -> tuple[str, str, datetime]:
    issued_at = _utc_second(now)
    expires_at = issued_at + timedelta(seconds=ttl_s)
    if not_after is not None:
        expires_at = min(expires_at, _utc_second(not_after))
    jti = jti or uuid.uuid4().hex
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": user_id,
        "iat": issued_at,
        "exp": expires_at,
        "jti": jti,
        "typ": token_type,
        **extra,
    }
    return jwt.encode(claims, auth.jwt_secret, algorithm=JWT_ALGORITHM), jti, expires_at


def issue_access_token(user_id: str, auth: AuthSettings, now: datetime | None = None) -> tuple[str, datetime]:
    """A short-lived token for API calls; returns (token, expires_at)."""
    token, _, expires_at = _issue(user_id, "access", auth.access_ttl_s, auth, now)
    return token, expires_at


def issue_refresh_token(
    user_id: str,
    family_id: str,
    auth: AuthSettings,
    now: datetime | None = None,
    *,
    jti: str | None = None,
    not_after: datetime | None = None,
) -> tuple[str, str, datetime]:
    """A one-use token for getting new tokens; returns (token, jti, expires_at) for the catalog.

    ``jti`` is the id the catalog already recorded; ``not_after`` caps the expiry (the end of
    the login's absolute lifetime).
    """
    return _issue(
        user_id, "refresh", auth.refresh_ttl_s, auth, now, jti=jti, not_after=not_after, fam=family_id
    )


def decode_token(token: str, auth: AuthSettings, expected_type: TokenType) -> dict[str, Any]:
    """The claims of a valid token of ``expected_type``; ``Unauthorized`` otherwise."""
    if expected_type not in ("access", "refresh"):
        raise ValueError(f"unknown token type {expected_type!r}")
    if not isinstance(token, str) or not token:
        raise Unauthorized("malformed token")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            auth.jwt_secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
            leeway=CLOCK_SKEW_S,
            issuer=JWT_ISSUER,
            audience=JWT_AUDIENCE,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.InvalidSignatureError as exc:  # before DecodeError: it is a subclass
        raise Unauthorized("token signature is invalid") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise Unauthorized(f"token algorithm is not allowed (only {JWT_ALGORITHM})") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token is missing the {exc.claim!r} claim") from exc
    except jwt.InvalidIssuerError as exc:
        raise Unauthorized(f"token was not issued by {JWT_ISSUER}") from exc
    except jwt.InvalidAudienceError as exc:
        raise Unauthorized(f"token is not meant for {JWT_AUDIENCE}") from exc
    except jwt.ImmatureSignatureError as exc:
        raise Unauthorized("token is not valid yet (issued in the future)") from exc
    except jwt.DecodeError as exc:
        raise Unauthorized("malformed token") from exc
    except jwt.InvalidTokenError as exc:  # claims of the wrong kind (a numeric sub, a text iat...)
        raise Unauthorized(f"token claims are invalid: {exc}") from exc
    if claims["typ"] != expected_type:
        raise Unauthorized("wrong token type")
    if expected_type == "refresh" and not isinstance(claims.get("fam"), str):
        raise Unauthorized("token is missing the 'fam' claim")
    return claims
