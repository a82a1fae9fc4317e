"""The watch page, the search page and what another user sees, on one private video with an
English sidecar track of unique words and its Spanish translation (the tiny model): Shaka with
its UI plays it past two segment boundaries, switches quality and subtitles through its own
menus, the transcript follows and seeks, ``?t=``, resume and "copy link" work, a search lands
within half a second of the line, the owner adds subtitles and a translation, and every title,
description and cue shows as text."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from pipelines.subtitles.cues import read_vtt
from tests.integration.client import register_user, wait_finished
from tests.integration.pages.conftest import Tab

WORD = f"quokka{uuid.uuid4().hex[:6]}"
"""A word no other video of the session has, so the search finds this video's line only."""
TITLE = f'<img src=x onerror=alert(1)> "Kanga" & {WORD}'
DESCRIPTION = "First line\n<script>alert(2)</script> & more"
CUES = [
    (0.5, 2.0, f"Hello from the {WORD} test"),
    (2.5, 4.0, "A second line, <b>bold</b> & plain"),
    (6.2, 7.8, f"The {WORD} waves"),
]
SECONDS = 12.0
"""Six 2-second segments: room to play past two boundaries and to resume short of the end."""
SEARCH_CUE = CUES[2]


def srt(cues: list[tuple[float, float, str]]) -> str:
    def stamp(seconds: float) -> str:
        ms = round(seconds * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for i, (a, b, text) in enumerate(cues, 1))


@pytest.fixture(scope="module")
def video(
    api: httpx.Client, clip: Any, es_model: None, tmp_path_factory: pytest.TempPathFactory
) -> SimpleNamespace:
    owner = register_user(api)
    source = clip(seconds=SECONDS, width=640, height=360, audio=True, subtitles=False)
    with source.open("rb") as body:
        response = api.post(
            "/v1/videos",
            headers=owner.headers,
            files=[
                ("file", (source.name, body, "video/mp4")),
                ("subtitles", ("words.srt", srt(CUES).encode(), "application/x-subrip")),
            ],
            data={
                "title": TITLE,
                "description": DESCRIPTION,
                "visibility": "private",
                "subtitles_lang": "en",
            },
        )
    assert response.status_code == 202, response.text
    vid = response.json()["id"]
    assert wait_finished(api, owner, vid)["status"] == "ready"
    meta = api.get(f"/v1/videos/{vid}", headers=owner.headers).json()
    assert [t["lang"] for t in meta["subtitles"]] == ["en", "es"], meta
    folder = tmp_path_factory.mktemp("watch-vtt")
    cues = {}
    for lang in ("en", "es"):
        (folder / f"{lang}.vtt").write_bytes(
            api.get(f"/v1/videos/{vid}/subtitles/{lang}.vtt", headers=owner.headers).content
        )
        cues[lang] = [(c.start_ms / 1000, c.end_ms / 1000, c.text) for c in read_vtt(folder / f"{lang}.vtt")]
    return SimpleNamespace(id=vid, owner=owner, meta=meta, cues=cues)


