"""Upload through the page: choose a file, title, description, visibility, a sidecar subtitle
file with its language and a language to translate into; the progress of the transfer, then of
the processing steps, then a link to watch; the home page meanwhile shows the card's live
progress; the owner deletes the video from its page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.pages.conftest import Tab
from tests.integration.pages.test_pages_watch import srt


def test_upload_follow_the_processing_watch_and_delete(
    tab: Callable[..., Tab],
    new_user: Callable[..., Any],
    clip: Any,
    es_model: None,
    api: httpx.Client,
    base_url: str,
    tmp_path: Any,
) -> None:
    user = new_user()
    page = tab()
    page.sign_in(user)
    page.goto("/upload")
    page.page.wait_for_selector("#upload-form:not([hidden])")
    source = clip(seconds=8, width=640, height=360, audio=True, subtitles=False)
    sidecar = tmp_path / "lines.srt"
    sidecar.write_text(srt([(0.5, 2.5, "Uploaded from the page"), (3.0, 5.0, "Second page line")]))
    page.page.set_input_files("#upload-file", str(source))
    assert page.page.input_value("#upload-title") == source.stem  # the file's name, to edit
    page.page.fill("#upload-title", "From the page <b>ok</b>")
    page.page.fill("#upload-description", "Sent by tests/integration/pages")
    page.page.check("input[name=visibility][value=public]")
    page.page.click("#add-sidecar")
    page.page.set_input_files("#sidecar-file-0", str(sidecar))
    page.page.fill("#sidecar-lang-0", "en")
    page.wait_for(
        "() => document.querySelector('input[name=translate_to][value=es]')", "the installed languages"
    )
    page.page.check("input[name=translate_to][value=es]")
    page.screenshot("upload")
    page.page.click("#upload-button")

    page.page.wait_for_selector("#processing-panel:not([hidden])")
    # The home page, meanwhile, shows the video's card with its step and progress.
    home = tab()
    home.sign_in(user)
    home.wait_for("() => document.querySelector('.card')", "the card")
    assert home.page.locator(".card .card-title").first.inner_text() == "From the page <b>ok</b>"
    page.screenshot("upload-processing")
    home.screenshot("home")

    page.wait_for(
        "() => !document.querySelector('#processing-done').hidden", "processing to ready", timeout_s=240
    )
    assert page.page.inner_text("#processing-percent") == "100%"
    steps = page.page.locator("#processing-steps li.done").all_inner_texts()
    assert steps[:4] == [
        "Uploading",
        "Waiting for a free worker",
        "Reading the file",
        "Encoding the renditions",
    ], steps
    page.page.click("#watch-link")
    page.page.wait_for_url(re.compile(r"/watch/[0-9a-f]{32}$"))
    video_id = page.page.url.rsplit("/", 1)[1]
    meta = api.get(f"/v1/videos/{video_id}").json()  # public: no token needed
    assert (
        meta["title"] == "From the page <b>ok</b>"
        and meta["description"] == "Sent by tests/integration/pages"
    )
    assert [(t["lang"], t["source"]) for t in meta["subtitles"]] == [("en", "sidecar"), ("es", "translated")]
    assert meta["translate_to"] == ["es"]
    page.wait_for("() => !document.querySelector('#copy-link').disabled", "the player")

    page.page.click("#delete-button")
    page.page.click("#delete-confirm")
    page.page.wait_for_url(f"{base_url}/?deleted=1")
    assert api.get(f"/v1/videos/{video_id}").status_code == 404
    assert page.page.locator(f"a[href='/watch/{video_id}']").count() == 0


def test_error_pages_are_pages(tab: Callable[..., Tab], base_url: str) -> None:
    page = tab()
    response = page.page.goto("/no/such/page")
    assert response is not None and response.status == 404
    assert page.page.inner_text("h1") == "Page not found"
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    page.allow(r"status of 404 .*/no/such/page")  # the page's own status
    page.screenshot("error-404")
