"""Bad uploads end as ``failed`` jobs with a readable reason, keep their source, leave no work
files, and never disturb a good job running beside them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from tests.integration.client import upload, wait_finished


def audio_only(path: Path) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    return path


def truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    moov = data.find(b"moov")
    mdat = data.find(b"mdat")
    # Cut so the index (moov) is lost whichever end it sits at: a real interrupted upload.
    cut = data[: len(data) // 2] if moov > mdat else data[:moov] + data[moov + 8 : len(data) // 2]
    path.write_bytes(cut)
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, clip: Any) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.mp4"
    text.write_text("this is not a video, just some text\n" * 50)
    return {
        "text": text,
        "truncated": truncated(clip(seconds=3), folder / "truncated.mp4"),
        "audio_only": audio_only(folder / "tone.m4a"),
    }


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("text", "not a video"),
        ("truncated", "truncated"),
        ("audio_only", "no video stream"),
    ],
)
def test_bad_file_fails_with_reason_and_keeps_source(
    api: httpx.Client,
    new_user: Any,
    catalog: Any,
    storage: Any,
    clip: Any,
    bad_files: dict[str, Path],
    kind: str,
    reason: str,
) -> None:
    user = new_user()
    good = upload(api, user, clip(seconds=3), title="good neighbour")
    bad = upload(api, user, bad_files[kind], title=f"bad {kind}")
    assert good.status_code == 202 and bad.status_code == 202, (good.text, bad.text)
    bad_id, good_id = bad.json()["id"], good.json()["id"]

    status = wait_finished(api, user, bad_id)
    assert status["status"] == "failed"
    assert reason in status["error"].lower(), status["error"]
    meta = api.get(f"/v1/videos/{bad_id}", headers=user.headers).json()
    assert meta["status"] == "failed" and meta["error"] == status["error"]
    assert storage.exists(f"sources/{bad_id}/source"), "a failed job keeps its source"
    assert storage.list(f"work/{bad_id}") == []
    assert storage.list(f"media/{bad_id}") == []

    assert wait_finished(api, user, good_id)["status"] == "ready", "the good job beside it must finish"
    assert ray.get(catalog.get_video.remote(good_id))["renditions"]


def cut_after_the_first_seconds(source: Path, path: Path) -> Path:
    """The index first (faststart), then 2/3 of the media: probes and starts decoding fine."""
    indexed = path.with_name("indexed.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-map", "0", "-c", "copy",
         "-movflags", "+faststart", str(indexed)],
        check=True,
    )  # fmt: skip
    data = indexed.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    path.write_bytes(data[: len(data) * 2 // 3])
    indexed.unlink()
    return path


def test_damage_found_while_encoding_fails_the_job_with_a_sentence_naming_the_rendition(
    api: httpx.Client, new_user: Any, storage: Any, clip: Any, tmp_path: Path
) -> None:
    user = new_user()
    damaged = cut_after_the_first_seconds(clip(seconds=6, width=640, height=360), tmp_path / "cut.mp4")
    response = upload(api, user, damaged, title="cut short")
    assert response.status_code == 202, response.text
    vid = response.json()["id"]

    status = wait_finished(api, user, vid)
    assert (status["status"], status["step"]) == ("failed", "encode"), status
    error = status["error"]
    assert re.fullmatch(
        r"encoding chunk \d+ of (every rendition|the (180p|360p) rendition) failed: \S.{4,}", error
    ), error
    for leak in ("/", "Traceback", "RayTaskError", "FFmpegError", "\x1b", "\n", "sources", "vodray-"):
        assert leak not in error, (leak, error)
    assert api.get(f"/v1/videos/{vid}", headers=user.headers).json()["error"] == error
    assert storage.exists(f"sources/{vid}/source")
    # Finished chunks stay for a retry (issue 6); nothing half-written does, nothing is published.
    assert not [key for key in storage.list(f"work/{vid}") if "/." in key or key.endswith(".partial")]
    assert storage.list(f"media/{vid}") == []


def test_delete_removes_media_source_and_rows(
    api: httpx.Client, new_user: Any, catalog: Any, storage: Any, clip: Any
) -> None:
    user = new_user()
    vid = upload(api, user, clip(seconds=3), title="to delete").json()["id"]
    assert wait_finished(api, user, vid)["status"] == "ready"
    assert storage.list(f"media/{vid}")
    assert api.delete(f"/v1/videos/{vid}", headers=user.headers).status_code == 204
    assert api.get(f"/v1/videos/{vid}", headers=user.headers).status_code == 404
    assert ray.get(catalog.get_video.remote(vid)) is None
    for prefix in ("media", "sources", "work"):
        assert storage.list(f"{prefix}/{vid}") == []


def test_delete_while_processing_stops_the_job_and_leaves_nothing(
    api: httpx.Client, new_user: Any, catalog: Any, dispatcher: Any, storage: Any, clip: Any
) -> None:
    import time

    user = new_user()
    vid = upload(api, user, clip(seconds=8, width=640, height=360), title="gone soon").json()["id"]
    deadline = time.monotonic() + 60
    status = {}
    while status.get("step") != "encode":
        assert time.monotonic() < deadline, f"the job never started encoding: {status}"
        time.sleep(0.05)
        status = api.get(f"/v1/videos/{vid}/status", headers=user.headers).json()
    assert api.delete(f"/v1/videos/{vid}", headers=user.headers).status_code == 204
    assert vid not in ray.get(dispatcher.stats.remote())["running"]
    time.sleep(2)  # anything a killed task might still have been writing has landed by now
    assert ray.get(catalog.get_video.remote(vid)) is None
    for prefix in ("media", "sources", "work"):
        assert storage.list(f"{prefix}/{vid}") == [], prefix
    assert api.get(f"/v1/videos/{vid}/status", headers=user.headers).status_code == 404