def shown(text: str) -> str:
    """A cue as a viewer reads it: the WebVTT file keeps & < > escaped and tags are dropped."""
    return re.sub(r"<[^>]*>", "", text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def open_watch(tab: Tab, video: SimpleNamespace, query: str = "") -> None:
    tab.goto(f"/watch/{video.id}{query}")
    tab.wait_for("() => !document.querySelector('#copy-link').disabled", "the player loaded")


def overflow_menu(tab: Tab, item: str, choice: str) -> None:
    """Open Shaka's overflow (settings) menu, its ``item`` submenu, and click ``choice``: the
    clicks a person makes."""
    open_submenu(tab, item)
    tab.page.locator(".shaka-sub-menu:visible button", has_text=re.compile(f"^{re.escape(choice)}$")).click()


def open_submenu(tab: Tab, item: str) -> None:
    tab.page.hover("#player")
    back = tab.page.locator(".shaka-sub-menu:visible .shaka-back-to-overflow-button")
    if back.count():  # a submenu stays open after a choice: back to the list, as a person would
        back.click()
    elif not tab.page.locator(".shaka-overflow-menu:visible").count():
        tab.page.click(".shaka-overflow-menu-button")
    tab.page.click(item)


def frames(tab: Tab) -> int:
    return int(tab.js("() => document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames"))


def test_the_player_plays_switches_quality_and_subtitles_in_shakas_own_menus(
    tab: Callable[..., Tab], video: SimpleNamespace
) -> None:
    page = tab()
    page.sign_in(video.owner)
    open_watch(page, video)
    # Every user text is text: the title's <img> is characters, not an element (nor an alert).
    assert page.page.inner_text("#video-title") == TITLE
    assert page.js("() => document.querySelector('#video-title').children.length") == 0
    assert page.js("() => document.querySelector('#video-description').textContent") == DESCRIPTION
    assert page.js("() => document.title") == f"{TITLE} · vodray"
    assert page.js("() => document.querySelectorAll('img[src=x], main script').length") == 0
    assert page.page.inner_text("#renditions").count("p ·") == 2  # 180p and 360p

    page.page.keyboard.press("k")  # Shaka's shortcut, from anywhere on the page
    page.wait_for("() => !document.querySelector('video').paused", "k starts playback")
    page.wait_for(
        "() => { const v = document.querySelector('video'); return v.currentTime > 4.3 && !v.ended; }",
        "playback past the segment boundaries at 2 s and 4 s",
    )
    segments = {m.group(1) for url in page.requests if (m := re.search(r"/(seg-\d+)\.m4s", url))}
    assert {"seg-00001", "seg-00002", "seg-00003"} <= segments, segments

    page.page.keyboard.press("k")  # paused while the menus are used: the clip is short
    first = page.js("() => document.querySelector('video').videoHeight")
    target = 180 if first == 360 else 360
    overflow_menu(page, ".shaka-resolution-button", f"{target}p")
    before = frames(page)
    page.page.keyboard.press("k")  # on from where it paused
    page.wait_for(
        "([h, n]) => { const v = document.querySelector('video'); return v.videoHeight === h"
        " && v.getVideoPlaybackQuality().totalVideoFrames > n + 5; }",
        f"frames at {target}p after choosing it in the quality menu",
        [target, before],
    )

    overflow_menu(page, ".shaka-caption-button", "Español")
    page.js("() => { const v = document.querySelector('video'); v.pause(); v.currentTime = 3.0; }")
    spanish = shown(video.cues["es"][1][2])
    page.wait_for(
        "(text) => document.querySelector('.shaka-text-container').innerText.trim() === text",
        f"the Spanish cue {spanish!r} on the video at 3 s",
        spanish,
    )
    # The transcript follows the language chosen in the player.
    page.page.click("#transcript-toggle")
    page.wait_for(
        "() => document.querySelector('#transcript-lang').value === 'es'", "the transcript follows es"
    )

    open_submenu(page, ".shaka-playbackrate-button")
    rates = page.page.locator(".shaka-playback-rate-preset-btn").all_inner_texts()
    assert [float(r.replace(",", ".")) for r in rates] == [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]
    page.page.locator(".shaka-playback-rate-preset-btn", has_text=re.compile(r"^2[.,]0$")).click()
    assert page.js("() => document.querySelector('video').playbackRate") == 2
    page.page.keyboard.press("Escape")
    assert page.page.locator(".shaka-fullscreen-button").count() == 1
    assert page.page.locator(".shaka-pip-button").count() == 1
    page.page.keyboard.press("m")
    assert page.js("() => document.querySelector('video').muted") is True
    page.screenshot("watch")


def rgb(image: bytes, width: int, height: int, crop: str = "") -> np.ndarray:
    """An image (PNG, JPEG) as ``height`` x ``width`` RGB, decoded and scaled by ffmpeg."""
    scale = f"{crop + ',' if crop else ''}scale={width}:{height}"
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            "pipe:",
            "-vf",
            scale,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        input=image,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.int16)


def storyboard_tiles(api: httpx.Client, video: SimpleNamespace) -> list[tuple[float, float, str]]:
    """(start, end, ``crop=`` filter) of every tile the storyboard's WebVTT names."""
    vtt = api.get(video.meta["storyboard_url"], headers=video.owner.headers).text
    found = []
    for start, end, x, y, w, h in re.findall(r"(\S+) --> (\S+)\n\S+#xywh=(\d+),(\d+),(\d+),(\d+)", vtt):
        found.append((seconds(start), seconds(end), f"crop={w}:{h}:{x}:{y}"))
    return found


