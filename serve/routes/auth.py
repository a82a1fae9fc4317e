"""Register, log in, rotate refresh tokens, log out, change the password, say who is calling.

A login starts a session: a refresh-token family with an absolute end
(``VODRAY_SESSION_TTL_S``). Every refresh uses up its token and hands out the next one of the
same family, in one catalog transaction. Presenting a used token again means it leaked: the
catalog revokes the whole family, so the thief and the victim both have to log in again. Logging
out revokes the family; changing the password revokes every family of the user. Access tokens
are not tracked: one already handed out works until it expires (``VODRAY_ACCESS_TTL_S``).

Logins, registrations and password changes are throttled (``serve.throttle``), and a password
longer than the registration limit is refused before anything is hashed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, Router, get, patch, post
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from catalog.credentials import (
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    USERNAME_SCHEMA_PATTERN,
    normalise_username,
    password_problem,
    username_to_look_up,
)
from catalog.events import mail_settings
from cluster.errors import BadRequest, Forbidden, Unauthorized
from serve.auth_tokens import (
    decode_token,
    hash_password_bounded,
    issue_access_token,
    issue_refresh_token,
    verify_password_bounded,
)
from serve.openapi import BEARER, errors
from serve.routes import ServicesDep
from serve.routes.email import MeChange, change_mail_settings
from serve.security import User
from serve.throttle import release_username, take_attempt

# Lengths and patterns are documented (``Parameter``) and checked by our own code, so a
# refusal reads "password must be at least 8 characters" rather than a validator's message.
NewPassword = Annotated[str, Parameter(min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_CHARS)]
GivenPassword = Annotated[str, Parameter(max_length=PASSWORD_MAX_CHARS)]


@dataclass
class Registration:
    username: Annotated[str, Parameter(pattern=USERNAME_SCHEMA_PATTERN)]
    password: NewPassword


@dataclass
class Credentials:
    username: str
    password: GivenPassword


@dataclass
class RefreshRequest:
    refresh_token: str


@dataclass
class PasswordChange:
    current_password: GivenPassword
    new_password: NewPassword


@dataclass
class UserOut:
    id: str
    username: str


@dataclass
class MeOut:
    id: str
    username: str
    created_at: datetime
    email: str | None
    email_confirmed: bool
    """False until the link mailed to the address is followed; only a confirmed address gets mail."""
    email_events: list[str]
    """The events that mail the address once it is confirmed."""


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    """Seconds until the access token expires."""


REFRESH_REFUSALS = {
    "reused": "refresh token reuse detected: every token from that login has been revoked; log in again",
    "revoked": "this login has ended (logged out, password changed, or a token was reused); log in again",
    "ended": "this login has reached its maximum lifetime; log in again",
    "expired": "refresh token expired; log in again",
}


_decoy: list[str] = []


async def _decoy_hash(services: ServicesDep) -> str:
    """Checked against when the user does not exist, so both failures take as long."""
    if not _decoy:
        _decoy.append(await hash_password_bounded("not a password anyone has", services.settings.auth))
    return _decoy[0]


def _refuse_oversized(password: str) -> None:
    # Before any hashing: argon2 over a huge input is the CPU sink the length cap exists to stop.
    if len(password) > PASSWORD_MAX_CHARS and (problem := password_problem(password)):
        raise BadRequest(problem)


def _pair(services: ServicesDep, user_id: str, refresh_token: str) -> TokenPair:
    access, _ = issue_access_token(user_id, services.settings.auth)
    return TokenPair(access, refresh_token, "bearer", services.settings.auth.access_ttl_s)


async def start_session(services: ServicesDep, user_id: str) -> TokenPair:
    """A new login of ``user_id``: a refresh-token family and its first pair."""
    auth = services.settings.auth
    now = datetime.now(UTC)
    family_id, jti = uuid.uuid4().hex, uuid.uuid4().hex
    session_end = now + timedelta(seconds=auth.session_ttl_s)
    token_end = now + timedelta(seconds=auth.refresh_ttl_s)
    await services.catalog.start_session.remote(family_id, user_id, session_end, jti, token_end)
    refresh, _, _ = issue_refresh_token(user_id, family_id, auth, now, jti=jti, not_after=session_end)
    return _pair(services, user_id, refresh)


@post("/register", status_code=HTTP_201_CREATED, responses=errors(400, 409, 413, 429, 503))
async def register(
    request: Request[Any, Any, Any], data: JSONBody[Registration], services: ServicesDep
) -> UserOut:
    username = normalise_username(data.username)
    if problem := password_problem(data.password):
        raise BadRequest(problem)
    await take_attempt(request, services, "register", username)
    password_hash = await hash_password_bounded(data.password, services.settings.auth)
    user = await services.catalog.create_user.remote(username, password_hash)
    return UserOut(id=user["id"], username=user["username"])


@post("/login", status_code=HTTP_200_OK, responses=errors(400, 401, 413, 429, 503))
async def login(
    request: Request[Any, Any, Any], data: JSONBody[Credentials], services: ServicesDep
) -> TokenPair:
    return await start_session(services, await authenticate(request, services, data))


@post("/refresh", status_code=HTTP_200_OK, responses=errors(400, 401, 413, 503))
async def refresh(data: JSONBody[RefreshRequest], services: ServicesDep) -> TokenPair:
    return await rotate(services, data.refresh_token)


@post("/logout", status_code=HTTP_204_NO_CONTENT, responses=errors(400, 401, 413, 503))
async def logout(data: JSONBody[RefreshRequest], services: ServicesDep) -> None:
    """Ends the login the refresh token belongs to: none of its refresh tokens works again."""
    await end_session(services, data.refresh_token)


async def authenticate(request: Request[Any, Any, Any], services: ServicesDep, data: Credentials) -> str:
    """The id of the user ``data`` names if the password matches (throttled); else ``Unauthorized``."""
    _refuse_oversized(data.password)
    username = username_to_look_up(data.username)
    attempts = await take_attempt(request, services, "login", username)
    user = await services.catalog.get_user_by_name.remote(username)
    password_hash = user["password_hash"] if user else await _decoy_hash(services)
    matches = await verify_password_bounded(password_hash, data.password, services.settings.auth)
    if user is None or not matches:
        raise Unauthorized("wrong username or password")
    await release_username(services, attempts)
    return str(user["id"])


async def rotate(services: ServicesDep, refresh_token: str) -> TokenPair:
    """The next pair of the login ``refresh_token`` belongs to; the token is used up."""
    auth = services.settings.auth
    claims = decode_token(refresh_token, auth, "refresh")
    user_id, family_id, new_jti = claims["sub"], claims["fam"], uuid.uuid4().hex
    now = datetime.now(UTC)
    status, expires_at = await services.catalog.rotate_refresh_token.remote(
        claims["jti"], family_id, user_id, new_jti, now + timedelta(seconds=auth.refresh_ttl_s)
    )
    if status != "ok":
        raise Unauthorized(REFRESH_REFUSALS.get(status, "unknown refresh token; log in again"))
    token, _, _ = issue_refresh_token(user_id, family_id, auth, now, jti=new_jti, not_after=expires_at)
    return _pair(services, user_id, token)


async def end_session(services: ServicesDep, refresh_token: str) -> str:
    """Revoke the login ``refresh_token`` belongs to; answers its user's id."""
    claims = decode_token(refresh_token, services.settings.auth, "refresh")
    await services.catalog.revoke_family.remote(claims["fam"], claims["sub"])
    return str(claims["sub"])


