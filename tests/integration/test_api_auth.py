"""Accounts and tokens over real HTTP: register, login, me, refresh rotation and reuse, bad tokens."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import ray

from cluster.settings import AuthSettings, Settings
from serve.auth import issue_access_token, issue_refresh_token


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
    status, row = ray.get(catalog.consume_refresh_token.remote(new["jti"]))
    assert status == "ok" and row["family_id"] == old["fam"]


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
    ],
    ids=["missing", "not-bearer", "malformed", "expired", "forged", "alg-none", "refresh-as-access"],
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
