"""The pages in a real browser: the distribution's headless Chromium driven by Playwright (no
browser is downloaded), one browser for the whole run, pages from the session's real app on
loopback (the same origin as the API, as in production).

Every tab records what a person would not see but must not happen: console errors, uncaught
page errors, Content-Security-Policy violations (``securitypolicyviolation``, reported from
every document the tab opens) and dialogs (an ``alert`` from injected markup). A test ends
with none of them unless it names the one it caused. Screenshots of each page at 1280 and 375
px wide go to ``tests/artifacts/pages/`` (git-ignored; ``VODRAY_SCREENSHOTS_DIR`` moves them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STEP_TIMEOUT_S = 30.0
"""Each thing a page must do (load, sign in, play, switch) gets this long on 2 busy cores."""
WIDTHS = (1280, 375)
SCREENSHOTS = Path(
    os.environ.get("VODRAY_SCREENSHOTS_DIR") or Path(__file__).resolve().parents[2] / "artifacts" / "pages"
)
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__vodrayProblem(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || document.location.href}:${event.lineNumber}`);
});
window.__firstPlaying = null;
document.addEventListener("playing", (event) => {
  if (window.__firstPlaying === null) window.__firstPlaying = event.target.currentTime;
}, true);
"""


class Tab:
    """One browser context and page, and everything that went wrong on it."""

    def __init__(self, browser: Any, base_url: str, width: int = WIDTHS[0]) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            viewport={"width": width, "height": 860}, locale="en-US", base_url=base_url
        )
        self.context.set_default_timeout(STEP_TIMEOUT_S * 1000)
        self.problems: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        self.context.expose_function("__vodrayProblem", self._report)
        self.context.add_init_script(WATCH_CSP)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        self.requests: list[str] = []
        self.page.on("requestfinished", lambda request: self.requests.append(request.url))

    def _report(self, problem: str) -> None:
        self.problems.append(problem)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} ({self.page.url})")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.type} {dialog.message!r}")
        dialog.dismiss()

    def allow(self, pattern: str) -> None:
        """A console error this test causes on purpose (and says so)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]

    def goto(self, path: str) -> Any:
        response = self.page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def js(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait_for(self, predicate: str, what: str, arg: Any = None, timeout_s: float = STEP_TIMEOUT_S) -> Any:
        """Poll ``predicate`` (a JS function of ``arg``) until it is truthy and answer it; fail
        with the page's state if it is not within the time."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            handle = self.page.wait_for_function(predicate, arg=arg, polling=100, timeout=timeout_s * 1000)
            return handle.json_value()
        except PlaywrightTimeout:
            raise AssertionError(f"{what}: not within {timeout_s} s; {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        video = self.js(
            """() => { const v = document.querySelector("video");
                return v && {t: v.currentTime, paused: v.paused, h: v.videoHeight, ready: v.readyState,
                             error: v.error && v.error.message}; }"""
        )
        status = self.js(
            """() => [...document.querySelectorAll('[role=status],[role=alert]')]
                .map(e => e.innerText).filter(Boolean)"""
        )
        return (
            f"url {self.page.url}; video {video}; status {status}; problems {self.problems};"
            f" requests {self.requests[-15:]}"
        )

    def sign_in(self, user: SimpleNamespace) -> None:
        self.goto("/signin")
        self.page.fill("#username", user.username)
        self.page.fill("#password", user.password)
        self.page.click("#signin-form button[type=submit]")
        self.page.wait_for_url(f"{self.base_url}/")
        self.page.wait_for_selector("#signout")
        assert self.page.inner_text("#account .who").strip().endswith(user.username)

    def screenshot(self, name: str) -> list[Path]:
        """``{name}-1280.png`` and ``{name}-375.png``: the page at a desktop's and a phone's width,
        each checked to need no sideways scrolling."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        original = self.page.viewport_size
        paths = []
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 860})
            self.page.wait_for_timeout(300)  # the layout settles (media queries, the player's size)
            overflow = self.js(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{name} at {width} px scrolls sideways by {overflow} px"
            path = SCREENSHOTS / f"{name}-{width}.png"
            self.page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        self.page.set_viewport_size(original)
        return paths

    def close(self) -> None:
        self.context.close()


def require_browser() -> None:
    from serve.web.vendor import vendor_urls

    missing = [url for url in vendor_urls().values() if "@missing/" in url]
    if not Path(CHROMIUM).is_file():
        missing.append(CHROMIUM)
    if missing:
        pytest.fail(f"the page tests need {missing}: run `make install`")


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """One browser for the page tests, closed when they end: Playwright's sync API keeps an
    event loop running in the main thread while it is open, and every later test that runs a
    loop of its own (asyncio.run, anyio.run, the players' own Playwright) would fail."""
    from playwright.sync_api import sync_playwright

    require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required"],
            timeout=STEP_TIMEOUT_S * 1000,
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tab(chromium: Any, base_url: str) -> Iterator[Callable[..., Tab]]:
    """``tab(width=1280)``: a fresh browser context and page; at the end of the test, none of them
    may have logged a console error, thrown, met a CSP violation or opened a dialog."""
    opened: list[Tab] = []

    def open_tab(width: int = WIDTHS[0]) -> Tab:
        opened.append(Tab(chromium, base_url, width))
        return opened[-1]

    yield open_tab
    problems = [f"{tab.page.url}: {p}" for tab in opened for p in tab.unexpected()]
    for each in opened:
        each.close()
    assert problems == [], problems
