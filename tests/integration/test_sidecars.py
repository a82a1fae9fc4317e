"""Sidecar subtitle files over real HTTP: sent with an upload, or added to a video later.

Good files are kept at ``sources/{vid}/subtitles/{nn}.{lang}.{ext}`` and become tracks; bad ones
(junk, too big, wrong name, missing or bad language) get a 4xx with a readable detail and
leave nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray

from cluster import layout
from cluster.errors import NotFound
from cluster.settings import Settings
from cluster.storage import Storage
from tests.integration.client import upload, wait_finished
from tests.integration.test_api_bad_input import nothing_left, publish_fake_video, remove_fake_video

__all__ = ["nothing_left"]  # a fixture, used by name

FRENCH_SRT = (
    b"1\n00:00:00,200 --> 00:00:01,000\nBonjour <b>tout</b> le monde\n\n"
    b"2\n00:00:01,200 --> 00:00:02,400\nLe phare guette la mer\n"
)
GERMAN_VTT = b"WEBVTT\n\n00:00:00.300 --> 00:00:01.500\nDer Leuchtturm wacht\n"
CLIP_FORM = {"title": "sidecar clip", "visibility": "private"}


def upload_with(
    api: httpx.Client,
    user: SimpleNamespace,
    clip: bytes,
    sidecars: list[tuple[str, bytes]],
    langs: list[str],
    **fields: str,
) -> httpx.Response:
    files = [("file", ("clip.mp4", clip, "video/mp4"))]
    files += [("subtitles", (name, data, "application/octet-stream")) for name, data in sidecars]
    data: dict[str, Any] = {**CLIP_FORM, **fields}
    if langs:
        data["subtitles_lang"] = langs
    return api.post("/v1/videos", headers=user.headers, files=files, data=data)


def test_an_upload_keeps_its_sidecars_and_translate_to(
    api: httpx.Client, new_user: Any, clip: Any, storage: Storage, dispatcher: Any
) -> None:
    user = new_user()
    answer = upload_with(
        api,
        user,
        clip(seconds=1).read_bytes(),
        [("film.fr.srt", FRENCH_SRT), ("Film.VTT", GERMAN_VTT)],
        ["fr", "DE"],
        translate_to=" es, fr ,es",
    )
    assert answer.status_code == 202, answer.text
    vid = answer.json()["id"]
    try:
        kept = sorted(storage.list(layout.sidecar_prefix(vid)))
        assert kept == [layout.sidecar_key(vid, 0, "fr", "srt"), layout.sidecar_key(vid, 1, "de", "vtt")]
        assert storage.read_bytes(kept[0]) == FRENCH_SRT and storage.read_bytes(kept[1]) == GERMAN_VTT
        metadata = api.get(f"/v1/videos/{vid}", headers=user.headers).json()
        assert metadata["translate_to"] == ["es", "fr"]
    finally:
        ray.get(dispatcher.cancel.remote(vid))
        api.delete(f"/v1/videos/{vid}", headers=user.headers)


BIG = 50 * 1024 * 1024


@pytest.mark.usefixtures("nothing_left")
@pytest.mark.parametrize(
    ("sidecars", "langs", "fields", "status", "detail"),
    [
        ([("junk.srt", os.urandom(4096))], ["fr"], {}, 422, "subtitle file 'junk.srt'"),
        ([("notes.txt", FRENCH_SRT)], ["fr"], {}, 422, "must be named *.srt or *.vtt"),
        ([("film.srt", FRENCH_SRT)], [], {}, 400, "send one 'subtitles_lang' (e.g. 'fr') per subtitle file"),
        ([("film.srt", FRENCH_SRT)], ["f r!"], {}, 400, "must be a language tag such as 'en' or 'pt-BR'"),
        ([("film.srt", FRENCH_SRT)], ["fr"], {"translate_to": "es,x1"}, 400, "translate_to: 'x1' is not"),
        ([], [], {"translate_to": ",".join(["es", "fr", "de", "it", "pt", "nl", "sv", "da", "fi"])}, 400,
         "translate_to names 9 languages; the limit is 8"),
        ([("big.srt", FRENCH_SRT + b"\n" * BIG)], ["fr"], {}, 413,
         "subtitle file 'big.srt' is larger than the limit of 10 MB"),
    ],
    ids=["binary-junk", "wrong-extension", "missing-lang", "bad-lang", "bad-translate-to",
         "too-many-languages", "50-MB"],
)  # fmt: skip
def test_bad_sidecars_at_upload_are_refused_and_leave_nothing(
    api: httpx.Client,
    new_user: Any,
    clip: Any,
    catalog: Any,
    sidecars: list[tuple[str, bytes]],
    langs: list[str],
    fields: dict[str, str],
    status: int,
    detail: str,
) -> None:
    user = new_user()
    answer = upload_with(api, user, clip(seconds=1).read_bytes(), sidecars, langs, **fields)
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    # The listing holds everyone's public videos too: none of them may be this user's.
    listed = ray.get(catalog.list_videos.remote(user.id, 100, 0))["items"]
    assert [video["id"] for video in listed if video["owner_id"] == user.id] == []


@pytest.fixture
def ready_fake(catalog: Any, storage: Storage, new_user: Any) -> Iterator[tuple[str, SimpleNamespace]]:
    """A ready video (published without the pipeline) and its owner."""
    owner = new_user()
    vid = publish_fake_video(catalog, storage, owner.id)
    yield vid, owner
    remove_fake_video(catalog, storage, vid)


@pytest.mark.parametrize(
    ("form", "files", "status", "detail"),
    [
        ({"lang": "fr"}, {"file": ("junk.vtt", os.urandom(4096))}, 422, "subtitle file 'junk.vtt'"),
        ({"lang": "fr"}, {"file": ("big.srt", FRENCH_SRT + b"\n" * BIG)}, 413, "larger than the limit of 10"),
        ({"lang": "fr"}, {"file": ("film.ass", FRENCH_SRT)}, 422, "must be named *.srt or *.vtt"),
        ({}, {"file": ("film.srt", FRENCH_SRT)}, 400, "each subtitle file needs its language"),
        ({"lang": "french!"}, {"file": ("film.srt", FRENCH_SRT)}, 400, "must be a language tag"),
        ({"lang": "fr"}, {}, 400, "send exactly one subtitle file in the form field 'file'"),
        ({"lang": "fr"}, {"file": ("empty.srt", b"")}, 422, "subtitle file 'empty.srt' is empty"),
        (
            {"lang": "fr"},
            {"file": ("none.vtt", b"WEBVTT\n\nNOTE nothing\n")},
            422,
            "holds no cue that can be kept",
        ),
    ],
    ids=["junk", "50-MB", "wrong-extension", "missing-lang", "bad-lang", "no-file", "empty", "no-cues"],
)
def test_bad_sidecars_added_later_are_refused_and_leave_nothing(
    api: httpx.Client,
    ready_fake: tuple[str, SimpleNamespace],
    storage: Storage,
    catalog: Any,
    form: dict[str, str],
    files: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    vid, owner = ready_fake
    media_before = {key: storage.read_bytes(key) for key in storage.list(layout.media_prefix(vid))}
    answer = api.post(f"/v1/videos/{vid}/subtitles", headers=owner.headers, data=form, files=files or None)
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    assert storage.list(layout.sidecar_prefix(vid)) == []
    assert {key: storage.read_bytes(key) for key in storage.list(layout.media_prefix(vid))} == media_before
    assert ray.get(catalog.get_cues.remote(vid)) == []


def test_only_the_owner_adds_subtitles(
    api: httpx.Client, ready_fake: tuple[str, SimpleNamespace], new_user: Any, storage: Storage
) -> None:
    vid, _ = ready_fake  # public
    stranger = new_user()
    files = {"file": ("film.srt", FRENCH_SRT)}
    url = f"/v1/videos/{vid}/subtitles"
    answer = api.post(url, headers=stranger.headers, data={"lang": "fr"}, files=files)
    assert answer.status_code == 403
    assert answer.json() == {"detail": "only the owner may add subtitles to a video"}
    anonymous = api.post(f"/v1/videos/{vid}/subtitles", data={"lang": "fr"}, files=files)
    assert anonymous.status_code == 401
    assert storage.list(layout.sidecar_prefix(vid)) == []


def test_a_sidecar_for_a_video_still_processing_is_kept_for_its_job(
    api: httpx.Client, new_user: Any, catalog: Any, storage: Storage, settings: Settings
) -> None:
    owner = new_user()
    vid = os.urandom(16).hex()
    ray.get(catalog.create_video.remote(vid, owner.id, "queued", "", "private", layout.source_key(vid), 1))
    try:
        answer = api.post(
            f"/v1/videos/{vid}/subtitles",
            headers=owner.headers,
            data={"lang": "de"},
            files={"file": ("film.vtt", GERMAN_VTT)},
        )
        assert answer.status_code == 201, answer.text
        assert answer.json() == {
            "index": 0,
            "lang": "de",
            "source": "sidecar:film.vtt",
            "cues": 1,
            "dropped": 0,
            "repaired": 0,
            "warnings": [],
            "published": False,
        }
        assert storage.list(layout.sidecar_prefix(vid)) == [layout.sidecar_key(vid, 0, "de", "vtt")]
        assert ray.get(catalog.get_cues.remote(vid)) == []
    finally:
        storage.delete_prefix(layout.source_prefix(vid))
        ray.get(catalog.delete_video.remote(vid))


SPANISH_SRT = b"1\n00:00:00,400 --> 00:00:01,200\nEl faro vigila el mar\n"
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
LATE_CLIP_S = 20.0
"""Long enough that the job still encodes for seconds after its subtitles step is done."""


def manifest_languages(api: httpx.Client, vid: str, user: SimpleNamespace) -> tuple[list[str], list[str]]:
    """The subtitle languages of ``manifest.mpd`` and of ``master.m3u8``, as served, sorted."""
    mpd = api.get(f"/media/{vid}/{layout.MPD_NAME}", headers=user.headers)
    master = api.get(f"/media/{vid}/{layout.MASTER_NAME}", headers=user.headers)
    assert mpd.status_code == master.status_code == 200, (mpd.text, master.text)
    sets = ET.fromstring(mpd.content).iterfind("d:Period/d:AdaptationSet", MPD_NS)
    in_mpd = sorted(str(s.get("lang")) for s in sets if s.get("mimeType") == "text/vtt")
    in_hls = sorted(re.findall(r'#EXT-X-MEDIA:TYPE=SUBTITLES,.*?LANGUAGE="([^"]+)"', master.text))
    return in_mpd, in_hls


def subtitles_step_record(storage: Storage, vid: str, timeout_s: float = 120) -> dict[str, Any]:
    """The record the job's subtitles step writes when it is done (its last write), once whole."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for key in storage.list(layout.work_root(vid)):
            if key.endswith("/subtitles/tracks.json"):
                with contextlib.suppress(NotFound, ValueError):  # (seen while being written)
                    return dict(json.loads(storage.read_bytes(key)))
        time.sleep(0.05)
    raise AssertionError(f"the subtitles step of {vid} did not finish in {timeout_s} s")


