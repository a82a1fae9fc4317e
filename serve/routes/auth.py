"""Register, log in, rotate refresh tokens, and say who the caller is.

A login starts a refresh-token family; every refresh uses up its token and hands out the next
one of the same family. Presenting a used token again means it leaked: the catalog revokes
the whole family, so the thief and the victim both have to log in again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import anyio.to_thread
from litestar import Router, get, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from cluster.errors import BadRequest, Unauthorized
from serve.auth import (
    decode_token,
    hash_password,
    issue_access_token,
    issue_refresh_token,
    normalise_username,
    password_problem,
    verify_password,
)
from serve.routes import Services
from serve.security import Caller


@dataclass
class Credentials:
    username: str
    password: str


@dataclass
class RefreshRequest:
    refresh_token: str


@dataclass
class UserOut:
    id: str
    username: str


@dataclass
class MeOut:
    id: str
    username: str
    created_at: datetime


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    """Seconds until the access token expires."""


@cache
def _decoy_hash() -> str:
    # Checked against when the user does not exist, so both failures take as long.
    return hash_password("not a password anyone has")


async def _issue_pair(services: Services, user_id: str, family_id: str) -> TokenPair:
    auth = services.settings.auth
    access, _ = issue_access_token(user_id, auth)
    refresh, jti, expires_at = issue_refresh_token(user_id, family_id, auth)
    await services.catalog.add_refresh_token.remote(jti, user_id, family_id, expires_at)
    return TokenPair(access, refresh, "bearer", auth.access_ttl_s)


@post("/register", status_code=HTTP_201_CREATED)
async def register(data: Credentials, services: Services) -> UserOut:
    username = normalise_username(data.username)
    if problem := password_problem(data.password):
        raise BadRequest(problem)
    # argon2 is deliberately slow: keep it off the event loop.
    password_hash = await anyio.to_thread.run_sync(hash_password, data.password)
    user = await services.catalog.create_user.remote(username, password_hash)
    return UserOut(id=user["id"], username=user["username"])


@post("/login", status_code=HTTP_200_OK)
async def login(data: Credentials, services: Services) -> TokenPair:
    user = await services.catalog.get_user_by_name.remote(data.username.lower())
    password_hash = user["password_hash"] if user else _decoy_hash()
    matches = await anyio.to_thread.run_sync(verify_password, password_hash, data.password)
    if user is None or not matches:
        raise Unauthorized("wrong username or password")
    return await _issue_pair(services, user["id"], family_id=uuid.uuid4().hex)


@post("/refresh", status_code=HTTP_200_OK)
async def refresh(data: RefreshRequest, services: Services) -> TokenPair:
    claims = decode_token(data.refresh_token, services.settings.auth, "refresh")
    status, row = await services.catalog.consume_refresh_token.remote(claims["jti"])
    if status == "reused":
        raise Unauthorized(
            "refresh token reuse detected: every token from that login has been revoked; log in again"
        )
    if status == "expired":
        raise Unauthorized("refresh token expired; log in again")
    if status != "ok" or row is None or row["user_id"] != claims["sub"]:
        raise Unauthorized("unknown refresh token; log in again")
    return await _issue_pair(services, row["user_id"], family_id=row["family_id"])


@get("/me")
async def me(user: Caller, services: Services) -> MeOut:
    record = await services.catalog.get_user.remote(user.id)
    if record is None:
        raise Unauthorized("the user of this token no longer exists")
    return MeOut(id=record["id"], username=record["username"], created_at=record["created_at"])


auth_router = Router(path="/v1/auth", route_handlers=[register, login, refresh, me], tags=["auth"])
