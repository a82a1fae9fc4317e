"""The typed subtitle record: what every writer (job, API, backfill) and reader shares."""

from __future__ import annotations

import json
from pathlib import Path

from cluster import layout
from cluster.settings import StorageSettings
from cluster.storage import Storage
from pipelines.subtitles.publish import late_sidecars
from pipelines.subtitles.record import Skipped, SubtitleRecord, Track

RECORD = SubtitleRecord(
    tracks=(Track.embedded("en", 2, 10), Track.sidecar("fr", "01.fr.srt", 1)),
    unavailable=("de", "es"),
    skipped=(Skipped(3, "hdmv_pgs_subtitle", "image"),),
    warnings=("one warning",),
)


def test_named_constructors_say_where_a_track_came_from() -> None:
    assert Track.embedded("en", 2, 10).to_json() == {
        "lang": "en", "label": "English", "source": "embedded", "origin": "stream:2", "cues": 10,
    }  # fmt: skip
    assert Track.sidecar("pt-br", "07.pt-br.vtt", 3).origin == "sidecar:07.pt-br.vtt"
    translated = Track.translated("es", "en", 5)
    assert (translated.label, translated.origin, translated.source_lang) == ("Español", "en", "en")
    assert Track.sidecar("fr", "01.fr.srt", 1).source_lang == "fr"


def test_json_round_trips_and_is_what_the_metadata_route_reads() -> None:
    stored = json.loads(json.dumps(RECORD.to_json()))  # as the catalog keeps it
    assert SubtitleRecord.from_json(stored) == RECORD
    assert SubtitleRecord.from_json(json.dumps(stored)) == RECORD
    assert "sidecars" not in stored
    assert SubtitleRecord.from_json(None) == SubtitleRecord.from_json({}) == SubtitleRecord()


def test_a_record_written_by_an_older_version_still_reads() -> None:
    old = {"tracks": [{"lang": "fr", "source": "sidecar", "cues": 1}], "warnings": ["w"]}
    record = SubtitleRecord.from_json(old)
    assert record.tracks == (Track("fr", "Français", "sidecar", "", 1),)
    assert record.unavailable == () and record.skipped == () and record.warnings == ("w",)


def test_a_new_language_is_added_and_no_longer_unavailable() -> None:
    german = Track.translated("de", "en", 2)
    updated = RECORD.with_track(german)
    assert updated.tracks == (*RECORD.tracks, german) and updated.unavailable == ("es",)
    assert updated.skipped == RECORD.skipped and updated.warnings == RECORD.warnings


def test_a_language_already_there_is_replaced_not_listed_twice() -> None:
    french = Track.sidecar("fr", "02.fr.srt", 9)
    assert RECORD.with_track(french).tracks == (RECORD.tracks[0], french)


def test_an_older_sidecar_never_replaces_a_newer_one_of_its_language() -> None:
    record = SubtitleRecord(tracks=(Track.sidecar("fr", "103.fr.srt", 1),))
    assert record.newer_sidecar_than(Track.sidecar("fr", "99.fr.vtt", 1))  # 103 > 99, not "1" < "9"
    assert not record.newer_sidecar_than(Track.sidecar("fr", "104.fr.srt", 1))
    assert not record.newer_sidecar_than(Track.sidecar("de", "01.de.srt", 1))
    assert not record.newer_sidecar_than(Track.translated("fr", "en", 1))  # a backfill replaces


def test_no_track_is_listed_when_packaging_could_not_add_them() -> None:
    record = RECORD.unpublished(["the subtitle tracks could not be added"])
    assert record.tracks == () and record.warnings[-1] == "the subtitle tracks could not be added"


def test_late_sidecars_are_those_the_subtitles_step_did_not_read_oldest_first(tmp_path: Path) -> None:
    storage = Storage(StorageSettings(url=f"file://{tmp_path}/root"))
    for index, lang in [(0, "fr"), (1, "de"), (99, "fr"), (100, "it")]:
        storage.write_bytes(layout.sidecar_key("v1", index, lang, "srt"), b"1\n")
    storage.write_bytes(layout.sidecar_key("v2", 0, "es", "srt"), b"1\n")  # another video's
    assert late_sidecars(storage, "v1", ["00.fr.srt"]) == [
        layout.sidecar_key("v1", 1, "de", "srt"),
        layout.sidecar_key("v1", 99, "fr", "srt"),
        layout.sidecar_key("v1", 100, "it", "srt"),
    ]
    assert late_sidecars(storage, "v1", ["00.fr.srt", "01.de.srt", "99.fr.srt", "100.it.srt"]) == []
