"""Subtitles end to end: upload -> extracted, translated by a real (tiny) Argos model on the
translator actor -> tracks in both manifests, the .vtt over the API, cues found by search.

The session's settings translate to es and fr (``integration_env``); only en->es is installed
here, so fr is listed as unavailable.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pysubs2
import pytest

from cluster.settings import Settings
from pipelines.demo import DEMO_CUES
from tests.integration.client import register_user, upload, wait_finished

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SOURCE_S = 6.0


@pytest.fixture(scope="module")
def subtitled(api: httpx.Client, clip: Any, es_model: None) -> Any:
    user = register_user(api)
    source = clip(seconds=SOURCE_S, width=320, height=180, audio=True, subtitles=True)
    response = upload(api, user, source, title="subtitled", visibility="private")
    assert response.status_code == 202, response.text
    vid = response.json()["id"]
    status = wait_finished(api, user, vid)
    assert status["status"] == "ready", status
    meta = api.get(f"/v1/videos/{vid}", headers=user.headers)
    assert meta.status_code == 200, meta.text
    return {"id": vid, "user": user, "meta": meta.json()}


def test_metadata_lists_languages_sources_and_unavailable(subtitled: Any, base_url: str) -> None:
    meta, vid = subtitled["meta"], subtitled["id"]
    api = f"{base_url}/v1/videos/{vid}/subtitles"
    assert meta["subtitles"] == [
        {"lang": "en", "label": "English", "source": "embedded", "url": f"{api}/en.vtt"},
        {"lang": "es", "label": "Español", "source": "translated", "url": f"{api}/es.vtt"},
    ]
    assert meta["subtitles_unavailable"] == ["fr"]
    assert meta["subtitles_skipped"] == [] and meta["subtitles_warnings"] == []


def test_dash_manifest_has_a_text_track_per_language(api: httpx.Client, subtitled: Any) -> None:
    headers, manifest_url = subtitled["user"].headers, subtitled["meta"]["manifest_url"]
    mpd = ET.fromstring(api.get(manifest_url, headers=headers).text)
    texts = [a for a in mpd.iterfind(".//d:AdaptationSet", MPD_NS) if a.get("mimeType") == "text/vtt"]
    assert [(a.get("lang"), a.findtext("d:Label", namespaces=MPD_NS)) for a in texts] == [
        ("en", "English"),
        ("es", "Español"),
    ]
    for aset in texts:
        role = aset.find("d:Role", MPD_NS)
        assert role is not None and role.get("value") == "subtitle"
        [base] = [e.text for e in aset.iterfind("d:Representation/d:BaseURL", MPD_NS)]
        vtt = api.get(urljoin(manifest_url, base), headers=headers)
        assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
        assert vtt.text.startswith("WEBVTT")
    ids = [a.get("id") for a in mpd.iterfind(".//d:AdaptationSet", MPD_NS)]
    assert len(ids) == len(set(ids)), ids


def test_hls_master_has_a_subtitles_group_every_variant_names(
    api: httpx.Client, subtitled: Any, tmp_path: Path
) -> None:
    headers, master_url = subtitled["user"].headers, subtitled["meta"]["hls_url"]
    master = api.get(master_url, headers=headers).text
    media = re.findall(r"#EXT-X-MEDIA:TYPE=SUBTITLES,(.*)", master)
    assert [dict(re.findall(r'([A-Z-]+)="?([^",]*)"?', line))["LANGUAGE"] for line in media] == ["en", "es"]
    assert all('GROUP-ID="subs"' in line and "AUTOSELECT=YES" in line for line in media)
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert variants and all('SUBTITLES="subs"' in line for line in variants)

    for lang, line in zip(["en", "es"], media, strict=True):
        uri = re.search(r'URI="([^"]+)"', line)
        assert uri is not None
        playlist_url = urljoin(master_url, uri.group(1))
        playlist = api.get(playlist_url, headers=headers).text
        target = int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", playlist).group(1))  # type: ignore[union-attr]
        assert target >= SOURCE_S and "#EXT-X-ENDLIST" in playlist
        [segment] = [x for x in playlist.splitlines() if x and not x.startswith("#")]
        vtt = api.get(urljoin(playlist_url, segment), headers=headers)
        assert "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000" in vtt.text.splitlines()[1]
        # ffmpeg's HLS demuxer reads the media playlist as a WebVTT stream with the cue timings
        # (ffmpeg 5.1 skips SUBTITLES renditions of a master: "Can't support the subtitle").
        local = tmp_path / lang
        (local / "subtitles").mkdir(parents=True)
        (local / uri.group(1)).write_text(playlist)
        (local / "subtitles" / segment).write_bytes(vtt.content)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
             str(local / uri.group(1))],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert set(probe.stdout.split()) == {"webvtt"}  # (listed once per program too)
        cues = pysubs2.SSAFile.from_string(vtt.text, format_="vtt")
        assert [(c.start, c.end) for c in cues] == [
            (round(s * 1000), round(e * 1000)) for s, e, _ in DEMO_CUES
        ]
        if lang == "en":
            assert [c.plaintext for c in cues] == [text for _, _, text in DEMO_CUES]
        else:  # the model's words, one non-empty line per cue
            assert all(c.plaintext.strip() for c in cues)
            assert [c.plaintext for c in cues] != [text for _, _, text in DEMO_CUES]


def test_vtt_over_the_api_only_for_who_may_see_the_video(
    api: httpx.Client, subtitled: Any, new_user: Any
) -> None:
    vid, owner = subtitled["id"], subtitled["user"]
    own = api.get(f"/v1/videos/{vid}/subtitles/en.vtt", headers=owner.headers)
    assert own.status_code == 200 and own.headers["content-type"].startswith("text/vtt")
    assert "Hello from vodray" in own.text
    for response in (
        api.get(f"/v1/videos/{vid}/subtitles/en.vtt", headers=new_user().headers),
        api.get(f"/v1/videos/{vid}/subtitles/en.vtt"),
    ):
        assert response.status_code == 404 and response.json()["detail"] == f"no video with id {vid!r}"
    missing = api.get(f"/v1/videos/{vid}/subtitles/fr.vtt", headers=owner.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": f"video {vid} has no fr subtitles"}
    odd = api.get(f"/v1/videos/{vid}/subtitles/en.srt", headers=owner.headers)
    assert odd.status_code == 404 and odd.json()["detail"].startswith("no such subtitle file: 'en.srt'")
    escape = api.get(f"/v1/videos/{vid}/subtitles/..%2Fmanifest.mpd", headers=owner.headers)
    assert escape.status_code == 404 and "MPD" not in escape.text


def test_search_finds_the_line_in_every_language(api: httpx.Client, subtitled: Any, catalog: Any) -> None:
    import ray

    vid, owner = subtitled["id"], subtitled["user"]
    found = api.get("/v1/search", params={"q": "second line", "scope": "subtitles"}, headers=owner.headers)
    assert found.status_code == 200, found.text
    hits = [h for h in found.json()["items"] if h["video_id"] == vid]
    assert [(h["lang"], h["start_s"], h["end_s"]) for h in hits] == [("en", 2.5, 4.0)]
    assert "<mark>second</mark> <mark>line</mark>" in hits[0]["snippet"]
    assert hits[0]["play_url"].endswith(f"/media/{vid}/master.m3u8#t=2.5")
    # The translation is indexed too, with the language it came from.
    spanish = ray.get(catalog.get_cues.remote(vid, "es"))
    assert [(c["idx"], c["start_s"], c["source_lang"]) for c in spanish] == [
        (0, 0.5, "en"),
        (1, 2.5, "en"),
        (2, 4.5, "en"),
    ]
    word = next(w for w in spanish[1]["text"].split() if w.isalpha() and len(w) > 2)
    in_es = api.get("/v1/search", params={"q": word, "lang": "es"}, headers=owner.headers).json()["items"]
    assert any(h["video_id"] == vid and h["lang"] == "es" for h in in_es), (word, in_es)
    # Others cannot find a private video's lines.
    anonymous = api.get("/v1/search", params={"q": "second line"}).json()["items"]
    assert all(h["video_id"] != vid for h in anonymous)


def test_a_garbage_subtitle_track_leaves_the_video_ready_with_a_warning(
    api: httpx.Client, clip: Any, tmp_path: Path
) -> None:
    good = clip(seconds=3, width=320, height=180, audio=False, subtitles=True)
    data = bytearray(good.read_bytes())
    for _, _, text in DEMO_CUES[:2]:  # the cue texts in the mov_text samples become invalid UTF-8
        at = data.find(text.encode())
        assert at > 0
        data[at : at + len(text)] = b"\xe9\xff" * (len(text) // 2) + b"\x80" * (len(text) % 2)
    bad = tmp_path / "garbage-subs.mp4"
    bad.write_bytes(bytes(data))
    user = register_user(api)
    response = upload(api, user, bad, title="garbage subtitles")
    assert response.status_code == 202, response.text
    vid = response.json()["id"]
    assert wait_finished(api, user, vid)["status"] == "ready"
    meta = api.get(f"/v1/videos/{vid}", headers=user.headers).json()
    assert meta["subtitles"] == [] and meta["subtitles_unavailable"] == ["es", "fr"]
    [skipped] = meta["subtitles_skipped"]
    assert (skipped["stream"], skipped["codec"]) == (1, "mov_text")
    assert "Invalid data found" in skipped["reason"]
    [warning] = meta["subtitles_warnings"]
    assert warning.startswith("subtitle stream 1 was skipped: ffmpeg failed") and "/" not in warning
    mpd = api.get(meta["manifest_url"], headers=user.headers).text
    assert "text/vtt" not in mpd and "SUBTITLES" not in api.get(meta["hls_url"], headers=user.headers).text


FRENCH_SRT = "1\n00:00:01,000 --> 00:00:02,500\nLe phare veille sur la baie\n"


def test_a_sidecar_and_translate_to_of_the_upload_reach_the_job(
    api: httpx.Client, subtitled: Any, clip: Any
) -> None:
    user = register_user(api)
    source = clip(seconds=SOURCE_S, width=320, height=180, audio=True, subtitles=True)
    with source.open("rb") as body:
        response = api.post(
            "/v1/videos",
            headers=user.headers,
            files=[
                ("file", ("clip.mp4", body, "video/mp4")),
                ("subtitles", ("film.srt", FRENCH_SRT.encode())),
            ],
            data={"title": "with a sidecar", "subtitles_lang": ["fr"], "translate_to": "ja"},
        )
    assert response.status_code == 202, response.text
    vid = response.json()["id"]
    assert wait_finished(api, user, vid)["status"] == "ready"
    meta = api.get(f"/v1/videos/{vid}", headers=user.headers).json()
    assert [(t["lang"], t["source"]) for t in meta["subtitles"]] == [
        ("fr", "sidecar"),
        ("en", "embedded"),
        ("es", "translated"),
    ]
    # es and fr come from the settings, ja from the upload; fr is there already. No test
    # installs a model to Japanese (the session shares one models dir), so ja is unavailable.
    assert meta["subtitles_unavailable"] == ["ja"]
    french = api.get(f"/v1/videos/{vid}/subtitles/fr.vtt", headers=user.headers)
    assert (
        french.status_code == 200
        and "00:00:01.000 --> 00:00:02.500\nLe phare veille sur la baie" in french.text
    )
    found = api.get("/v1/search", params={"q": "phare", "lang": "fr"}, headers=user.headers).json()["items"]
    # Other test files' public videos may say "phare" too: this video's line, once.
    assert [(h["start_s"], h["end_s"]) for h in found if h["video_id"] == vid] == [(1.0, 2.5)]


def test_publish_subtitle_tracks_adds_and_replaces_languages_of_a_published_video(
    api: httpx.Client, subtitled: Any, storage: Any, tmp_path: Path
) -> None:
    from pipelines.subtitles.cues import Cue, write_vtt
    from pipelines.subtitles.manifests import publish_subtitle_tracks

    vid, headers = subtitled["id"], subtitled["user"].headers
    german = write_vtt([Cue(500, 2000, "Hallo von vodray")], tmp_path / "de.vtt")
    spanish = write_vtt([Cue(500, 2000, "Hola de vodray")], tmp_path / "es.vtt")
    langs = publish_subtitle_tracks(storage, vid, {"de": german, "es": spanish}, {"de": "Deutsch (neu)"})
    assert langs == ["en", "es", "de"]
    again = publish_subtitle_tracks(storage, vid, {"de": german}, {"de": "Deutsch (neu)"})
    assert again == ["en", "es", "de"]
    master = api.get(subtitled["meta"]["hls_url"], headers=headers).text
    assert re.findall(r'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="(\w+)"', master) == ["en", "es", "de"]
    assert 'NAME="Deutsch (neu)"' in master
    mpd = ET.fromstring(api.get(subtitled["meta"]["manifest_url"], headers=headers).text)
    langs_in_mpd = [
        a.get("lang") for a in mpd.iterfind(".//d:AdaptationSet", MPD_NS) if a.get("mimeType") == "text/vtt"
    ]
    assert langs_in_mpd == ["en", "es", "de"]
    assert "Hola de vodray" in api.get(f"/v1/videos/{vid}/subtitles/es.vtt", headers=headers).text
    playlist = api.get(urljoin(subtitled["meta"]["hls_url"], "subtitles/de.m3u8"), headers=headers)
    assert playlist.status_code == 200 and "de.vtt" in playlist.text


def test_a_rerun_subtitles_task_reuses_its_record_and_files(
    settings: Settings, storage: Any, clip: Any, deployment: Any, es_model: None
) -> None:
    import uuid

    import ray

    from cluster import layout
    from pipelines import graph, tasks
    from pipelines.video.plan import plan_video
    from pipelines.video.probe import probe

    source = clip(seconds=SOURCE_S, width=320, height=180, audio=True, subtitles=True)
    vid = uuid.uuid4().hex
    storage.put_file(source, layout.source_key(vid))
    try:
        info = probe(source)
        plan = plan_video(info, settings.pipeline, cluster_cpus=1)
        [spec] = [
            s
            for s in graph.job_specs(vid, plan, subtitles=graph.SubtitleJob(info.subtitle_tracks, ("es",)))
            if s.step == "subtitles"
        ]
        first = ray.get(tasks.make_subtitle_tracks.remote(storage, plan, spec, settings, vid))[spec.output]
        work = layout.work_prefix(vid, plan.plan_id)
        assert storage.exists(layout.subtitle_work_key(work, "es"))
        second = ray.get(tasks.make_subtitle_tracks.remote(storage, plan, spec, settings, vid))[spec.output]
        assert (first["reused"], second["reused"]) == (False, True)
        assert second["subtitles"] == first["subtitles"] and second["cues"] == first["cues"]
        assert [c["text"] for c in first["cues"]["en"]] == [text for _, _, text in DEMO_CUES]
        assert [(c["start_s"], c["end_s"]) for c in first["cues"]["es"]] == [(s, e) for s, e, _ in DEMO_CUES]
    finally:
        storage.delete_prefix(layout.source_prefix(vid))
        storage.delete_prefix(layout.work_root(vid))
