"""Sidecar subtitle files over real HTTP: sent with an upload, or added to a video later.

Good files are kept at ``sources/{vid}/subtitles/{nn}.{lang}.{ext}`` and become tracks; bad ones
(junk, too big, wrong name, missing or bad language) get a 4xx with a readable detail and
leave nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import ray

from cluster import layout
from cluster.settings import Settings
from cluster.storage import Storage
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
        ([("notes.txt", FRENCH_SRT)], ["fr"], {}, 400, "must be named *.srt or *.vtt"),
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
        ({"lang": "fr"}, {"file": ("film.ass", FRENCH_SRT)}, 400, "must be named *.srt or *.vtt"),
        ({}, {"file": ("film.srt", FRENCH_SRT)}, 400, "each subtitle file needs its language"),
        ({"lang": "french!"}, {"file": ("film.srt", FRENCH_SRT)}, 400, "must be a language tag"),
        ({"lang": "fr"}, {}, 400, "send exactly one subtitle file in the form field 'file'"),
        ({"lang": "fr"}, {"file": ("empty.srt", b"")}, 422, "subtitle file 'empty.srt' is empty"),
        ({"lang": "fr"}, {"file": ("none.vtt", b"WEBVTT\n\nNOTE nothing\n")}, 422, "holds no cues"),
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