def spanish_hits(api: httpx.Client, user: SimpleNamespace, vid: str) -> list[tuple[float, float]]:
    found = api.get("/v1/search", params={"q": "faro", "lang": "es"}, headers=user.headers)
    assert found.status_code == 200, found.text
    return [(h["start_s"], h["end_s"]) for h in found.json()["items"] if h["video_id"] == vid]


def test_a_sidecar_posted_while_the_job_runs_reaches_the_player(
    api: httpx.Client, new_user: Any, clip: Any, storage: Storage, catalog: Any
) -> None:
    owner = new_user()
    source = clip(seconds=LATE_CLIP_S, width=640, height=360, audio=False, subtitles=False)
    answer = upload(api, owner, source, title="a sidecar during the job")
    assert answer.status_code == 202, answer.text
    vid = answer.json()["id"]
    try:
        # The window: the subtitles step has listed the (no) sidecars, the encode goes on.
        step_read = subtitles_step_record(storage, vid).get("sidecars")
        status = api.get(f"/v1/videos/{vid}/status", headers=owner.headers).json()
        assert status["status"] == "processing", status  # (in encode: the clip is long enough)
        posted = api.post(
            f"/v1/videos/{vid}/subtitles",
            headers=owner.headers,
            data={"lang": "es"},
            files={"file": ("faro.srt", SPANISH_SRT)},
        )
        assert posted.status_code == 201, posted.text
        assert (posted.json()["index"], posted.json()["published"]) == (0, False)  # not ready yet
        assert wait_finished(api, owner, vid)["status"] == "ready"

        # The job publishes it right after the video is ready; its cues go last (search finds them).
        deadline = time.monotonic() + 60
        while not (hits := spanish_hits(api, owner, vid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hits == [(0.4, 1.2)]
        # Its track is in both manifests, served as .vtt and in the metadata.
        in_mpd, in_hls = manifest_languages(api, vid, owner)
        assert "es" in in_mpd and in_mpd == in_hls
        vtt = api.get(f"/v1/videos/{vid}/subtitles/es.vtt", headers=owner.headers)
        assert vtt.status_code == 200 and "00:00:00.400 --> 00:00:01.200\nEl faro vigila el mar" in vtt.text
        meta = api.get(f"/v1/videos/{vid}", headers=owner.headers).json()
        assert ("es", "sidecar") in [(t["lang"], t["source"]) for t in meta["subtitles"]]
        assert "es" not in meta["subtitles_unavailable"]
        # ... though the step had listed the sidecars before this one was stored.
        assert step_read == []
    finally:
        api.delete(f"/v1/videos/{vid}", headers=owner.headers)


@pytest.fixture
def two_api_replicas(deployment: Any, base_url: str, settings: Settings) -> Iterator[None]:
    """The API on two replicas (two processes) for one test, then back to the configured count
    (``VODRAY_API_REPLICAS``, two by default: then this only checks that both run)."""
    from ray import serve

    from serve.deployment import APP_NAME, VodrayApi, wait_until_healthy

    def run_with(replicas: int) -> None:
        serve.run(
            VodrayApi.options(num_replicas=replicas).bind(settings),  # type: ignore[attr-defined]
            name=APP_NAME,
            route_prefix="/",
        )
        deadline = time.monotonic() + 120
        while serve.status().applications[APP_NAME].deployments["VodrayApi"].replica_states != {
            "RUNNING": replicas
        }:
            assert time.monotonic() < deadline, serve.status()
            time.sleep(0.2)
        wait_until_healthy(base_url)

    run_with(2)
    try:
        yield
    finally:
        run_with(settings.http.api_replicas)


def post_at_once(
    base_url: str, vid: str, owner: Any, sidecars: list[tuple[str, str]]
) -> list[httpx.Response]:
    """POST each ``(lang, line)`` as a one-cue WebVTT sidecar of ``vid``, all released together
    (a connection each, behind a barrier); the answers in the same order."""
    start = threading.Barrier(len(sidecars))

    def post(sidecar: tuple[str, str]) -> httpx.Response:
        lang, line = sidecar
        with httpx.Client(base_url=base_url, timeout=120) as client:
            start.wait()
            return client.post(
                f"/v1/videos/{vid}/subtitles",
                headers=owner.headers,
                data={"lang": lang},
                files={"file": (f"{lang}.vtt", f"WEBVTT\n\n00:00:00.500 --> 00:00:01.500\n{line}\n")},
            )

    with ThreadPoolExecutor(len(sidecars)) as pool:
        return list(pool.map(post, sidecars))


CONCURRENT_LANGUAGES = ("de", "fr", "it", "pt", "nl", "sv", "pl", "tr")


@contextlib.contextmanager
def small_ready_video(api: httpx.Client, owner: SimpleNamespace, clip: Any, title: str) -> Iterator[str]:
    """A 2 s clip without subtitles uploaded by ``owner`` and ready; deleted afterwards."""
    source = clip(seconds=2, width=320, height=180, audio=False, subtitles=False)
    answer = upload(api, owner, source, title=title)
    assert answer.status_code == 202, answer.text
    vid = answer.json()["id"]
    try:
        assert wait_finished(api, owner, vid)["status"] == "ready"
        yield vid
    finally:
        api.delete(f"/v1/videos/{vid}", headers=owner.headers)


@pytest.mark.usefixtures("two_api_replicas")
def test_concurrent_sidecars_on_two_replicas_are_all_published(
    api: httpx.Client, new_user: Any, clip: Any, catalog: Any, base_url: str
) -> None:
    owner = new_user()
    with small_ready_video(api, owner, clip, "many sidecars at once") as vid:
        before, _ = manifest_languages(api, vid, owner)
        answers = post_at_once(base_url, vid, owner, [(lang, f"in {lang}") for lang in CONCURRENT_LANGUAGES])
        assert [a.status_code for a in answers] == [201] * len(answers), [a.text for a in answers]
        assert all(a.json()["published"] for a in answers)

        in_mpd, in_hls = manifest_languages(api, vid, owner)
        assert in_mpd == in_hls == sorted({*before, *CONCURRENT_LANGUAGES})
        meta = api.get(f"/v1/videos/{vid}", headers=owner.headers).json()
        sidecars = sorted(t["lang"] for t in meta["subtitles"] if t["source"] == "sidecar")
        assert sidecars == sorted(CONCURRENT_LANGUAGES)
        for lang in CONCURRENT_LANGUAGES:
            cues = ray.get(catalog.get_cues.remote(vid, lang))
            assert [(c["start_s"], c["end_s"], c["text"]) for c in cues] == [(0.5, 1.5, f"in {lang}")]
            vtt = api.get(f"/v1/videos/{vid}/subtitles/{lang}.vtt", headers=owner.headers)
            assert vtt.status_code == 200 and f"00:00:00.500 --> 00:00:01.500\nin {lang}" in vtt.text


def test_sidecars_of_one_language_sent_at_once_the_newest_is_kept_and_played(
    api: httpx.Client, new_user: Any, clip: Any, storage: Storage, base_url: str
) -> None:
    owner = new_user()
    takes = 6
    with small_ready_video(api, owner, clip, "one language, many takes") as vid:
        answers = post_at_once(base_url, vid, owner, [("fr", f"take {take}") for take in range(takes)])
        assert [a.status_code for a in answers] == [201] * takes, [a.text for a in answers]
        # Each take got its own index (none overwrote another while stored), and a file replaces
        # the older ones of its language: one file stays, the newest take's.
        take_of_index = {a.json()["index"]: take for take, a in enumerate(answers)}
        assert len(take_of_index) == takes, [a.json() for a in answers]
        newest = take_of_index[max(take_of_index)]
        stored = [key for key in storage.list(layout.sidecar_prefix(vid)) if ".fr." in key]
        assert stored == [layout.sidecar_key(vid, max(take_of_index), "fr", "vtt")], stored
        assert storage.read_bytes(stored[0]).decode().rsplit("\n", 2)[-2] == f"take {newest}"
        # The player gets the newest take too.
        vtt = api.get(f"/v1/videos/{vid}/subtitles/fr.vtt", headers=owner.headers)
        assert vtt.status_code == 200 and f"take {newest}" in vtt.text, vtt.text