@post(
    "/password",
    status_code=HTTP_204_NO_CONTENT,
    responses=errors(400, 401, 403, 413, 429, 503),
    security=BEARER,
)
async def change_password(
    request: Request[Any, Any, Any], data: JSONBody[PasswordChange], user: User, services: ServicesDep
) -> None:
    """Ends every login of the user; access tokens already handed out run until they expire."""
    _refuse_oversized(data.current_password)
    if problem := password_problem(data.new_password):
        raise BadRequest(f"new {problem}")
    record = await services.catalog.get_user.remote(user.id)
    if record is None:
        raise Unauthorized("the user of this token no longer exists")
    attempts = await take_attempt(request, services, "login", record["username"])
    auth = services.settings.auth
    if not await verify_password_bounded(record["password_hash"], data.current_password, auth):
        raise Forbidden("the current password is wrong")
    await release_username(services, attempts)
    await services.catalog.change_password.remote(
        user.id, await hash_password_bounded(data.new_password, auth)
    )


@get("/me", responses=errors(401, 503), security=BEARER)
async def me(user: User, services: ServicesDep) -> MeOut:
    return await _me(user.id, services)


async def _me(user_id: str, services: ServicesDep) -> MeOut:
    record = await services.catalog.get_user.remote(user_id)
    if record is None:
        raise Unauthorized("the user of this token no longer exists")
    return MeOut(
        id=record["id"], username=record["username"], created_at=record["created_at"], **mail_settings(record)
    )


@patch("/me", responses=errors(400, 401, 409, 413, 503), security=BEARER)
async def change_me(data: JSONBody[MeChange], user: User, services: ServicesDep) -> MeOut:
    """``email``: a new address (unconfirmed until the link mailed to it is followed; 409 while
    this vodray sends no mail) or null to remove it. ``email_events``: which events mail it."""
    await change_mail_settings(data, user.id, services)
    return await _me(user.id, services)


auth_router = Router(
    path="/v1/auth",
    route_handlers=[register, login, refresh, logout, change_password, me, change_me],
    tags=["auth"],
)