def seconds(stamp: str) -> float:
    return sum(float(part) * 60**i for i, part in enumerate(reversed(stamp.split(":"))))


def test_hovering_the_seek_bar_shows_the_storyboard_tile_of_that_moment(
    tab: Callable[..., Tab], video: SimpleNamespace, api: httpx.Client
) -> None:
    # The storyboard step (storyboard:{id}) publishes it and names it in the metadata.
    assert video.meta.get("storyboard_url"), f"no storyboard_url in the metadata: {sorted(video.meta)}"
    page = tab()
    page.sign_in(video.owner)
    open_watch(page, video)
    page.page.click("#transcript-toggle")  # beside the player in the screenshot
    page.page.hover("#player")
    bar = page.page.locator(".shaka-seek-bar").bounding_box()
    assert bar is not None
    page.page.mouse.move(bar["x"] + bar["width"] * 0.75, bar["y"] + bar["height"] / 2)
    tile = page.wait_for(
        """() => { const box = document.querySelector('.shaka-player-ui-thumbnail-container');
            const img = box && box.querySelector('img.shaka-player-ui-thumbnail-image');
            if (!box || getComputedStyle(box).visibility !== 'visible' || !img || !img.complete) return null;
            const time = box.innerText.trim();
            return img.naturalWidth > 0 && {src: img.src, width: img.naturalWidth, time}; }""",
        "a storyboard tile over the seek bar",
    )
    # A private video: the sprite came with the owner's token and is shown from a blob: URL.
    assert tile["src"].startswith("blob:"), tile
    pointed = seconds(tile["time"])
    assert 8 <= pointed <= 9, tile  # about three quarters of 12 s: the time under the pointer
    shown = page.page.locator(".shaka-player-ui-thumbnail-image-container")
    box = shown.bounding_box()
    assert box is not None and box["width"] < tile["width"], (box, tile)  # one tile of the sheet
    width, height = round(box["width"]), round(box["height"])
    seen = rgb(shown.screenshot(), width, height)
    sprite = api.get(
        video.meta["storyboard_url"].replace(".vtt", ".jpg"), headers=video.owner.headers
    ).content
    # The tile on screen is the sheet's tile of the moment pointed at (the closest of all tiles).
    distance = {
        (start, end): float(np.abs(seen - rgb(sprite, width, height, crop)).mean())
        for start, end, crop in storyboard_tiles(api, video)
    }
    (start, end), best = min(distance.items(), key=lambda item: item[1])
    assert start - 1 <= pointed < end + 1, (
        pointed,
        start,
        end,
        sorted(distance.items(), key=lambda i: i[1])[:4],
    )
    assert best < 20, distance
    page.screenshot("watch-storyboard")


def test_the_transcript_filters_and_a_line_seeks_there(
    tab: Callable[..., Tab], video: SimpleNamespace
) -> None:
    page = tab()
    page.sign_in(video.owner)
    open_watch(page, video)
    page.page.click("#transcript-toggle")
    assert page.page.get_attribute("#transcript-toggle", "aria-expanded") == "true"
    page.wait_for(
        "() => document.querySelectorAll('#transcript-lines li').length === 3", "the transcript's lines"
    )
    lines = page.page.locator("#transcript-lines .text").all_inner_texts()
    assert lines == [shown(text) for _, _, text in video.cues["en"]]
    assert lines[1] == "A second line, bold & plain"  # tags dropped, & read back, shown as text
    page.page.fill("#transcript-filter", WORD)
    assert page.page.locator("#transcript-lines li:visible").count() == 2
    assert page.page.inner_text("#transcript-count") == "2 of 3 lines"
    page.page.fill("#transcript-filter", "")

    start = video.cues["en"][2][0]
    page.page.locator("#transcript-lines button").nth(2).click()  # "The quokka… waves" at 6.2 s
    at = page.wait_for(
        "() => { const v = document.querySelector('video'); return !v.seeking && v.currentTime; }", "the seek"
    )
    assert start - 0.05 <= at <= start + 0.5, at
    page.wait_for(
        """() => { const marked = document.querySelectorAll('#transcript-lines [aria-current=true]');
            return marked.length === 1 && marked[0].innerText.includes('waves'); }""",
        "the line being played is marked",
    )


