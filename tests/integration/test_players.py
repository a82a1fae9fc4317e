"""Real players in a real browser: Shaka Player plays ``manifest.mpd`` (and ``master.m3u8`` through
its own HLS parser) and hls.js plays ``master.m3u8`` of a video vodray made, in headless
Chromium (the distribution's, driven by Playwright). Each player lists the renditions and
switches to another one (frames decoded at the new height), lists the subtitle languages (the
clip's English track and its Spanish translation by the tiny Argos model) and shows a cue's text
at its time.

The page comes from a loopback HTTP server of its own, another origin than the API, so the
players meet vodray's CORS answers as a player on a web page does; the video is private, so
every request carries the owner's bearer token. The players are the pinned npm packages in
``tests/players`` (``make install`` puts them there); nothing is downloaded while this runs.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from pipelines.demo import DEMO_CUES
from pipelines.subtitles.cues import read_vtt
from tests.integration.client import register_user, upload, wait_finished

PLAYERS_DIR = Path(__file__).resolve().parents[1] / "players"
SHAKA_JS = "node_modules/shaka-player/dist/shaka-player.compiled.js"
HLS_JS = "node_modules/hls.js/dist/hls.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SOURCE_S = 8.0
"""Long enough that a rendition switch lands well before the end while the clip plays."""
HEIGHTS = [180, 360]
"""The session's ladder (``TEST_LADDER``) at or below the 360p source."""
CUE_AT_S = 3.0
"""Inside the second demo cue (2.5-4.0 s)."""
STEP_TIMEOUT_S = 30.0
"""Each thing a player must do (load, play, switch, show a cue) gets this long; 2 busy cores."""


