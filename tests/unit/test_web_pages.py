"""The pages' frames as the app serves them, with no catalog and no Ray behind it: every page
answers HTML with the strict headers, user text in a template is escaped, page paths get HTML
error pages while API paths keep their JSON, and the static files come with the right types.
(What the pages do in a browser: tests/integration/test_pages*.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from cluster.settings import load_settings
from cluster.storage import Storage
from serve.app import create_app
from serve.web.headers import CONTENT_SECURITY_POLICY
from serve.web.pages import safe_next
from serve.web.vendor import vendor_urls

PAGES = [
    "/",
    "/?page=2",
    f"/watch/{'a' * 32}",
    "/upload",
    "/search?q=hello",
    "/signin",
    "/register",
    "/signout",
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path / "vodray")})
    with TestClient(
        create_app(settings, catalog=None, dispatcher=None, storage=Storage(settings.storage))
    ) as client:
        yield client


def assert_page_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"


def test_the_policy_allows_no_inline_script_no_eval_no_plugin_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"  # neither 'unsafe-inline' nor 'unsafe-eval'
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["media-src"] == "'self' blob:"  # MSE plays from blob: URLs
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_html_with_the_strict_headers_and_its_module(app: TestClient, path: str) -> None:  # type: ignore[type-arg]
    response = app.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_page_headers(response)
    html = response.text
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)  # every script is a file
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handler
    assert not re.search(r"\sstyle=", html)  # no inline style either
    assert '<script type="module" src="/static/app/js/' in html
    assert 'id="site-q"' in html  # the search box on every page


def test_a_query_in_a_page_is_text_not_markup(app: TestClient) -> None:  # type: ignore[type-arg]
    html = app.get("/search", params={"q": '<img src=x onerror=alert(1)> "quoted"'}).text
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'value="&lt;img src=x onerror=alert(1)&gt; &#34;quoted&#34;"' in html


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, "/"),
        ("/watch/abc?t=3", "/watch/abc?t=3"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_sign_in_only_returns_to_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_the_next_address_is_escaped_in_the_sign_in_page(app: TestClient) -> None:  # type: ignore[type-arg]
    html = app.get("/signin", params={"next": '/search?q="><script>alert(1)</script>'}).text
    assert "<script>alert" not in html
    assert 'data-next="/search?q=&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_page_paths_get_html_errors_and_api_paths_keep_json(app: TestClient) -> None:  # type: ignore[type-arg]
    page = app.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    assert_page_headers(page)
    bad_id = app.get("/watch/not-an-id")
    assert bad_id.status_code == 404 and "There is no video at this address." in bad_id.text
    api = app.get("/v1/nothing")
    assert api.status_code == 404
    assert api.json() == {"detail": "nothing here: /v1/nothing"}
    assert app.get("/media/x/y.txt").headers["content-type"] == "application/json"


def test_api_paths_keep_json_errors_in_an_app_mounted_under_a_prefix(tmp_path: Path) -> None:
    # Serve mounts an app at a route prefix (the tests mount a second one at /tus-limits).
    settings = load_settings({"VODRAY_DATA_DIR": str(tmp_path / "vodray")})
    app = create_app(settings, catalog=None, dispatcher=None, storage=Storage(settings.storage))
    with TestClient(app, root_path="/mounted") as client:
        api = client.get("/mounted/v1/nothing")
        assert api.status_code == 404 and api.headers["content-type"] == "application/json"
        page = client.get("/mounted/no/such/page")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_static_files_have_their_types_and_the_page_headers(app: TestClient) -> None:  # type: ignore[type-arg]
    module = app.get("/static/app/js/session.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.headers["x-content-type-options"] == "nosniff"
    assert app.get("/static/app/css/site.css").headers["content-type"].startswith("text/css")
    assert app.get("/static/app/../../pages.py").status_code == 404
    assert app.get("/static/vendor/shaka-player@9.9.9/shaka-player.ui.js").status_code == 404


def test_vendor_files_are_the_pinned_builds_cached_by_version(app: TestClient) -> None:  # type: ignore[type-arg]
    urls = vendor_urls()
    assert urls["shaka_js"].startswith("/static/vendor/shaka-player@5.")
    assert urls["tus_js"].startswith("/static/vendor/tus-js-client@4.3.")
    if "@missing/" in urls["shaka_js"]:
        pytest.fail("serve/web/node_modules is not installed: run `make install`")
    shaka = app.get(urls["shaka_js"])
    assert shaka.status_code == 200 and "shaka" in shaka.text[:5000].lower()
    assert shaka.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert app.get(urls["shaka_css"]).headers["content-type"].startswith("text/css")
    watch = app.get(f"/watch/{'b' * 32}").text
    assert urls["shaka_js"] in watch and urls["shaka_css"] in watch
    assert urls["tus_js"] in app.get("/upload").text