def test_resume_where_left_and_copy_a_link_at_this_time(
    tab: Callable[..., Tab], video: SimpleNamespace, base_url: str
) -> None:
    page = tab()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page.sign_in(video.owner)
    open_watch(page, video)
    page.page.keyboard.press("k")
    page.wait_for("() => document.querySelector('video').currentTime > 5", "playback to 5 s")
    page.page.keyboard.press("k")
    page.wait_for("() => document.querySelector('video').paused", "k pauses")
    left_at = page.js("() => document.querySelector('video').currentTime")

    page.page.click("#copy-link")
    page.wait_for(
        "() => document.querySelector('#copy-result').innerText.startsWith('Copied')", "the link copied"
    )
    copied = page.js("() => navigator.clipboard.readText()")
    assert copied == f"{base_url}/watch/{video.id}?t={int(left_at)}"

    page.page.reload()
    page.wait_for("() => !document.querySelector('#copy-link').disabled", "the player loaded again")
    page.wait_for(
        "() => document.querySelector('#player-status').innerText.startsWith('Resumed at')",
        "the resume notice",
    )
    resumed = page.js("() => document.querySelector('video').currentTime")
    assert abs(resumed - left_at) < 0.5, (resumed, left_at)
    page.page.click("#player-status button")  # "Start from the beginning"
    assert page.js("() => document.querySelector('video').currentTime") < 0.5
    # A shared link wins over the saved position: ?t=3 starts at 3 s.
    open_watch(page, video, "?t=3")
    page.wait_for("() => window.__firstPlaying !== null", "a linked moment starts playing")
    assert 2.95 <= page.js("() => window.__firstPlaying") <= 3.5


def test_a_searched_line_opens_the_video_within_half_a_second_of_it(
    tab: Callable[..., Tab], video: SimpleNamespace, base_url: str
) -> None:
    page = tab()
    page.sign_in(video.owner)
    page.page.fill("#site-q", f"{WORD} waves")
    page.page.press("#site-q", "Enter")
    page.page.wait_for_url(re.compile(r"/search\?q="))
    page.wait_for("() => document.querySelectorAll('#hits .hit').length > 0", "search results")
    hits = page.page.locator("#hits .hit")
    assert hits.count() == 1, page.page.inner_text("#hits")  # the English line (es is the model's words)
    hit = hits.first
    assert hit.locator("h2").inner_text() == TITLE
    assert hit.locator(".snippet mark").all_inner_texts() == [WORD, "waves"]
    assert hit.locator(".snippet").inner_text() == f"The {WORD} waves"
    assert "Subtitle line · English · at 0:06" in hit.inner_text()
    page.wait_for(
        "() => document.querySelector('#hits .hit img') && document.querySelector('#hits .hit img').complete"
        " && document.querySelector('#hits .hit img').naturalWidth > 0",
        "the poster (private: fetched with the token)",
    )
    page.screenshot("search")
    hit.locator("h2 a").click()
    page.page.wait_for_url(f"{base_url}/watch/{video.id}?t={SEARCH_CUE[0]:g}")
    page.wait_for("() => window.__firstPlaying !== null", "playback starts at the line")
    started = page.js("() => window.__firstPlaying")
    assert SEARCH_CUE[0] - 0.05 <= started <= SEARCH_CUE[0] + 0.5, started


def test_another_user_sees_the_private_video_in_no_page(
    tab: Callable[..., Tab], video: SimpleNamespace, new_user: Callable[..., Any]
) -> None:
    for signed_in in (True, False):
        page = tab()
        if signed_in:
            page.sign_in(new_user())
        page.goto("/")
        page.wait_for("() => !document.querySelector('#videos-status .loading')", "the list")
        assert page.page.locator(f"a[href='/watch/{video.id}']").count() == 0
        assert WORD not in page.page.inner_text("main")
        page.goto(f"/search?q={WORD}")
        page.wait_for("() => document.querySelector('#search-summary').innerText !== ''", "the search")
        assert page.page.inner_text("#search-summary") == "0 results"
        page.goto(f"/watch/{video.id}")
        page.wait_for("() => document.querySelector('#watch-status h1')", "the not-found answer")
        assert page.page.inner_text("#watch-status h1") == "No such video"
        assert WORD not in page.page.content()
        assert page.js("() => document.querySelector('video').currentSrc") == ""
        page.allow(rf"status of 404 .*/watch/{video.id}")  # the metadata's 404, exactly as for no video