@pytest.fixture(scope="module")
def video(api: httpx.Client, clip: Any, es_model: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A private 360p clip with an English subtitle track, ready, and its published cues."""
    user = register_user(api)
    source = clip(seconds=SOURCE_S, width=640, height=360, audio=True, subtitles=True)
    response = upload(api, user, source, title="played in a browser")
    assert response.status_code == 202, response.text
    vid = response.json()["id"]
    status = wait_finished(api, user, vid)
    assert status["status"] == "ready", status
    meta = api.get(f"/v1/videos/{vid}", headers=user.headers).json()
    assert [t["lang"] for t in meta["subtitles"]] == ["en", "es"], meta
    cues = {}
    folder = tmp_path_factory.mktemp("published-vtt")
    for lang in ("en", "es"):
        vtt = api.get(f"/v1/videos/{vid}/subtitles/{lang}.vtt", headers=user.headers)
        assert vtt.status_code == 200, vtt.text
        (folder / f"{lang}.vtt").write_bytes(vtt.content)
        cues[lang] = read_vtt(folder / f"{lang}.vtt")
    assert [c.text for c in cues["en"]] == [text for _, _, text in DEMO_CUES]
    # The model's words, so a player showing English for es would fail.
    assert all(c.text for c in cues["es"]) and {c.text for c in cues["es"]}.isdisjoint(
        c.text for c in cues["en"]
    )
    return SimpleNamespace(
        id=vid, token=user.access, mpd=meta["manifest_url"], m3u8=meta["hls_url"], cues=cues
    )


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


def require_browser_and_players() -> None:
    missing = [p for p in (SHAKA_JS, HLS_JS) if not (PLAYERS_DIR / p).is_file()]
    if not Path(CHROMIUM).is_file():
        missing.append(CHROMIUM)
    if missing:
        pytest.fail(f"the browser test needs {missing}: run `make install`")


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """``tests/players`` over HTTP on loopback: a real origin (a page fulfilled by request
    interception counts as a public one, and Chromium then blocks its requests to loopback)."""
    require_browser_and_players()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(PLAYERS_DIR))
    )
    thread = threading.Thread(target=server.serve_forever, name="player-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    require_browser_and_players()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required"],
            timeout=STEP_TIMEOUT_S * 1000,
        )
        try:
            yield chromium
        finally:
            chromium.close()


class PlayerPage:
    """One page with one player loaded (``players.js`` drives it), and what went wrong on it:
    page errors and console errors (a refused request, a CORS rejection)."""

    def __init__(self, browser: Any, page_origin: str, script: str) -> None:
        self.page = browser.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_S * 1000)
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("console", self._console)
        self.requests: list[str] = []
        self.page.on("requestfinished", self._finished)
        self.page.on("requestfailed", lambda r: self.requests.append(f"{r.url} failed: {r.failure}"))
        self.page.goto(f"{page_origin}/index.html")
        self.page.add_script_tag(url=script)
        self.page.add_script_tag(url="players.js")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _finished(self, request: Any) -> None:
        response = request.response()
        self.requests.append(f"{request.method} {request.url} {response.status if response else '-'}")

    def run(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def run_async(self, call: str, what: str, *args: Any) -> Any:
        """Await ``vodray.<call>(...args)`` in the page, for at most ``STEP_TIMEOUT_S``."""
        from playwright.sync_api import Error as PlaywrightError

        script = f"([ms, what, ...args]) => vodray.within(ms, what, vodray.{call}(...args))"
        try:
            return self.page.evaluate(script, [STEP_TIMEOUT_S * 1000, what, *args])
        except PlaywrightError as error:
            raise AssertionError(f"{what}: {error.message}; {self.diagnosis()}") from None

    def state(self) -> dict[str, Any]:
        return dict(
            self.run(
                """() => ({
                    currentTime: vodray.video.currentTime, paused: vodray.video.paused,
                    ended: vodray.video.ended, videoHeight: vodray.video.videoHeight,
                    error: vodray.video.error && vodray.video.error.message,
                    problems: vodray.problems, tracks: vodray.tracks ? vodray.tracks() : null,
                })"""
            )
        )

    def wait_until(self, predicate: str, what: str, arg: Any = None) -> Any:
        """Poll ``predicate`` (a JS function of ``arg``) until it returns something truthy, and
        answer that; fail with the player's state if it does not within ``STEP_TIMEOUT_S``."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        timeout_ms = STEP_TIMEOUT_S * 1000
        try:
            return self.page.wait_for_function(
                predicate, arg=arg, polling=100, timeout=timeout_ms
            ).json_value()
        except PlaywrightTimeout:
            raise AssertionError(f"{what}: not within {STEP_TIMEOUT_S} s; {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        return f"player: {self.state()}; page: {self.problems}; requests: {self.requests}"

    def all_problems(self) -> list[str]:
        return [*self.problems, *self.run("() => vodray.problems")]


@pytest.fixture
def player_page(browser: Any, page_origin: str) -> Iterator[Any]:
    """``player_page(script)``: a fresh page with that player; closed after the test."""
    pages: list[PlayerPage] = []

    def open_page(script: str) -> PlayerPage:
        pages.append(PlayerPage(browser, page_origin, script))
        return pages[-1]

    yield open_page
    for opened in pages:
        opened.page.close()


def play_and_switch(player: PlayerPage) -> tuple[int, int]:
    """Play from the start, then switch to the other rendition while playing: (from, to) heights,
    each seen as the height of the frames the video element shows."""
    player.run_async("play", "video.play()")
    player.wait_until("() => vodray.video.currentTime > 0.5", "playback did not start")
    first = player.wait_until("() => vodray.video.videoHeight", "no frame was decoded")
    assert first in HEIGHTS, player.state()
    target = next(h for h in HEIGHTS if h != first)
    frames_before = player.run("() => vodray.video.getVideoPlaybackQuality().totalVideoFrames")
    player.run("(height) => vodray.selectHeight(height)", target)
    player.wait_until(
        """([height, frames]) => vodray.video.videoHeight === height
            && vodray.video.getVideoPlaybackQuality().totalVideoFrames > frames + 5
            && !vodray.video.ended""",
        f"frames at {target}p after switching from {first}p",
        [target, frames_before],
    )
    return first, target


def cue_shown(player: PlayerPage, lang: str, text: str) -> list[Any]:
    """Select ``lang``, pause, seek into the second cue and wait until ``lang``'s native text
    track, showing, has ``text`` as its active cue; answers that track's cues [start, end, text]."""
    player.run("(lang) => vodray.selectLanguage(lang)", lang)
    player.run("(at) => { vodray.video.pause(); vodray.video.currentTime = at; }", CUE_AT_S)
    return list(
        player.wait_until(
            """([lang, text]) => {
                const track = Array.from(vodray.video.textTracks)
                    .find((t) => t.language === lang && t.mode === "showing");
                const active = track ? Array.from(track.activeCues || [], (c) => c.text) : [];
                return active.includes(text)
                    && Array.from(track.cues, (c) => [c.startTime, c.endTime, c.text]);
            }""",
            f"the {lang} cue {text!r} shown at {CUE_AT_S} s",
            [lang, text],
        )
    )


def timings(cues: list[Any]) -> list[tuple[float, float]]:
    return [(round(start, 3), round(end, 3)) for start, end, _ in cues]


def assert_cues_shown_as_published(player: PlayerPage, published: dict[str, list[Any]]) -> None:
    """Each language's second cue is shown at its time, and the track holds every published cue
    at the published times (in HLS, where X-TIMESTAMP-MAP puts them on the media's timeline)."""
    for lang, cues in published.items():
        shown = cue_shown(player, lang, cues[1].text)
        assert timings(shown) == [(c.start_ms / 1000, c.end_ms / 1000) for c in cues], (lang, shown)
        assert [text for _, _, text in shown] == [c.text for c in cues], (lang, shown)


@pytest.mark.parametrize("manifest", ["mpd", "m3u8"])
def test_shaka_plays_the_ladder_and_shows_both_subtitle_languages(
    player_page: Any, video: Any, manifest: str
) -> None:
    """Shaka on manifest.mpd (the DASH player) and on master.m3u8 (its own HLS parser)."""
    player = player_page(SHAKA_JS)
    url = getattr(video, manifest)
    tracks = player.run_async("openShaka", f"Shaka loading {url}", url, video.token)
    assert sorted(v["height"] for v in tracks["variants"]) == HEIGHTS, tracks
    assert [(t["language"], t["label"], t["mimeType"]) for t in tracks["texts"]] == [
        ("en", "English", "text/vtt"),
        ("es", "Español", "text/vtt"),
    ]
    if manifest == "m3u8":
        # Shaka (5.2) holds HLS text back until a video append gives it the timestamp offset:
        # a text track first chosen once every video segment is buffered (all of this short
        # clip) never shows a cue. Choosing one before playback, as a player with a preferred
        # language does, is enough; later switches (to es below) then work.
        player.run("(lang) => vodray.selectLanguage(lang)", "en")
    _, target = play_and_switch(player)
    [active] = [v for v in player.run("() => vodray.tracks().variants") if v["active"]]
    assert active["height"] == target
    assert_cues_shown_as_published(player, video.cues)
    assert [t["language"] for t in player.run("() => vodray.tracks().texts") if t["active"]] == ["es"]
    assert player.all_problems() == []


def test_hlsjs_plays_the_hls_ladder_and_shows_both_subtitle_languages(player_page: Any, video: Any) -> None:
    player = player_page(HLS_JS)
    tracks = player.run_async("openHls", "hls.js loading master.m3u8", video.m3u8, video.token)
    assert sorted(level["height"] for level in tracks["levels"]) == HEIGHTS, tracks
    assert [(t["lang"], t["name"]) for t in tracks["subtitleTracks"]] == [
        ("en", "English"),
        ("es", "Español"),
    ]
    _, target = play_and_switch(player)
    state = player.run("() => vodray.tracks()")
    assert state["levels"][state["currentLevel"]]["height"] == target
    assert_cues_shown_as_published(player, video.cues)
    assert player.run("() => vodray.tracks()")["subtitleTrack"] == 1  # es
    assert player.all_problems() == []
