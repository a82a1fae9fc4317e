from __future__ import annotations

import json

from pipelines.subtitle_record import record_with_track

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
