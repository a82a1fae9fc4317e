"""Subtitles that arrive after the upload, end to end on real Ray, ffmpeg and HTTP: sidecars sent
with the upload, a sidecar added to a ready video, and a backfill translating every ready video
into a new language with Ray Data and a real (tiny) Argos model.

The session shares one catalog, one Ray and one models dir with the other test files, in any
order: their videos may be ready and their models (en->es) installed. So these tests look at
their own videos, and at their own languages (a translation another file's model made is
checked to be in both manifests, never counted as this file's).
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray
from click.testing import CliRunner

from cluster import layout
from cluster.cli import main
from cluster.errors import BadRequest
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines.subtitles.backfill import backfill_translations
from pipelines.subtitles.models import install_model
from tests.argos_model import build_argos_package
from tests.integration.client import register_user, wait_finished

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
ENGLISH_SRT = (
    b"1\n00:00:00,100 --> 00:00:00,900\nHello from vodray\n\n"
    b"2\n00:00:01,000 --> 00:00:01,800\nThe lighthouse keeper waits\n"
)
FRENCH_VTT = b"WEBVTT\n\n00:00:00.200 --> 00:00:01.400\nLe gardien du phare attend\n"


def own_languages(api: httpx.Client, video_id: str, user: SimpleNamespace) -> list[tuple[str, str]]:
    """``(lang, source)`` of the video's tracks but translations, after checking that both
    manifests list exactly the languages the metadata does, translations included."""
    meta = api.get(f"/v1/videos/{video_id}", headers=user.headers)
    assert meta.status_code == 200, meta.text
    tracks = [(t["lang"], t["source"]) for t in meta.json()["subtitles"]]
    listed = sorted(lang for lang, _ in tracks)
    assert mpd_languages(api, video_id, user) == hls_languages(api, video_id, user) == listed
    return [(lang, source) for lang, source in tracks if source != "translated"]


def mpd_languages(api: httpx.Client, video_id: str, user: SimpleNamespace) -> list[str]:
    mpd = api.get(f"/media/{video_id}/{layout.MPD_NAME}", headers=user.headers)
    assert mpd.status_code == 200, mpd.text
    sets = ET.fromstring(mpd.content).iterfind("d:Period/d:AdaptationSet", MPD_NS)
    return sorted(str(s.get("lang")) for s in sets if s.get("mimeType") == "text/vtt")


def hls_languages(api: httpx.Client, video_id: str, user: SimpleNamespace) -> list[str]:
    master = api.get(f"/media/{video_id}/{layout.MASTER_NAME}", headers=user.headers)
    assert master.status_code == 200, master.text
    return sorted(re.findall(r'#EXT-X-MEDIA:TYPE=SUBTITLES,.*?LANGUAGE="([^"]+)"', master.text))


@pytest.fixture(scope="module")
def two_ready(api: httpx.Client, clip: Any) -> dict[str, Any]:
    """Two ready videos whose only subtitles are an English sidecar sent with the upload."""
    user = register_user(api)
    source = clip(seconds=2, width=320, height=180, audio=False, subtitles=False).read_bytes()
    ids = []
    for title in ("first", "second"):
        answer = api.post(
            "/v1/videos",
            headers=user.headers,
            files=[("file", ("clip.mp4", source)), ("subtitles", ("clip.en.srt", ENGLISH_SRT))],
            data={"title": title, "subtitles_lang": "en", "translate_to": ""},
        )
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    for vid in ids:
        assert wait_finished(api, user, vid)["status"] == "ready"
    return {"user": user, "ids": ids}


def test_a_sidecar_sent_with_the_upload_is_a_track_and_searchable(
    api: httpx.Client, two_ready: dict[str, Any]
) -> None:
    user, vid = two_ready["user"], two_ready["ids"][0]
    assert own_languages(api, vid, user) == [("en", "sidecar")]
    vtt = api.get(f"/v1/videos/{vid}/subtitles/en.vtt", headers=user.headers)
    assert vtt.status_code == 200 and "The lighthouse keeper waits" in vtt.text
    found = api.get("/v1/search", params={"q": "lighthouse", "scope": "subtitles"}, headers=user.headers)
    ids = two_ready["ids"]  # (public videos of other test files may say it too)
    hits = [(h["video_id"], h["lang"], h["start_s"]) for h in found.json()["items"] if h["video_id"] in ids]
    assert sorted(hits) == sorted((v, "en", 1.0) for v in ids), found.text


def test_a_sidecar_added_to_a_ready_video_is_published_at_once(
    api: httpx.Client, two_ready: dict[str, Any], catalog: Any
) -> None:
    user, vid = two_ready["user"], two_ready["ids"][1]
    answer = api.post(
        f"/v1/videos/{vid}/subtitles",
        headers=user.headers,
        data={"lang": "fr"},
        files={"file": ("gardien.vtt", FRENCH_VTT)},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["published"] is True and body["lang"] == "fr" and body["cues"] == 1
    assert body["url"].endswith(f"/v1/videos/{vid}/subtitles/fr.vtt")
    assert own_languages(api, vid, user) == [("en", "sidecar"), ("fr", "sidecar")]
    vtt = api.get(f"/v1/videos/{vid}/subtitles/fr.vtt", headers=user.headers)
    assert vtt.status_code == 200 and "00:00:00.200 --> 00:00:01.400\nLe gardien du phare attend" in vtt.text
    found = api.get("/v1/search", params={"q": "phare", "lang": "fr"}, headers=user.headers).json()
    hits = [(h["video_id"], h["lang"], h["start_s"], h["end_s"]) for h in found["items"]]
    assert [hit for hit in hits if hit[0] in two_ready["ids"]] == [(vid, "fr", 0.2, 1.4)]
    # The same language again replaces the track: still listed once.
    again = api.post(
        f"/v1/videos/{vid}/subtitles",
        headers=user.headers,
        data={"lang": "fr"},
        files={"file": ("gardien.srt", b"1\n00:00:00,500 --> 00:00:01,000\nUn autre phare\n")},
    )
    assert again.status_code == 201 and again.json()["index"] == 2, again.text
    assert own_languages(api, vid, user) == [("en", "sidecar"), ("fr", "sidecar")]
    assert [c["text"] for c in ray.get(catalog.get_cues.remote(vid, "fr"))] == ["Un autre phare"]


def test_backfill_translates_every_ready_video_once(
    api: httpx.Client,
    two_ready: dict[str, Any],
    catalog: Any,
    settings: Settings,
    storage: Storage,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    user, ids = two_ready["user"], sorted(two_ready["ids"])
    with pytest.raises(BadRequest, match="no installed translation model translates to 'de'"):
        backfill_translations(settings, "de", progress=False)  # before the model: refused, nothing done
    assert all(ray.get(catalog.get_cues.remote(vid, "de")) == [] for vid in ids)
    cli_env = {"VODRAY_DATA_DIR": str(settings.data_dir)}
    for lang, said in (("de", "no installed translation model translates to 'de'"), ("d1", "'d1' is not")):
        refused = CliRunner().invoke(main, ["backfill", "translate", "--lang", lang], env=cli_env)
        assert refused.exit_code == 1 and said in refused.output, refused.output

    package = build_argos_package(tmp_path / "en_de.argosmodel", to_code="de")
    install_model(package, settings.subtitles.models_dir)
    # A ready video whose published files are gone: it fails alone, and the others go on.
    lost = uuid.uuid4().hex
    ray.get(
        catalog.create_video.remote(lost, user.id, "files lost", "", "private", f"sources/{lost}/source", 1)
    )
    ready = {"duration_s": 2.0, "width": 320, "height": 180, "renditions": [], "has_audio": False}
    ray.get(catalog.mark_ready.remote(lost, **ready, media_bytes=1))
    ray.get(catalog.put_cues.remote(lost, "en", "en", [{"start_s": 0, "end_s": 1, "text": "hello there"}]))
    try:
        summary = backfill_translations(settings, "de")
    finally:
        ray.get(catalog.delete_video.remote(lost))
    assert "publishing de: 100%" in capfd.readouterr().err  # the progress bar, video by video
    assert lost in summary.failed and lost not in summary.translated, summary
    assert "failed (video " in str(summary)
    # Ready videos of other test files are translated too: only this file's are looked at.
    assert set(ids) <= set(summary.translated) and not set(ids) & {*summary.skipped, *summary.unavailable}
    assert summary.cues == sum(len(ray.get(catalog.get_cues.remote(v, "de"))) for v in summary.translated)
    for vid in ids:
        assert "de" in mpd_languages(api, vid, user) and "de" in hls_languages(api, vid, user)
        english = ray.get(catalog.get_cues.remote(vid, "en"))
        german = ray.get(catalog.get_cues.remote(vid, "de"))
        assert len(german) == len(english) == 2
        assert [(c["start_s"], c["end_s"]) for c in german] == [(c["start_s"], c["end_s"]) for c in english]
        assert {c["source_lang"] for c in german} == {"en"} and all(c["text"] for c in german)
        assert [c["text"] for c in german] != [c["text"] for c in english]  # the model's output
        vtt = storage.read_bytes(layout.media_key(vid, "subtitles/de.vtt")).decode()
        assert german[0]["text"].split()[0] in vtt
        meta = api.get(f"/v1/videos/{vid}", headers=user.headers).json()
        assert ("de", "translated") in [(t["lang"], t["source"]) for t in meta["subtitles"]]

    # Re-run from the CLI: nothing to do, both skipped, manifests unchanged.
    manifests = {vid: storage.read_bytes(layout.media_key(vid, layout.MPD_NAME)) for vid in ids}
    cues = {vid: ray.get(catalog.get_cues.remote(vid, "de")) for vid in ids}
    rerun = CliRunner().invoke(
        main,
        ["backfill", "translate", "--lang", "de", "--no-progress"],
        env=cli_env,
    )
    assert rerun.exit_code == 0, rerun.output
    done = re.search(r"de: 0 video\(s\) translated \(0 cues\), (\d+) skipped \(already there\)", rerun.output)
    assert done is not None and int(done.group(1)) >= len(ids), rerun.output
    assert {vid: storage.read_bytes(layout.media_key(vid, layout.MPD_NAME)) for vid in ids} == manifests
    assert {vid: ray.get(catalog.get_cues.remote(vid, "de")) for vid in ids} == cues

    # Search in German finds the translated line, and only in German.
    text = ray.get(catalog.get_cues.remote(ids[0], "de"))[1]["text"]
    word = next(w for w in re.findall(r"[^\W\d_]{3,}", text))
    found = api.get("/v1/search", params={"q": word, "lang": "de"}, headers=user.headers).json()
    assert found["items"] and {h["lang"] for h in found["items"]} == {"de"}
    assert ids[0] in {h["video_id"] for h in found["items"]}