UNLABELLED = """() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea, button, a[href], [role=button], summary')]
    .filter((el) => el.getClientRects().length && !el.disabled)
    .filter((el) => getComputedStyle(el).visibility !== 'hidden')
    .filter((el) => {
        const named = (el.getAttribute('aria-label') || '').trim() || el.getAttribute('aria-labelledby')
            || (el.title || '').trim() || (el.labels && el.labels.length);
        const text = ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName) ? '' : el.innerText.trim()
            || [...el.querySelectorAll('img[alt]')].map((img) => img.alt).join('').trim();
        return !named && !text;
    })
    .map((el) => el.outerHTML.slice(0, 120))"""
FOCUS_SHOWN = """() => { const el = document.activeElement; if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const shown = style.boxShadow !== 'none' || style.outlineStyle !== 'none';
    return {tag: el.tagName, id: el.id, shown}; }"""


def test_every_control_has_a_label_and_the_keyboard_focus_shows(
    tab: Callable[..., Tab], video: SimpleNamespace
) -> None:
    page = tab()
    page.sign_in(video.owner)
    for path in (
        "/",
        "/upload",
        f"/search?q={WORD}",
        f"/watch/{video.id}",
        "/signout",
        "/signin",
        "/register",
    ):
        page.goto(path)
        if path.startswith("/watch"):
            page.wait_for("() => !document.querySelector('#copy-link').disabled", "the player")
            page.page.hover("#player")  # Shaka's controls too
        else:
            page.wait_for("() => !document.querySelector('.loading')", f"{path} loaded")
        assert page.js(UNLABELLED) == [], path
        page.page.keyboard.press("Tab")
        first = page.js(FOCUS_SHOWN)
        assert first == {"tag": "A", "id": "", "shown": True} and page.page.is_visible(".skip"), (path, first)
        for _ in range(5):
            page.page.keyboard.press("Tab")
            focused = page.js(FOCUS_SHOWN)
            assert focused and focused["shown"], (path, focused)


@pytest.fixture(scope="module")
def it_model(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """An en->it model (Italian: no other test asks for it), for the page's Translate button."""
    from pipelines.subtitles.models import install_model
    from tests.argos_model import build_argos_package

    package = build_argos_package(tmp_path_factory.mktemp("argos-it") / "en_it.argosmodel", to_code="it")
    install_model(package, settings.subtitles.models_dir)


def test_the_owner_adds_a_subtitle_file_and_a_translation(
    tab: Callable[..., Tab], video: SimpleNamespace, it_model: None, api: httpx.Client, tmp_path: Any
) -> None:
    page = tab()
    page.sign_in(video.owner)
    open_watch(page, video)
    french = tmp_path / "fr.srt"
    french.write_text(srt([(1.0, 3.0, "Bonjour <i>à tous</i>"), (4.0, 5.0, "Au revoir")]))
    page.page.set_input_files("#subtitle-file", str(french))
    page.page.fill("#subtitle-lang", "fr")
    page.page.click("#subtitle-form button[type=submit]")
    page.wait_for(
        "() => document.querySelector('#subtitle-status').innerText.startsWith('Added')", "the file added"
    )
    page.wait_for(
        "() => [...document.querySelectorAll('#transcript-lang option')].some(o => o.value === 'fr')",
        "fr in the transcript",
    )
    assert "Français (fr, WebVTT)" in page.page.inner_text("#downloads")

    page.wait_for(
        "() => [...document.querySelectorAll('#translate-lang option')].some(o => o.value === 'it')",
        "it offered",
    )
    page.page.select_option("#translate-lang", "it")
    page.page.click("#translate-button")
    page.wait_for(
        "() => document.querySelector('#translate-status').innerText.includes('is ready')",
        "the translation",
        timeout_s=120,
    )
    meta = api.get(f"/v1/videos/{video.id}", headers=video.owner.headers).json()
    assert {t["lang"]: t["source"] for t in meta["subtitles"]} == {
        "en": "sidecar",
        "es": "translated",
        "fr": "sidecar",
        "it": "translated",
    }
    assert "Italiano (it, WebVTT)" in page.page.inner_text("#downloads")
