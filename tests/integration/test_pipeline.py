"""Upload over HTTP -> Ray job -> one CMAF set played as DASH and HLS, checked with ffprobe."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.integration.client import register_user, upload, wait_finished
from tests.integration.conftest import TEST_SEGMENT_S

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SOURCE_S = 6.0
FPS = 25


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def fill_template(template: str, rep_id: str, number: int) -> str:
    def number_of(match: re.Match[str]) -> str:
        fmt = match.group(1)
        return (fmt % number) if fmt else str(number)

    text = template.replace("$RepresentationID$", rep_id)
    return re.sub(r"\$Number(%0\d+d)?\$", number_of, text)


def dash_segments(mpd: ET.Element) -> dict[str, dict[str, Any]]:
    """Per video representation: size and the init + media segment paths the manifest names."""
    reps: dict[str, dict[str, Any]] = {}
    for aset in mpd.iterfind(".//d:AdaptationSet", MPD_NS):
        if aset.get("mimeType") == "text/vtt":
            continue  # a subtitle track is one WebVTT file (tests/integration/test_subtitles.py)
        for rep in aset.iterfind("d:Representation", MPD_NS):
            template = rep.find("d:SegmentTemplate", MPD_NS)
            if template is None:
                template = aset.find("d:SegmentTemplate", MPD_NS)
            assert template is not None
            count = 0
            for s in template.iterfind(".//d:S", MPD_NS):
                count += 1 + int(s.get("r", "0"))
            start = int(template.get("startNumber", "1"))
            rid = rep.get("id", "")
            reps[rid] = {
                "content": rep.get("mimeType") or aset.get("mimeType") or aset.get("contentType"),
                "height": int(rep.get("height", "0")),
                "width": int(rep.get("width", "0")),
                "bandwidth": int(rep.get("bandwidth", "0")),
                "init": fill_template(template.get("initialization", ""), rid, 0),
                "media": [
                    fill_template(template.get("media", ""), rid, n) for n in range(start, start + count)
                ],
            }
    return reps


@pytest.fixture(scope="module")
def ready_video(api: httpx.Client, clip: Any) -> dict[str, Any]:
    user = register_user(api)
    source = clip(seconds=SOURCE_S, width=640, height=360, fps=FPS, audio=True, subtitles=True)
    response = upload(api, user, source, title="six seconds", visibility="private")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["location"].endswith(f"/v1/videos/{body['id']}")
    status = wait_finished(api, user, body["id"])
    assert status["status"] == "ready", status
    assert status["progress"] == 1.0
    assert (status["chunks_done"], status["chunks_total"]) == (3, 3)  # 6 s in 2 s chunks
    meta = api.get(f"/v1/videos/{body['id']}", headers=user.headers)
    assert meta.status_code == 200
    return {"user": user, "id": body["id"], "meta": meta.json(), "source": source}


def test_metadata_lists_renditions_and_urls(ready_video: dict[str, Any]) -> None:
    meta = ready_video["meta"]
    assert meta["status"] == "ready"
    assert [(r["name"], r["width"], r["height"]) for r in meta["renditions"]] == [
        ("180p", 320, 180),
        ("360p", 640, 360),
    ]
    assert all(r["bytes"] > 0 and r["bandwidth"] > 0 for r in meta["renditions"])
    assert abs(meta["duration_s"] - SOURCE_S) <= 1 / FPS
    for key, suffix in [
        ("manifest_url", "manifest.mpd"),
        ("hls_url", "master.m3u8"),
        ("mp3_url", "audio.mp3"),
    ]:
        assert meta[key].endswith(f"/media/{ready_video['id']}/{suffix}")


def test_long_poll_on_a_finished_video_answers_at_once(
    api: httpx.Client, ready_video: dict[str, Any]
) -> None:
    import time

    started = time.monotonic()
    status = api.get(
        f"/v1/videos/{ready_video['id']}/status", params={"wait": 20}, headers=ready_video["user"].headers
    )
    assert status.status_code == 200 and status.json()["status"] == "ready"
    assert time.monotonic() - started < 10, "a finished video must not hold the poll open"


def test_dash_manifest_segments_start_on_shared_keyframes(
    api: httpx.Client, ready_video: dict[str, Any], tmp_path: Path
) -> None:
    headers = ready_video["user"].headers
    manifest_url = ready_video["meta"]["manifest_url"]
    response = api.get(manifest_url, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dash+xml")
    reps = dash_segments(ET.fromstring(response.text))
    video = {r["height"]: r for r in reps.values() if r["height"]}
    assert sorted(video) == [180, 360]
    assert any("audio" in (r["content"] or "") for r in reps.values()), "no audio representation"

    starts_by_height = {}
    for height, rep in video.items():
        init = api.get(urljoin(manifest_url, rep["init"]), headers=headers)
        assert init.status_code == 200, rep["init"]
        whole = tmp_path / f"{height}.mp4"
        whole.write_bytes(init.content)
        starts = []
        for i, name in enumerate(rep["media"]):
            segment = api.get(urljoin(manifest_url, name), headers=headers)
            assert segment.status_code == 200, name
            with whole.open("ab") as out:
                out.write(segment.content)
            one = tmp_path / f"{height}-{i}.mp4"
            one.write_bytes(init.content + segment.content)
            first = ffprobe(
                one,
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=pts_time,flags",
                "-read_intervals",
                "%+#1",
            )["packets"][0]
            assert first["flags"].startswith("K"), f"{height}p segment {i} does not start on a keyframe"
            starts.append(round(float(first["pts_time"]), 3))
        starts_by_height[height] = starts
        # The stitched rendition lasts as long as the source, within one frame.
        duration = float(ffprobe(whole, "-show_entries", "format=duration")["format"]["duration"])
        assert abs(duration - SOURCE_S) <= 1 / FPS + 1e-6, (height, duration)
        frames = ffprobe(
            whole, "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"
        )
        assert int(frames["streams"][0]["nb_read_packets"]) == int(SOURCE_S * FPS)

    expected = [round(i * TEST_SEGMENT_S, 3) for i in range(int(SOURCE_S / TEST_SEGMENT_S))]
    assert starts_by_height[180] == expected
    assert starts_by_height[360] == expected


def test_hls_master_shares_the_cmaf_segments(api: httpx.Client, ready_video: dict[str, Any]) -> None:
    headers = ready_video["user"].headers
    master_url = ready_video["meta"]["hls_url"]
    master = api.get(master_url, headers=headers)
    assert master.status_code == 200
    assert "mpegurl" in master.headers["content-type"]
    lines = master.text.splitlines()
    assert lines[0] == "#EXTM3U"
    resolutions = re.findall(r"RESOLUTION=(\d+x\d+)", master.text)
    assert sorted(resolutions) == ["320x180", "640x360"]
    assert "TYPE=AUDIO" in master.text
    playlists = [line for line in lines if line and not line.startswith("#")]
    playlists += re.findall(r'TYPE=AUDIO,[^\n]*URI="([^"]+)"', master.text)  # subtitles: test_subtitles
    segment_uris = set()
    for playlist in playlists:
        url = urljoin(master_url, playlist)
        media = api.get(url, headers=headers)
        assert media.status_code == 200, playlist
        assert "#EXT-X-MAP:URI=" in media.text
        for uri in [line for line in media.text.splitlines() if line and not line.startswith("#")]:
            segment_uris.add(urljoin(url, uri))
    assert segment_uris, "no segments in the HLS playlists"
    for uri in sorted(segment_uris)[:4]:
        assert api.head(uri, headers=headers).status_code == 200


def test_mp3_has_the_source_duration_and_range_requests_work(
    api: httpx.Client, ready_video: dict[str, Any], tmp_path: Path
) -> None:
    headers = ready_video["user"].headers
    mp3_url = ready_video["meta"]["mp3_url"]
    whole = api.get(mp3_url, headers=headers)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["accept-ranges"] == "bytes"
    path = tmp_path / "audio.mp3"
    path.write_bytes(whole.content)
    stream = ffprobe(path, "-show_entries", "stream=codec_name,duration")["streams"][0]
    assert stream["codec_name"] == "mp3"
    assert abs(float(stream["duration"]) - SOURCE_S) < 0.1

    part = api.get(mp3_url, headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert part.content == whole.content[100:200]
    tail = api.get(mp3_url, headers={**headers, "Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    beyond = api.get(mp3_url, headers={**headers, "Range": f"bytes={len(whole.content) + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(whole.content)}"


def test_poster_is_a_jpeg(api: httpx.Client, ready_video: dict[str, Any]) -> None:
    poster = api.get(ready_video["meta"]["poster_url"], headers=ready_video["user"].headers)
    assert poster.status_code == 200
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.content[:3] == b"\xff\xd8\xff"


def test_private_media_only_for_its_owner(
    api: httpx.Client, ready_video: dict[str, Any], new_user: Any
) -> None:
    manifest = ready_video["meta"]["manifest_url"]
    assert api.get(manifest).status_code == 404
    stranger = new_user()
    assert api.get(manifest, headers=stranger.headers).status_code == 404
    assert api.get(f"/v1/videos/{ready_video['id']}", headers=stranger.headers).status_code == 404


def test_catalog_row_and_work_files(catalog: Any, storage: Any, ready_video: dict[str, Any]) -> None:
    import ray

    vid = ready_video["id"]
    row = ray.get(catalog.get_video.remote(vid))
    assert row["status"] == "ready" and row["job"]["state"] == "done"
    assert row["media_bytes"] > 0 and row["has_audio"] is True
    assert storage.exists(f"sources/{vid}/source"), "the source must be kept"
    assert storage.list(f"work/{vid}") == [], "work files must be removed"
    published = storage.list(f"media/{vid}")
    assert f"media/{vid}/manifest.mpd" in published and f"media/{vid}/master.m3u8" in published


def test_players_on_other_origins_may_fetch_media(api: httpx.Client, ready_video: dict[str, Any]) -> None:
    url = ready_video["meta"]["manifest_url"]
    origin = "https://player.example"
    preflight = api.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,range",
        },
    )
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers["access-control-allow-origin"] in ("*", origin)
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "range" in allowed
    fetched = api.get(url, headers={**ready_video["user"].headers, "Origin": origin, "Range": "bytes=0-9"})
    assert fetched.status_code == 206
    assert fetched.headers["access-control-allow-origin"] in ("*", origin)
    assert "content-range" in fetched.headers["access-control-expose-headers"].lower()
