"""The signed links a mail carries: confirm an address, unsubscribe. They work without signing in.

Each is a JWT in the link's ``token`` query parameter, signed with a key derived from the JWT
secret for this use alone and with its own audience, so a mail link is never taken for an
access token, nor the reverse. A confirmation link names the address it confirms (it confirms
nothing once the user set another one) and lasts a week; an unsubscribe link lasts a year.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import jwt

from cluster.errors import BadRequest
from cluster.settings import JWT_ALGORITHM, AuthSettings

LinkType = Literal["email-confirm", "unsubscribe"]
AUDIENCE = "vodray-mail"
TTL_S: dict[str, int] = {"email-confirm": 7 * 24 * 3600, "unsubscribe": 365 * 24 * 3600}
PATHS: dict[str, str] = {
    "email-confirm": "/v1/auth/email/confirm",
    "unsubscribe": "/v1/auth/email/unsubscribe",
}


def _key(auth: AuthSettings) -> bytes:
    return hmac.new(auth.jwt_secret.encode(), b"vodray mail links", hashlib.sha256).digest()


def link_token(
    kind: LinkType, user_id: str, auth: AuthSettings, *, email: str | None = None, now: datetime | None = None
) -> str:
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims: dict[str, Any] = {
        "aud": AUDIENCE,
        "typ": kind,
        "sub": user_id,
        "iat": issued,
        "exp": issued + timedelta(seconds=TTL_S[kind]),
    }
    if email is not None:
        claims["email"] = email
    return jwt.encode(claims, _key(auth), algorithm=JWT_ALGORITHM)


def link_url(kind: LinkType, public_url: str, user_id: str, auth: AuthSettings, **claims: Any) -> str:
    return f"{public_url}{PATHS[kind]}?{urlencode({'token': link_token(kind, user_id, auth, **claims)})}"


def read_link(token: str, kind: LinkType, auth: AuthSettings) -> dict[str, Any]:
    """The claims of a valid link of ``kind``; ``BadRequest`` saying what is wrong otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _key(auth),
            algorithms=[JWT_ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "sub", "typ", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise BadRequest("this link has expired; ask for a new one") from exc
    except jwt.InvalidTokenError as exc:
        raise BadRequest("this link is not valid (it may have been cut short in the mail)") from exc
    if claims.get("typ") != kind or not isinstance(claims.get("sub"), str):
        raise BadRequest("this link is not valid here")
    if kind == "email-confirm" and not isinstance(claims.get("email"), str):
        raise BadRequest("this link is not valid here")
    return claims
