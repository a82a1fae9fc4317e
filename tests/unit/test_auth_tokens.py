"""Tokens and password hashes made and checked by the real serve.auth_tokens code."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta

import anyio
import jwt
import pytest

import serve.auth_tokens as auth_module
from catalog.credentials import password_problem
from cluster.errors import Unauthorized
from cluster.settings import AuthSettings
from serve.auth_tokens import (
    decode_token,
    hash_password,
    issue_access_token,
    issue_refresh_token,
    verify_password,
)

AUTH = AuthSettings(jwt_secret="k" * 64, access_ttl_s=900, refresh_ttl_s=7 * 24 * 3600)


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def signed(claims: dict, secret: str = AUTH.jwt_secret) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def unauthorized_detail(token: str, expected_type: str = "access") -> str:
    with pytest.raises(Unauthorized) as raised:
        decode_token(token, AUTH, expected_type)  # type: ignore[arg-type]
    assert raised.value.status_code == 401
    return raised.value.detail


def valid_claims(**changes: object) -> dict:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": "vodray",
        "aud": "vodray-api",
        "sub": "user-1",
        "iat": now,
        "exp": now + 60,
        "jti": "j" * 32,
        "typ": "access",
    }
    return {**claims, **changes}


# -- tokens that pass ----------------------------------------------------------------------


def test_access_token_round_trips_its_claims() -> None:
    now = datetime.now(UTC)

    token, expires_at = issue_access_token("user-1", AUTH, now=now)
    claims = decode_token(token, AUTH, "access")

    issued = int(now.timestamp())
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "typ"}
    assert (claims["iss"], claims["aud"]) == ("vodray", "vodray-api")
    assert (claims["sub"], claims["typ"], claims["iat"], claims["exp"]) == (
        "user-1",
        "access",
        issued,
        issued + 900,
    )
    assert len(claims["jti"]) == 32
    assert expires_at == datetime.fromtimestamp(issued + 900, UTC)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_refresh_token_carries_its_family_and_returns_its_jti() -> None:
    now = datetime.now(UTC)

    token, jti, expires_at = issue_refresh_token("user-1", "family-9", AUTH, now=now)
    claims = decode_token(token, AUTH, "refresh")

    assert claims["typ"] == "refresh" and claims["fam"] == "family-9" and claims["sub"] == "user-1"
    assert claims["jti"] == jti
    assert expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert expires_at - now.replace(microsecond=0) == timedelta(days=7)


def test_every_token_gets_its_own_jti() -> None:
    jtis = {decode_token(issue_access_token("user-1", AUTH)[0], AUTH, "access")["jti"] for _ in range(5)}
    assert len(jtis) == 5


def test_a_few_seconds_of_clock_skew_are_tolerated() -> None:
    just_expired = datetime.now(UTC) - timedelta(seconds=AUTH.access_ttl_s + 2)
    token, _ = issue_access_token("user-1", AUTH, now=just_expired)

    assert decode_token(token, AUTH, "access")["sub"] == "user-1"


# -- tokens that fail, each with its own reason --------------------------------------------


def test_expired_token() -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    token, _ = issue_access_token("user-1", AUTH, now=an_hour_ago)

    assert unauthorized_detail(token) == "token expired"


def test_token_signed_with_another_secret_is_forged() -> None:
    token, _ = issue_access_token("user-1", AuthSettings(jwt_secret="x" * 64))

    assert unauthorized_detail(token) == "token signature is invalid"


def test_token_with_a_swapped_payload_is_forged() -> None:
    header, _, signature = issue_access_token("user-1", AUTH)[0].split(".")
    tampered = f"{header}.{b64url(valid_claims(sub='admin'))}.{signature}"

    assert unauthorized_detail(tampered) == "token signature is invalid"


def test_unsigned_alg_none_token_is_refused() -> None:
    token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(valid_claims())}."

    assert unauthorized_detail(token) == "token algorithm is not allowed (only HS256)"


def test_token_signed_with_another_algorithm_is_refused() -> None:
    token = jwt.encode(valid_claims(), AUTH.jwt_secret, algorithm="HS512")

    assert unauthorized_detail(token) == "token algorithm is not allowed (only HS256)"


def test_refresh_token_is_not_an_access_token_and_back() -> None:
    refresh, _, _ = issue_refresh_token("user-1", "family-9", AUTH)
    access, _ = issue_access_token("user-1", AUTH)

    assert unauthorized_detail(refresh, "access") == "wrong token type"
    assert unauthorized_detail(access, "refresh") == "wrong token type"


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "typ", "iss", "aud"])
def test_token_missing_a_required_claim(claim: str) -> None:
    claims = valid_claims()
    del claims[claim]

    assert unauthorized_detail(signed(claims)) == f"token is missing the {claim!r} claim"


def test_token_of_another_issuer_is_refused() -> None:
    assert unauthorized_detail(signed(valid_claims(iss="someone-else"))) == "token was not issued by vodray"


@pytest.mark.parametrize("audience", ["another-api", ["another-api", "more"]])
def test_token_for_another_audience_is_refused(audience: object) -> None:
    assert unauthorized_detail(signed(valid_claims(aud=audience))) == "token is not meant for vodray-api"


def test_refresh_token_expiry_is_capped_by_the_end_of_its_login() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)
    session_end = now + timedelta(hours=2, seconds=30)

    _, jti, expires_at = issue_refresh_token(
        "user-1", "family-9", AUTH, now=now, jti="a" * 32, not_after=session_end
    )

    assert jti == "a" * 32
    assert expires_at == datetime(2026, 1, 1, 14, 0, 30, tzinfo=UTC)


def test_refresh_token_without_a_family() -> None:
    assert (
        unauthorized_detail(signed(valid_claims(typ="refresh")), "refresh")
        == "token is missing the 'fam' claim"
    )


def test_token_issued_in_the_future() -> None:
    later = int(datetime.now(UTC).timestamp()) + 3600
    token = signed(valid_claims(iat=later, exp=later + 60))

    assert unauthorized_detail(token) == "token is not valid yet (issued in the future)"


def test_token_with_claims_of_the_wrong_kind() -> None:
    assert unauthorized_detail(signed(valid_claims(sub=42))).startswith("token claims are invalid: ")


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "Bearer x.y.z", "e30.e30"])
def test_malformed_token(garbage: str) -> None:
    assert unauthorized_detail(garbage) == "malformed token"


# -- passwords -----------------------------------------------------------------------------


def test_hashing_runs_at_most_hash_workers_at_once() -> None:
    auth = AuthSettings(jwt_secret="k" * 64, hash_workers=2)
    running = 0
    most = 0
    original = auth_module.hash_password

    def counting_hash(password: str) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return original(password)
        finally:
            with lock:
                running -= 1

    lock = threading.Lock()

    async def flood() -> list[str]:
        results: list[str] = []

        async def one(i: int) -> None:
            results.append(await auth_module.hash_password_bounded(f"password {i}", auth))

        async with anyio.create_task_group() as group:
            for i in range(8):
                group.start_soon(one, i)
        return results

    auth_module.hash_password = counting_hash  # type: ignore[assignment]
    try:
        hashes = anyio.run(flood)
    finally:
        auth_module.hash_password = original  # type: ignore[assignment]
    assert len(hashes) == 8 and all(h.startswith("$argon2id$") for h in hashes)
    assert most == 2


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")

    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert verify_password(first, "correct horse battery") is True
    assert verify_password(first, "correct horse battery!") is False
    assert verify_password("not-a-hash", "correct horse battery") is False


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short12", "password must be at least 8 characters"),
        ("12345678", None),
        ("p" * 256, None),
        ("p" * 257, "password must be at most 256 characters"),
    ],
)
def test_password_policy(password: str, problem: str | None) -> None:
    assert password_problem(password) == problem
