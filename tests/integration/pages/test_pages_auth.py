"""Register, sign in and sign out through the pages, and the rules of the one cookie: the refresh
token is ``HttpOnly``, ``SameSite=Strict`` and sent to the refresh route only; the access token
stays in the page's memory; the cookie alone changes nothing; another origin (even another port
of the same host, the same *site*) cannot use it."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.pages.conftest import Tab

REFRESH = "/v1/auth/browser/refresh"


def refresh_cookie(tab: Tab) -> dict[str, Any]:
    cookies = tab.context.cookies()
    assert [c["name"] for c in cookies] == ["vodray_refresh"], cookies  # the only cookie there is
    return dict(cookies[0])


def test_register_sign_in_and_sign_out_with_the_cookie_rules(tab: Callable[..., Tab], base_url: str) -> None:
    page = tab()
    page.goto("/register")
    page.screenshot("register")
    username, password = f"r{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    page.page.fill("#username", username)
    page.page.fill("#password", password)
    page.page.fill("#password2", password)
    page.page.click("#register-form button[type=submit]")
    page.page.wait_for_url(f"{base_url}/")
    page.page.wait_for_selector("#signout")
    assert page.page.inner_text("#account .who").strip().endswith(username)

    cookie = refresh_cookie(page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == REFRESH
    assert cookie["secure"] is False  # plain HTTP on loopback; Secure when the request came over HTTPS
    assert page.js("() => document.cookie") == ""  # no script reads it
    kept = page.js("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert "eyJ" not in kept, kept  # no token (a JWT starts eyJ) is kept by the page, only a hint
    assert "vodray:signed-in" in kept

    # A new page has no token in memory: it gets one from the cookie (kept while it is young).
    page.page.reload()
    page.page.wait_for_selector("#signout")
    rotated = refresh_cookie(page)
    assert rotated["value"] == cookie["value"]
    page.screenshot("home-signed-in")

    page.page.click("#signout")
    page.page.wait_for_url(f"{base_url}/signout")
    page.page.wait_for_selector("#signout-out:not([hidden])")
    assert page.context.cookies() == []  # cleared
    assert page.page.inner_text("#account").strip().startswith("Sign in")
    page.screenshot("signout")
    # The login is over: its last cookie works no more, even sent from this very origin.
    ended = httpx.post(
        f"{base_url}{REFRESH}", headers={"Origin": base_url, "Cookie": f"vodray_refresh={rotated['value']}"}
    )
    assert ended.status_code == 401, ended.text
    assert "log in again" in ended.json()["detail"]

    page.goto("/signin")
    page.page.fill("#username", username)
    page.page.fill("#password", "not the password")
    page.page.click("#signin-form button[type=submit]")
    page.page.wait_for_selector("#signin-status .error")
    assert page.page.inner_text("#signin-status") == "Wrong username or password."
    page.allow(r"status of 401 .*/signin\)$")  # the refused login itself
    page.screenshot("signin")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[str]:
    """A page of another origin on the same host: the same *site*, so SameSite lets it send the cookie."""
    (tmp_path / "index.html").write_text("<!doctype html><title>another origin</title>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, name="other-origin", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cookie_alone_changes_nothing_and_no_other_origin_may_use_it(
    tab: Callable[..., Tab], base_url: str, new_user: Callable[..., Any], other_origin: str
) -> None:
    user = new_user()
    page = tab()
    page.sign_in(user)
    value = refresh_cookie(page)["value"]
    jar = {"Cookie": f"vodray_refresh={value}"}

    # Another origin's page calls the refresh route with the browser's credentials: its browser
    # sends the cookie (same site), the route refuses the Origin, and the cookie is not used up.
    intruder = page.context.new_page()
    intruder.goto(f"{other_origin}/index.html")
    outcome = intruder.evaluate(
        """(url) => fetch(url, {method: "POST", credentials: "include"})
            .then((r) => `status ${r.status}`, (e) => `refused: ${e}`)""",
        f"{base_url}{REFRESH}",
    )
    assert outcome.startswith("refused"), outcome  # and CORS never lets it read an answer
    intruder.close()
    assert refresh_cookie(page)["value"] == value

    with httpx.Client(base_url=base_url) as client:
        no_origin = client.post(REFRESH, headers=jar)
        assert no_origin.status_code == 403 and "Origin" in no_origin.json()["detail"]
        foreign = client.post(REFRESH, headers={**jar, "Origin": other_origin})
        assert foreign.status_code == 403 and other_origin in foreign.json()["detail"]
        # Signing out needs the bearer token: the cookie alone is 401 and the login lives on.
        cookie_only = client.delete(REFRESH, headers={**jar, "Origin": base_url})
        assert cookie_only.status_code == 401
        # Nothing else reads the cookie at all: an upload with it (and no token) is 401.
        upload = client.post("/v1/videos", headers=jar, files={"file": ("a.mp4", b"x")}, data={"title": "t"})
        assert upload.status_code == 401
        assert client.get("/v1/auth/me", headers=jar).status_code == 401
    assert refresh_cookie(page)["value"] == value  # none of the refused calls used it up
    page.page.reload()
    page.page.wait_for_selector("#signout")  # still signed in


def test_links_followed_while_the_page_signs_in_keep_the_login(
    tab: Callable[..., Tab], new_user: Callable[..., Any]
) -> None:
    """Each page load asks the refresh route for a token; a link followed at once may cancel that
    answer. Were the cookie replaced on every call, the next page would send the used one again and
    reuse detection would end the login. (Whether a cancel lands in that window depends on timing:
    the test below shows the route's side of it exactly.)"""
    page = tab()
    page.sign_in(new_user())
    for _ in range(6):
        page.page.goto("/", wait_until="commit")
        page.page.goto("/search?q=anything", wait_until="commit")
    page.goto("/")
    page.page.wait_for_selector("#signout")


def test_an_old_cookie_is_replaced_and_a_replaced_one_ends_the_login(
    settings: Any, catalog: Any, new_user: Callable[..., Any], base_url: str
) -> None:
    """Past ``ROTATE_AFTER_S`` the route uses the cookie up and sets the next one, with the
    rotation and reuse detection of ``/v1/auth/refresh``."""
    import ray

    from serve.auth_tokens import issue_refresh_token
    from serve.routes.browser_session import ROTATE_AFTER_S

    user = new_user()
    family, jti = uuid.uuid4().hex, uuid.uuid4().hex
    issued = datetime.now(UTC) - timedelta(seconds=ROTATE_AFTER_S + 5)
    ray.get(
        catalog.start_session.remote(
            family, user.id, issued + timedelta(days=1), jti, issued + timedelta(days=1)
        )
    )
    old, _, _ = issue_refresh_token(user.id, family, settings.auth, issued, jti=jti)
    with httpx.Client(base_url=base_url, headers={"Origin": base_url}) as client:
        first = client.post(REFRESH, headers={"Cookie": f"vodray_refresh={old}"})
        assert first.status_code == 200, first.text
        assert first.json()["user"] == {"id": user.id, "username": user.username}
        replaced = first.cookies.get("vodray_refresh")
        assert replaced and replaced != old
        for _ in range(2):  # a young cookie is kept: sent again (an answer lost), it still works
            young = client.post(REFRESH, headers={"Cookie": f"vodray_refresh={replaced}"})
            assert young.status_code == 200 and "set-cookie" not in young.headers, young.text
        again = client.post(REFRESH, headers={"Cookie": f"vodray_refresh={old}"})
        assert again.status_code == 401 and "reuse" in again.json()["detail"]
        assert "Max-Age=0" in again.headers["set-cookie"]  # the dead cookie is cleared
        ended = client.post(REFRESH, headers={"Cookie": f"vodray_refresh={replaced}"})
        assert ended.status_code == 401  # the whole login ended
