"""Upload through the page: choose a file, title, description, visibility, a sidecar subtitle
file with its language and a language to translate into; the progress of the transfer, then of
the processing steps, then a link to watch; the home page meanwhile shows the card's live
progress; the owner deletes the video from its page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.pages.conftest import Tab
from tests.integration.pages.test_pages_watch import srt


class Interrupter:
    """Playwright's route on the tus upload URL: it breaks the connection of the second PATCH once
    (the client must go on from the server's offset), then of every PATCH from the fifth on, as a
    connection that stays down until the person reloads the page."""

    BROKEN_ONCE = 1
    DOWN_FROM = 4

    def __init__(self) -> None:
        self.patches: list[tuple[int, str]] = []
        """(Upload-Offset, "sent" or "cut") of every PATCH the page sent."""
        self.heads = 0

    def __call__(self, route: Any) -> None:
        request = route.request
        if request.method == "HEAD":
            self.heads += 1
        if request.method != "PATCH":
            route.continue_()
            return
        index = len(self.patches)
        cut = index == self.BROKEN_ONCE or index >= self.DOWN_FROM
        self.patches.append((int(request.headers["upload-offset"]), "cut" if cut else "sent"))
        if cut:
            route.abort("connectionreset")
        else:
            route.continue_()


def test_upload_survives_a_dropped_connection_and_a_reload_then_processes_plays_and_is_deleted(
    tab: Callable[..., Tab],
    new_user: Callable[..., Any],
    clip: Any,
    es_model: None,
    api: httpx.Client,
    base_url: str,
    storage: Any,
    tmp_path: Any,
) -> None:
    user = new_user()
    page = tab()
    page.sign_in(user)
    page.goto("/upload")
    page.page.wait_for_selector("#upload-form:not([hidden])")
    source = clip(seconds=8, width=640, height=360, audio=True, subtitles=False)
    assert source.stat().st_size > 4 * 256 * 1024  # several chunks of the smallest size
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
    page.wait_for("() => document.querySelector('input[name=translate_to][value=es]')", "the languages")
    page.page.check("input[name=translate_to][value=es]")
    page.screenshot("upload")

    cut = Interrupter()
    page.page.route("**/v1/uploads/*", cut)
    page.page.click("#upload-button")
    page.wait_for("() => document.querySelector('#upload-rate').innerText.includes('/s')", "bytes per second")
    for _ in range(120):
        if len(cut.patches) > Interrupter.DOWN_FROM:
            break
        page.page.wait_for_timeout(250)
    patches = list(cut.patches)
    # The second PATCH's connection broke: the client asked the server for its offset (HEAD) and
    # sent on from there, not from 0 (the server kept nothing of the broken PATCH).
    assert [what for _, what in patches[:4]] == ["sent", "cut", "sent", "sent"], patches
    assert cut.heads >= 1 and patches[2][0] == patches[1][0] > 0, patches
    # The connection is down for good; the person reloads the page and chooses the file again.
    kept = patches[Interrupter.DOWN_FROM][0]
    page.page.unroute("**/v1/uploads/*")
    page.page.reload()
    page.page.wait_for_selector("#resume-list:not([hidden])")
    assert source.name in page.page.inner_text("#resume-items")
    page.page.set_input_files("#upload-file", str(source))
    assert page.page.input_value("#upload-title") == "From the page <b>ok</b>"  # as first sent
    assert page.page.is_checked("input[name=visibility][value=public]")
    page.page.click("#add-sidecar")  # files are not kept across a reload: the sidecar again
    page.page.set_input_files("#sidecar-file-0", str(sidecar))
    page.page.fill("#sidecar-lang-0", "en")
    page.page.click("#upload-button")
    page.wait_for(
        "() => document.querySelector('#upload-resumed').innerText.startsWith('Continuing')", "resumed"
    )
    resumed_at = int(page.page.inner_text("#upload-resumed").split("from ")[1].rstrip("%."))
    assert resumed_at == 100 * kept // source.stat().st_size, (resumed_at, kept, patches)
    page.allow(r"ERR_CONNECTION_RESET|ERR_FAILED")  # the connections the test broke

    page.page.wait_for_selector("#processing-panel:not([hidden])")
    video_id = page.page.get_attribute("#processing-panel", "data-video-id")
    # The source is the file, byte for byte, after the break and the reload.
    from cluster import layout

    assert storage.read_bytes(layout.source_key(video_id)) == source.read_bytes()
    # The home page, meanwhile, shows the video's card (with its step and progress while it runs).
    home = tab()
    home.sign_in(user)
    home.wait_for("() => document.querySelector('.card')", "the card")
    assert home.page.locator(".card .card-title").first.inner_text() == "From the page <b>ok</b>"
    page.screenshot("upload-processing")
    home.screenshot("home")

    page.wait_for("() => !document.querySelector('#processing-done').hidden", "processing", timeout_s=240)
    assert page.page.inner_text("#processing-percent") == "100%"
    steps = page.page.locator("#processing-steps li.done").all_inner_texts()
    assert steps[:3] == ["Uploading", "Waiting for a free worker", "Reading the file"], steps
    page.page.click("#watch-link")
    page.page.wait_for_url(f"{base_url}/watch/{video_id}")
    meta = api.get(f"/v1/videos/{video_id}").json()  # public: no token needed
    assert (meta["title"], meta["description"]) == (
        "From the page <b>ok</b>",
        "Sent by tests/integration/pages",
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
