from __future__ import annotations

import json
from pathlib import Path

from cluster import layout
from cluster.settings import StorageSettings
from cluster.storage import Storage
from pipelines.subtitles.publish import late_sidecars, newer_sidecar_published, record_with_track

RECORD = {
    "tracks": [{"lang": "en", "source": "embedded"}, {"lang": "fr", "source": "sidecar", "cues": 1}],
    "unavailable": ["de", "es"],
    "skipped": [{"stream": 3, "codec": "hdmv_pgs_subtitle", "reason": "image"}],
    "warnings": ["one warning"],
}


def test_a_new_language_is_added_and_no_longer_unavailable() -> None:
    track = {"lang": "de", "source": "translated", "origin": "en", "cues": 2}
    updated = record_with_track(json.dumps(RECORD), track)  # as get_video returns it: JSON text
    assert updated == {**RECORD, "tracks": [*RECORD["tracks"], track], "unavailable": ["es"]}


def test_a_language_already_there_is_replaced_not_listed_twice() -> None:
    track = {"lang": "fr", "source": "sidecar", "cues": 9}
    assert record_with_track(RECORD, track)["tracks"] == [RECORD["tracks"][0], track]


def test_a_video_without_a_record_gets_one() -> None:
    track = {"lang": "fr", "source": "sidecar", "cues": 1}
    empty = {"tracks": [track], "unavailable": [], "skipped": [], "warnings": []}
    assert record_with_track(None, track) == empty


def test_an_older_sidecar_never_replaces_a_newer_one_of_its_language() -> None:
    record = {"tracks": [{"lang": "fr", "source": "sidecar", "origin": "sidecar:03.fr.srt"}]}
    older = {"lang": "fr", "source": "sidecar", "origin": "sidecar:02.fr.vtt"}
    newer = {"lang": "fr", "source": "sidecar", "origin": "sidecar:04.fr.srt"}
    german = {"lang": "de", "source": "sidecar", "origin": "sidecar:01.de.srt"}
    translated = {"lang": "fr", "source": "translated", "origin": "en"}
    assert newer_sidecar_published(record, older)
    assert not newer_sidecar_published(record, newer)
    assert not newer_sidecar_published(record, german)
    assert not newer_sidecar_published(record, translated)  # a backfill replaces what is there


def test_late_sidecars_are_those_the_subtitles_step_did_not_read(tmp_path: Path) -> None:
    storage = Storage(StorageSettings(url=f"file://{tmp_path}/root"))
    for index, lang in enumerate(["fr", "de", "fr"]):
        storage.write_bytes(layout.sidecar_key("v1", index, lang, "srt"), b"1\n")
    storage.write_bytes(layout.sidecar_key("v2", 0, "es", "srt"), b"1\n")  # another video's
    assert late_sidecars(storage, "v1", ["00.fr.srt"]) == [
        layout.sidecar_key("v1", 1, "de", "srt"),
        layout.sidecar_key("v1", 2, "fr", "srt"),
    ]
    assert late_sidecars(storage, "v1", ["00.fr.srt", "01.de.srt", "02.fr.srt"]) == []
