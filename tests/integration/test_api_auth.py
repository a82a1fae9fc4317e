"""Accounts and tokens over real HTTP: register, login, me, refresh rotation and reuse, bad tokens."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import ray

from cluster.settings import AuthSettings, Settings
from serve.auth_tokens import issue_access_token, issue_refresh_token


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def refresh(api: httpx.Client, token: str) -> httpx.Response:
    return api.post("/v1/auth/refresh", json={"refresh_token": token})


def assert_unauthorized(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": detail}
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_register_login_and_me(api: httpx.Client, catalog: Any, settings: Settings) -> None:
    username = f"u{uuid.uuid4().hex[:10]}"
    registered = api.post("/v1/auth/register", json={"username": username, "password": "long enough pw"})
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["id"]
    assert registered.json() == {"id": user_id, "username": username}
    row = ray.get(catalog.get_user_by_name.remote(username))
    assert row["id"] == user_id and row["password_hash"].startswith("$argon2id$")

    login = api.post("/v1/auth/login", json={"username": username, "password": "long enough pw"})
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == settings.auth.access_ttl_s
    assert claims_of(tokens["access_token"])["sub"] == user_id

    me = api.get("/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    body = me.json()
    assert (body["id"], body["username"]) == (user_id, username)
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)


def test_taken_username_is_409(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    again = api.post("/v1/auth/register", json={"username": user.username, "password": "another password"})
    assert again.status_code == 409
    assert again.json() == {"detail": f"username {user.username!r} is taken"}


@pytest.mark.parametrize(
    ("username", "password", "detail"),
    [
        ("ab", "long enough pw", "username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'"),
        ("has space", "long enough pw", "username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'"),
        ("x" * 33, "long enough pw", "username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'"),
        (None, "short", "password must be at least 8 characters"),
    ],
)
def test_bad_registration_is_400_and_creates_nothing(
    api: httpx.Client, catalog: Any, username: str | None, password: str, detail: str
) -> None:
    username = username or f"u{uuid.uuid4().hex[:10]}"
    response = api.post("/v1/auth/register", json={"username": username, "password": password})
    assert response.status_code == 400
    assert response.json() == {"detail": detail}
    assert ray.get(catalog.get_user_by_name.remote(username.lower())) is None


def test_register_without_password_names_the_field(api: httpx.Client) -> None:
    response = api.post("/v1/auth/register", json={"username": "nopassword"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid request: request body: Object missing required field `password`"
    }


def test_wrong_password_and_unknown_user_are_the_same_401(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    wrong = api.post("/v1/auth/login", json={"username": user.username, "password": "not the password"})
    unknown = api.post(
        "/v1/auth/login", json={"username": f"n{uuid.uuid4().hex[:8]}", "password": "whatever1"}
    )
    assert_unauthorized(wrong, "wrong username or password")
    assert_unauthorized(unknown, "wrong username or password")
    assert "access_token" not in wrong.text


def test_refresh_rotates_within_the_family(api: httpx.Client, new_user: Any, catalog: Any) -> None:
    user = new_user()
    rotated = refresh(api, user.refresh)
    assert rotated.status_code == 200, rotated.text
    pair = rotated.json()
    assert pair["refresh_token"] != user.refresh and pair["access_token"] != user.access
    old, new = claims_of(user.refresh), claims_of(pair["refresh_token"])
    assert new["fam"] == old["fam"] and new["jti"] != old["jti"] and new["sub"] == user.id
    me = api.get("/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user.id
    # The used token is marked used; the new one is stored for next time.
    tokens = {t["jti"]: t for t in ray.get(catalog.refresh_tokens_of.remote(old["fam"]))}
    assert set(tokens) == {old["jti"], new["jti"]}
    assert tokens[old["jti"]]["used_at"] is not None and tokens[new["jti"]]["used_at"] is None


def test_a_new_login_starts_a_new_family(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    second = api.post("/v1/auth/login", json={"username": user.username, "password": user.password}).json()
    assert claims_of(second["refresh_token"])["fam"] != claims_of(user.refresh)["fam"]


def test_refresh_reuse_revokes_the_whole_family(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    other_login = api.post(
        "/v1/auth/login", json={"username": user.username, "password": user.password}
    ).json()
    sibling = refresh(api, user.refresh).json()["refresh_token"]

    reused = refresh(api, user.refresh)
    assert_unauthorized(
        reused, "refresh token reuse detected: every token from that login has been revoked; log in again"
    )
    # The token handed out by the legitimate rotation dies with its family...
    assert refresh(api, sibling).status_code == 401
    # ...while a separate login of the same user keeps working.
    assert refresh(api, other_login["refresh_token"]).status_code == 200


def test_refresh_refuses_access_tokens_and_unknown_or_expired_ones(
    api: httpx.Client, new_user: Any, settings: Settings
) -> None:
    user = new_user()
    assert_unauthorized(refresh(api, user.access), "wrong token type")
    # Well signed, but never stored by a login.
    stray, _, _ = issue_refresh_token(user.id, uuid.uuid4().hex, settings.auth)
    assert_unauthorized(refresh(api, stray), "unknown refresh token; log in again")
    old, _, _ = issue_refresh_token(
        user.id, uuid.uuid4().hex, settings.auth, now=datetime.now(UTC) - timedelta(days=365)
    )
    assert_unauthorized(refresh(api, old), "token expired")


def _alg_none_token(user_id: str) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": user_id, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "typ": "access"}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _token_with(user_id: str, auth: AuthSettings, **claims: str) -> str:
    """Signed with the real secret, but with an issuer or audience of someone else."""
    real = claims_of(issue_access_token(user_id, auth)[0])
    return jwt.encode(real | claims, auth.jwt_secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("make_header", "detail"),
    [
        (lambda user, auth: None, "missing bearer token: send 'Authorization: Bearer <access token>'"),
        (
            lambda user, auth: f"Basic {user.access}",
            "the Authorization header must be 'Bearer <access token>'",
        ),
        (lambda user, auth: "Bearer not-a-jwt", "malformed token"),
        (
            lambda user, auth: (
                "Bearer " + issue_access_token(user.id, auth, now=datetime.now(UTC) - timedelta(hours=2))[0]
            ),
            "token expired",
        ),
        (
            lambda user, auth: (
                "Bearer "
                + issue_access_token(user.id, AuthSettings(jwt_secret="f" * 48, access_ttl_s=900))[0]
            ),
            "token signature is invalid",
        ),
        (
            lambda user, auth: f"Bearer {_alg_none_token(user.id)}",
            "token algorithm is not allowed (only HS256)",
        ),
        (lambda user, auth: f"Bearer {user.refresh}", "wrong token type"),
        (
            lambda user, auth: f"Bearer {_token_with(user.id, auth, aud='another-api')}",
            "token is not meant for vodray-api",
        ),
        (
            lambda user, auth: f"Bearer {_token_with(user.id, auth, iss='someone-else')}",
            "token was not issued by vodray",
        ),
    ],
    ids=[
        "missing",
        "not-bearer",
        "malformed",
        "expired",
        "forged",
        "alg-none",
        "refresh-as-access",
        "other-audience",
        "other-issuer",
    ],
)
def test_bad_tokens_are_401(
    api: httpx.Client, new_user: Any, settings: Settings, make_header: Any, detail: str
) -> None:
    user = new_user()
    header = make_header(user, settings.auth)
    headers = {"Authorization": header} if header else {}
    assert_unauthorized(api.get("/v1/auth/me", headers=headers), detail)
    # The same check guards uploads, before any byte of the body is stored.
    upload = api.post("/v1/videos", headers=headers, files={"file": ("a.mp4", b"x")}, data={"title": "t"})
    assert_unauthorized(upload, detail)


def test_openapi_documents_the_upload_form_and_bearer_auth(api: httpx.Client) -> None:
    schema = api.get("/schema/openapi.json")
    assert schema.status_code == 200
    spec = schema.json()
    for path in (
        "/v1/auth/login",
        "/v1/videos",
        "/v1/videos/{video_id}/status",
        "/media/{video_id}/{file_path}",
    ):
        assert path in spec["paths"], path
    form = spec["paths"]["/v1/videos"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file", "title"]
    assert form["properties"]["file"]["format"] == "binary"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert api.get("/schema/swagger").status_code == 200


# -- sessions: rotation under concurrency, logout, password change -------------------------


def test_parallel_refreshes_of_one_token_leave_no_token_of_that_login_working(
    api: httpx.Client, new_user: Any, catalog: Any
) -> None:
    user = new_user()
    start = threading.Barrier(8)

    def one_refresh() -> httpx.Response:
        start.wait()
        return refresh(api, user.refresh)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: one_refresh(), range(8)))

    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) <= 1, [a.text for a in answers]
    assert all(a.status_code == 401 for a in answers if a.status_code != 200)
    # Whatever the winner got was revoked with its login by the losers: nothing works now.
    for token in [user.refresh] + [w.json()["refresh_token"] for w in winners]:
        assert refresh(api, token).status_code == 401
    family = claims_of(user.refresh)["fam"]
    assert all(t["revoked_at"] is not None for t in ray.get(catalog.refresh_tokens_of.remote(family)))


def test_logout_ends_the_login_and_only_that_one(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    other = api.post("/v1/auth/login", json={"username": user.username, "password": user.password}).json()
    rotated = refresh(api, user.refresh).json()["refresh_token"]

    logout = api.post("/v1/auth/logout", json={"refresh_token": user.refresh})  # an already used one
    assert logout.status_code == 204 and logout.content == b""

    assert_unauthorized(
        refresh(api, rotated),
        "this login has ended (logged out, password changed, or a token was reused); log in again",
    )
    assert refresh(api, other["refresh_token"]).status_code == 200
    assert api.post("/v1/auth/logout", json={"refresh_token": rotated}).status_code == 204  # idempotent
    assert_unauthorized(api.post("/v1/auth/logout", json={"refresh_token": user.access}), "wrong token type")


def test_password_change_ends_every_login_and_the_new_password_works(
    api: httpx.Client, new_user: Any
) -> None:
    user = new_user()
    other = api.post("/v1/auth/login", json={"username": user.username, "password": user.password}).json()
    change = {"current_password": user.password, "new_password": "a brand new password"}

    wrong = api.post(
        "/v1/auth/password", headers=user.headers, json=change | {"current_password": "nope nope"}
    )
    assert wrong.status_code == 403 and wrong.json() == {"detail": "the current password is wrong"}
    short = api.post("/v1/auth/password", headers=user.headers, json=change | {"new_password": "short"})
    assert short.status_code == 400 and short.json() == {
        "detail": "new password must be at least 8 characters"
    }
    assert api.post("/v1/auth/password", json=change).status_code == 401  # needs a bearer token
    assert refresh(api, other["refresh_token"]).status_code == 200  # nothing changed so far

    changed = api.post("/v1/auth/password", headers=user.headers, json=change)
    assert changed.status_code == 204 and changed.content == b""

    for token in (user.refresh, other["refresh_token"]):
        assert refresh(api, token).status_code == 401
    old_login = api.post("/v1/auth/login", json={"username": user.username, "password": user.password})
    assert_unauthorized(old_login, "wrong username or password")
    new_login = api.post(
        "/v1/auth/login", json={"username": user.username, "password": "a brand new password"}
    )
    assert new_login.status_code == 200 and refresh(api, new_login.json()["refresh_token"]).status_code == 200


def test_a_password_over_the_limit_is_refused_before_hashing(api: httpx.Client, new_user: Any) -> None:
    user = new_user()
    huge = "p" * 200_000
    login = api.post("/v1/auth/login", json={"username": user.username, "password": huge})
    register = api.post("/v1/auth/register", json={"username": f"u{uuid.uuid4().hex[:10]}", "password": huge})
    for response in (login, register):
        assert response.status_code == 400
        assert response.json() == {"detail": "password must be at most 256 characters"}


def test_refresh_tokens_never_outlive_the_login(api: httpx.Client, new_user: Any, settings: Settings) -> None:
    user = new_user()
    issued = claims_of(user.refresh)
    assert issued["exp"] - issued["iat"] == min(settings.auth.refresh_ttl_s, settings.auth.session_ttl_s)
    assert (issued["iss"], issued["aud"]) == ("vodray", "vodray-api")
